"""examples/django-portal: the Django project of docs/django-migration.md,
served by the same httpd as mod_deploy through mod_wsgi, with one Basic login
over /portal and /deploy. The portal submits on the user's behalf, redirects
to the job page at once, shows mod_deploy's refusals, httpd's own 401/403
pages and an unreachable mod_deploy as messages on its pages, and follows the
jobs live in a browser (tests/browser/portal.test.mjs).

Needs Debian's python3-django and libapache2-mod-wsgi-py3 (scripts/install-deps);
the browser test also node, Chromium and `npm ci --prefix tests/browser`."""

import base64
import html
import http.cookiejar
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import httpd_env
from harness.httpd_env import (BASE, BUILD_DIR, HTTPD_USER, REPO_DIR, RUNNING_AS_ROOT, Gate,
                               blocking_script_lines, free_port, sha_htpasswd_line, target_block)
from test_dashboard import BROWSER_DIR, BROWSER_TIMEOUT, BrowserRun, require_browser

PORTAL_DIR = os.path.join(REPO_DIR, "examples", "django-portal")
MOD_WSGI = os.path.join(httpd_env.DEBIAN_MODULES_DIR, "mod_wsgi.so")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-django: the one mod_wsgi embeds
USERS = {"alice": "s3cret", "bob": "hunter2"}


def run_as_httpd_user(args, **kwargs):
    prefix = ["runuser", "-u", HTTPD_USER, "--"] if RUNNING_AS_ROOT else []
    return subprocess.run(prefix + args, capture_output=True, text=True, timeout=120, **kwargs)


def prepare_portal(env):
    """mod_deploy and the portal in one httpd, with the example's own
    apache/portal.conf, its ${...} given by Define."""
    assert os.path.exists(MOD_WSGI), f"{MOD_WSGI} is missing (apt-get install libapache2-mod-wsgi-py3)"
    env.gates = {name: Gate(env, name) for name in ("step1", "step2")}
    htpasswd = env.write_file("conf/portal.htpasswd",
                              "".join(sha_htpasswd_line(u, p) for u, p in USERS.items()))
    other = env.write_file("conf/other.htpasswd", sha_htpasswd_line("carol", "other"))
    # The portal's database and key: in the test's own directory, writable
    # by the httpd user only, made by `manage.py migrate` run as that user.
    env.var_dir = env.path("portal-var")
    os.makedirs(env.var_dir, mode=0o750)
    if RUNNING_AS_ROOT:
        shutil.chown(env.var_dir, HTTPD_USER, HTTPD_USER)
    migrate = run_as_httpd_user(
        ["env", f"PORTAL_VAR_DIR={env.var_dir}", "PYTHONDONTWRITEBYTECODE=1", PYTHON,
         "manage.py", "migrate", "--noinput"], cwd=PORTAL_DIR)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "Applying auth" in migrate.stdout, migrate.stdout

    script = env.write_script("vm.sh", "#!/bin/bash\n"
                              'echo "creating $DEPLOY_PARAM_VM"\n'
                              'echo "::progress 20 Provisioning"\n'
                              + blocking_script_lines(env.gates["step1"].path, seconds=120)
                              + 'echo "::progress 80 Configuring"\n'
                              + blocking_script_lines(env.gates["step2"].path, seconds=120)
                              + 'echo "deployed $DEPLOY_PARAM_VERSION to $DEPLOY_PARAM_VM"\n')
    params = (r"DeployParam vm ^[a-z0-9][a-z0-9-]{0,31}$",
              r"DeployParam version ^[0-9][0-9A-Za-z.+-]{0,63}$")
    modules = "".join(
        f"LoadModule {name}_module {httpd_env.DEBIAN_MODULES_DIR}/mod_{name}.so\n"
        for name in ("env", "alias") if f"mod_{name}.c" not in httpd_env.compiled_in_modules())
    env.unreachable = f"http://127.0.0.1:{free_port()}/deploy"
    env.location = False
    env.fragment = (
        modules + f"LoadModule wsgi_module {MOD_WSGI}\n"
        f'WSGISocketPrefix "{env.path("run", "wsgi")}"\n'
        f'Define PORTAL_DIR "{PORTAL_DIR}"\n'
        f'Define PORTAL_VAR_DIR "{env.var_dir}"\n'
        f'Define PORTAL_HTPASSWD "{htpasswd}"\n'
        f"Define DEPLOY_URL http://127.0.0.1:{env.port}/deploy\n"
        + target_block("vm", script, *params)
        # httpd's own 403 (Require) and 401 (another password file) pages.
        + target_block("restricted", script, *params)
        + target_block("sealed", script, *params)
        + f'Include "{os.path.join(PORTAL_DIR, "apache", "portal.conf")}"\n'
        + f"""<Location {BASE}/targets/restricted>
    Require all denied
</Location>
<Location {BASE}/targets/sealed>
    AuthUserFile "{other}"
</Location>
# The same portal again, with a DEPLOY_URL where nothing listens.
WSGIScriptAlias /offline "{PORTAL_DIR}/portal/wsgi.py" process-group=portal application-group=%{{GLOBAL}}
<Location /offline>
    AuthType Basic
    AuthName "deployments"
    AuthUserFile "{htpasswd}"
    Require valid-user
    SetEnv PORTAL_VAR_DIR "{env.var_dir}"
    SetEnv DEPLOY_URL {env.unreachable}
</Location>
""")


@pytest.fixture
def portal(make_httpd):
    env = make_httpd(setup=prepare_portal, name="portal")
    yield env
    for gate in env.gates.values():
        gate.open()
    for job in env.request("GET", f"{BASE}/jobs", headers=auth("alice")).json():
        if job["state"] not in ("succeeded", "failed", "timed_out", "canceled", "expired", "lost"):
            env.wait_finished(job["id"], timeout=30)


def auth(user):
    token = base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A user of the portal without JavaScript: Basic credentials, cookies
    (Django's CSRF cookie), no redirects followed."""

    def __init__(self, env, user="alice"):
        self.origin = env.origin
        self.user = user
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect)

    def request(self, method, path, form=None, user=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = auth(user or self.user)
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        call = urllib.request.Request(self.origin + path, data=data, method=method,
                                      headers=headers)
        try:
            with self.opener.open(call, timeout=20) as answer:
                return answer.status, dict(answer.headers), answer.read().decode()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, dict(e.headers), e.read().decode()

    def get(self, path):
        return self.request("GET", path)

    def submit(self, path, **fields):
        """GETs the form at path, then posts it with its CSRF token and `fields`."""
        status, _, page = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, f"no CSRF token in the form ({status}):\n{page}"
        return self.request("POST", path, {"csrfmiddlewaretoken": token.group(1), **fields})


def field_errors(page, field):
    """The error list rendered next to the form's field `field`."""
    m = re.search(rf'<input [^>]*name="{field}"[^>]*>\s*(<ul class="errorlist">.*?</ul>)', page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip() if m else ""


def non_field_errors(page):
    m = re.search(r'<ul class="errorlist nonfield">(.*?)</ul>', page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip() if m else ""


def test_a_submission_redirects_at_once_to_the_job_page_which_shows_it_to_the_end(portal):
    user = Browser(portal)
    status, _, page = user.get("/portal/deploy/")
    assert status == 200, page
    # GET BASE/targets lists only the targets the user may read: the two that
    # httpd refuses to alice are not offered.
    assert re.findall(r'<option value="([^"]+)"', page) == ["vm"], page

    status, headers, _ = user.submit("/portal/deploy/", target="vm", vm="web-01", version="2.0.1")
    assert status == 302, headers
    m = re.fullmatch(r"/portal/jobs/(\d+)/", headers["Location"])
    assert m, headers["Location"]
    jid = int(m.group(1))
    # At once: the job is still held at its first gate.
    job = portal.request("GET", f"{BASE}/jobs/{jid}", headers=auth("alice")).json()
    assert job["state"] in ("queued", "running") and job["params"] == {"vm": "web-01",
                                                                       "version": "2.0.1"}
    assert job["submitted_by"] == "alice", "the portal submits as the user who is logged in"

    wait_progress(portal, jid, 20)
    status, _, page = user.get(f"/portal/jobs/{jid}/")
    assert status == 200, page
    assert '<progress max="100" value="20" data-field="progress">' in page
    assert ">Provisioning<" in page and "creating web-01" in page
    assert f'action="/portal/jobs/{jid}/cancel"' in page

    status, _, page = user.get("/portal/")
    row = re.search(rf'<tr data-job="{jid}">(.*?)</tr>', page, re.S)
    assert status == 200 and row, page
    assert ">web-01<" in row.group(1) and ">2.0.1<" in row.group(1) and ">alice<" in row.group(1)

    for gate in portal.gates.values():
        gate.open()
    wait_state(portal, jid, "succeeded")
    status, _, page = user.get(f"/portal/jobs/{jid}/")
    assert 'class="state-succeeded">succeeded<' in page, page
    assert "deployed 2.0.1 to web-01" in page and "/cancel" not in page


def job_of(env, jid):
    return env.request("GET", f"{BASE}/jobs/{jid}", headers=auth("alice")).json()


def wait_progress(env, jid, progress):
    httpd_env.wait_for(lambda: job_of(env, jid)["progress"] == progress, 15, f"job at {progress}%")


def wait_state(env, jid, state):
    httpd_env.wait_for(lambda: job_of(env, jid)["state"] == state, 30, f"job {state}")


def jobs_held(env):
    return env.request("GET", f"{BASE}/jobs", headers=auth("alice")).json()


def test_the_job_pages_cancel_button_cancels_the_job_as_the_user(portal):
    user = Browser(portal, "bob")
    status, headers, _ = user.submit("/portal/deploy/", target="vm", vm="web-03", version="1.0")
    assert status == 302, headers
    jid = int(re.fullmatch(r"/portal/jobs/(\d+)/", headers["Location"]).group(1))
    wait_progress(portal, jid, 20)
    status, _, page = user.get(f"/portal/jobs/{jid}/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    status, headers, _ = user.request("POST", f"/portal/jobs/{jid}/cancel",
                                      {"csrfmiddlewaretoken": token})
    assert status == 302 and headers["Location"] == f"/portal/jobs/{jid}/", (status, headers)
    wait_state(portal, jid, "canceled")
    assert job_of(portal, jid)["submitted_by"] == "bob"
    # Once more: the job has finished (409 conflict), the page just shows it.
    status, headers, _ = user.request("POST", f"/portal/jobs/{jid}/cancel",
                                      {"csrfmiddlewaretoken": token})
    assert status == 302, (status, headers)
    status, _, page = user.get(f"/portal/jobs/{jid}/")
    assert 'class="state-canceled">canceled<' in page and "/cancel" not in page


def test_a_version_refused_by_deploy_param_is_shown_next_to_its_field(portal):
    user = Browser(portal)
    status, _, page = user.submit("/portal/deploy/", target="vm", vm="web-01",
                                  version="two<b>point</b>oh")
    assert status == 400, page
    assert field_errors(page, "version") == \
        "parameter 'version' does not match ^[0-9][0-9A-Za-z.+-]{0,63}$", page
    assert "<b>point" not in page, "the value is shown escaped"
    assert 'value="two&lt;b&gt;point&lt;/b&gt;oh"' in page, "the form keeps what was typed"
    # An unknown target is mod_deploy's 404, shown above the form.
    status, _, page = user.submit("/portal/deploy/", target="nope", vm="web-01", version="1")
    assert status == 404 and non_field_errors(page) == "no target named nope", page
    assert jobs_held(portal) == []


def test_httpds_own_401_and_403_pages_are_messages_on_the_form(portal):
    portal.expect_error(r"AH01630: client denied by server configuration")
    portal.expect_error(r"AH01618: user alice not found")
    user = Browser(portal)
    status, _, page = user.submit("/portal/deploy/", target="restricted", vm="web-01",
                                  version="1")
    assert status == 403, page
    assert non_field_errors(page) == "mod_deploy refused: you may not do this (403 Forbidden)"
    status, _, page = user.submit("/portal/deploy/", target="sealed", vm="web-01", version="1")
    assert status == 401, page
    assert non_field_errors(page) == \
        "mod_deploy refused: you are not logged in to mod_deploy (401 Unauthorized)"
    assert jobs_held(portal) == []


def test_an_unreachable_mod_deploy_is_a_message_on_every_page(portal):
    # Django logs its 5xx answers (not a crash: no traceback) for the operator.
    portal.expect_error(r"\[wsgi:error\] .* Bad Gateway: /offline/")
    user = Browser(portal)
    message = f"cannot reach mod_deploy at {portal.unreachable}: [Errno 111] Connection refused"
    status, _, page = user.get("/offline/deploy/")
    assert status == 502 and non_field_errors(page) == message, page
    status, _, page = user.get("/offline/")
    assert status == 502 and message in html.unescape(page), page
    status, _, page = user.get("/offline/jobs/1/")
    assert status == 502 and message in html.unescape(page), page


def test_the_portal_and_deploy_ask_for_the_same_login(portal):
    for path in ("/portal/", "/portal/deploy/", f"{BASE}/jobs", f"{BASE}/events"):
        r = portal.request("GET", path)
        assert r.status == 401, (path, r)
        assert r.headers["WWW-Authenticate"] == 'Basic realm="deployments"', (path, r.headers)


def test_portal_in_a_browser_submits_and_watches_the_job_finish_live(portal):
    require_browser()
    screenshot = os.path.join(BUILD_DIR, "portal.png")
    if os.path.exists(screenshot):
        os.unlink(screenshot)
    browser = BrowserRun(portal, screenshot, script=os.path.join(BROWSER_DIR, "portal.test.mjs"),
                         url=f"{portal.origin}/portal/",
                         extra=["--user", "alice", "--password", USERS["alice"]])
    status = browser.run(BROWSER_TIMEOUT)
    output = "\n".join(browser.output)
    print(output)  # shown with -s, or on failure
    assert status == 0, f"browser test failed (exit {status}):\n{output}"
    assert os.path.getsize(screenshot) > 0
    # What the page showed is what the server holds.
    jobs = {j["params"]["vm"]: j for j in jobs_held(portal)}
    assert set(jobs) == {"web-01", "web-02"}, jobs
    assert all(j["state"] == "succeeded" and j["submitted_by"] == "alice" for j in jobs.values())
    assert jobs["web-01"]["params"]["version"] == "2.0.1"


def indented_blocks(markdown):
    """The indented code blocks of a Markdown text, without their indent."""
    blocks, current = [], None
    for line in markdown.split("\n") + [""]:
        if line.startswith("    ") or (current is not None and line == ""):
            if current is None:
                current = []
            current.append(line[4:])
        elif current is not None:
            blocks.append("\n".join(current).strip("\n"))
            current = None
    if current:
        blocks.append("\n".join(current).strip("\n"))
    return blocks


def test_the_files_shown_in_django_migration_md_are_the_examples_files():
    with open(os.path.join(REPO_DIR, "docs", "django-migration.md")) as f:
        blocks = indented_blocks(f.read())
    shown = {}
    for block in blocks:
        first, _, rest = block.partition("\n")
        m = re.fullmatch(r"(?:# |\{# )examples/django-portal/(\S+)(?: #\})?", first)
        if m:
            shown[m.group(1)] = rest
    assert set(shown) == {"apache/portal.conf", "deployments/deploy_client.py",
                          "deployments/views.py", "deployments/forms.py",
                          "deployments/templates/deployments/history.html"}, sorted(shown)
    for path, text in shown.items():
        with open(os.path.join(PORTAL_DIR, path)) as f:
            assert text == f.read().rstrip("\n"), f"docs/django-migration.md shows another {path}"
