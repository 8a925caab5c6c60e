"""GET BASE/jobs/ID: the job's HTML page to a browser, the job JSON to every
other client, `Vary: Accept` on both (SPEC "Watching a deployment"). The page
is complete without JavaScript, escapes everything that came from the job, has
a Content-Security-Policy with a fresh nonce per response, inlines only the
newest part of a long log, and obeys per-target authorization exactly as the
JSON does. tests/browser/job_page.test.mjs watches a page follow a running
job to its end in headless Chromium.
"""

import os
import re
from html import unescape

import pytest

from harness.event_stream import EventStream
from harness.httpd_env import (BASE, BUILD_DIR, FINAL_STATES, REPO_DIR, Gate,
                               basic_auth_location, basic_credentials, blocking_script_lines,
                               hub_signature, target_block, wait_for)
from test_dashboard import BrowserRun, require_browser
from test_per_target_authorization import PASSWORDS, SECRET, write_htpasswd

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
MARKUP = "<script>alert(1)</script><img src=x onerror=alert(1)>"
INLINED = 64 * 1024  # what the page inlines of a log at most (deploy_job_page.cc)


def prepare(env):
    env.gates = {name: Gate(env, name)
                 for name in ("hostile", "long", "step1", "step2", "step3", "big1", "big2")}
    hostile = env.write_script("hostile.sh", "#!/bin/bash\n"
                               'echo "::progress 40 $DEPLOY_PARAM_NOTE"\n'
                               'echo "::output note $DEPLOY_PARAM_NOTE"\n'
                               'echo "log says $DEPLOY_PARAM_NOTE"\n'
                               + blocking_script_lines(env.gates["hostile"].path, 60))
    # 3000 numbered lines of 100 bytes: 300000 bytes, more than the page inlines.
    long = env.write_script("long.sh", "#!/bin/bash\n"
                            "x=$(printf 'x%.0s' {1..89})\n"
                            'for i in $(seq -w 1 3000); do echo "line $i $x"; done\n'
                            + blocking_script_lines(env.gates["long"].path, 60)
                            + 'echo "after the gate"\n')

    def gate(name):
        return blocking_script_lines(env.gates[name].path, 120)
    steps = env.write_script("steps.sh", "#!/bin/bash\n"
                             'echo "::progress 10 Provisioning"\necho "creating the VM"\n'
                             + gate("step1")
                             + 'echo "::progress 60 Configuring"\necho "::output address 10.0.0.7"\n'
                             + 'echo "running <b>ansible</b>"\n'
                             + gate("step2")
                             + 'echo "::progress 90 Checking"\necho "::output note $DEPLOY_PARAM_NOTE"\n'
                             + 'echo "checking $DEPLOY_PARAM_NOTE"\n'
                             + gate("step3") + 'echo "::stage $DEPLOY_PARAM_NOTE"\necho "deployed"\n')
    # 11000000 bytes in 100-byte lines, once the page is open: more than it keeps.
    big = env.write_script("big.sh", "#!/bin/bash\n" + gate("big1")
                           + "yes \"$(printf 'y%.0s' {1..99})\" | head -n 110000\n"
                           + 'echo "the last line"\n' + gate("big2"))
    env.scripts = {"steps": steps}
    env.fragment = (target_block("hostile", hostile, "DeployParam note ^.{0,200}$")
                    + target_block("long", long)
                    + target_block("steps", steps, "DeployParam note ^.{0,200}$")
                    + target_block("big", big)
                    + target_block("quick", "/bin/echo done"))


def page(env, job_id, accept=BROWSER, headers=None):
    h = {"Accept": accept} if accept is not None else {}
    h.update(headers or {})
    return env.get(f"{BASE}/jobs/{job_id}", h)


def varies_on_accept(response):
    return any("accept" in [v.strip().lower() for v in value.split(",")]
               for value in response.headers.get_all("Vary") or [])


def body_data(html, name):
    m = re.search(rf'<body[^>]* data-{name}="([^"]*)"', html)
    assert m, f"no data-{name} on <body>"
    return unescape(m.group(1))


def fact(html, field):
    m = re.search(rf'<dd data-field="{field}"[^>]*>(.*?)</dd>', html, re.S)
    assert m, f"no fact {field} on the page"
    return m.group(1)


def log_text(html):
    m = re.search(r'<pre id="log"[^>]*>\n(.*?)</pre>', html, re.S)
    assert m, "no log on the page"
    return m.group(1)


def finish(env, *job_ids):
    for gate in env.gates.values():
        gate.open()
    for job_id in job_ids:
        env.wait_finished(job_id, timeout=30)


@pytest.mark.sanitize
def test_a_browser_gets_the_page_every_other_client_the_json_both_vary_on_accept(make_httpd):
    env = make_httpd(setup=prepare)
    job = env.submit_ok("quick")
    env.wait_finished(job["id"])
    for accept in (None, "*/*", "application/json", "application/json, text/html",
                   "text/html;q=0.5, application/json"):
        r = page(env, job["id"], accept)
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/json"), \
            (accept, r)
        assert r.json()["id"] == job["id"]
        assert varies_on_accept(r), (accept, r.headers)
    for accept in (BROWSER, "text/html"):
        r = page(env, job["id"], accept)
        assert r.status == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8", r
        assert varies_on_accept(r), r.headers
        assert r.headers["Cache-Control"] == "no-store"
        assert r.text.startswith("<!DOCTYPE html>")
    html = page(env, job["id"]).text
    assert f"Job #{job['id']}" in html
    assert 's-succeeded">succeeded</span>' in fact(html, "state")
    assert fact(html, "result") == "exit 0"
    assert log_text(html) == "done\n"
    assert f'href="{BASE}/"' in html, "no link back to the dashboard"
    assert f'href="{BASE}/jobs/{job["id"]}/log"' in html
    assert re.search(r'<form id="cancel"[^>]* hidden>', html), "a finished job shows a cancel button"
    assert fact(html, "outputs") == '<span class="sub">none</span>'
    assert '<ol id="stage-list" class="stages"></ol><p id="stages-empty" class="empty">' in html
    # A job that does not exist is the JSON error either way, with Vary too.
    r = page(env, 999999)
    assert r.status == 404 and r.json()["error"] == "not_found" and varies_on_accept(r)
    # The stream's ?since= is read as Last-Event-ID is: a malformed one is
    # absent (the whole log again), the page's own sends nothing it has.
    for since in ("garbage", "-1.-1", "1", "99999999999.0"):
        with EventStream(env, f"{BASE}/jobs/{job['id']}/events?since={since}") as stream:
            events = stream.read_to_end()
        assert [(e.name, e.data) for e in events][0] == ("log", "done"), (since, events)
    since = body_data(html, "since")
    with EventStream(env, f"{BASE}/jobs/{job['id']}/events?since={since}") as stream:
        assert stream.read_to_end() == [], f"since={since} sent again what the page has"
    # The dashboard links each job to this page.
    assert f'href="{BASE}/jobs/{job["id"]}"' in env.get(f"{BASE}/").text


def test_every_script_and_style_needs_the_nonce_of_its_response(make_httpd):
    env = make_httpd(setup=prepare)
    job = env.submit_ok("quick")["id"]
    env.wait_finished(job)
    nonces = set()
    for _ in range(3):
        r = page(env, job)
        policy = r.headers["Content-Security-Policy"]
        m = re.search(r"script-src 'nonce-([A-Za-z0-9+/=]{24})'", policy)
        assert m, policy
        nonce = m.group(1)
        assert f"style-src 'nonce-{nonce}'" in policy and "default-src 'none'" in policy
        assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        # Outside the page's own <style> and <script> (whose text may name them).
        outside = re.sub(r"(<style[^>]*>).*?</style>|(<script[^>]*>).*?</script>", r"\1\2", r.text,
                         flags=re.S)
        tags = re.findall(r"<(script|style)\b([^>]*)>", outside)
        assert len(tags) == 2, tags
        for _tag, attributes in tags:
            assert attributes == f' nonce="{nonce}"', attributes
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        nonces.add(nonce)
    assert len(nonces) == 3, "the nonce repeats across responses"


@pytest.mark.sanitize
def test_hostile_params_stage_and_log_lines_stay_text(make_httpd):
    env = make_httpd(setup=prepare)
    job = env.submit_ok("hostile", {"note": MARKUP})["id"]
    env.wait_job(job, lambda j: j["progress"] == 40, 15, "the hostile job at 40%")
    env.wait_job(job, lambda j: b"log says" in env.log(job).body, 15, "the hostile log line")
    html = page(env, job).text
    # The only markup is the page's own: no tag of the job's text survives.
    assert "<script>alert" not in html and "<img" not in html
    assert html.count("<script") == 1
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert fact(html, "params") == f"<code>note={escaped}</code>"
    assert fact(html, "stage") == escaped
    assert unescape(fact(html, "stage")) == MARKUP
    assert fact(html, "outputs") == f"<code>note={escaped}</code>"
    # The timeline: the one open stage, its time counting from its start.
    stages = re.search(r'<ol id="stage-list" class="stages">(.*?)</ol>', html, re.S).group(1)
    assert re.fullmatch(rf'<li><span class="name">{re.escape(escaped)}</span><span class="sub" '
                        r'title="[-0-9T:.Z]+">[-0-9: ]+</span><span class="took" data-from="\d+">'
                        r'\d+s</span></li>', stages), stages
    assert re.search(r'<p id="stages-empty" class="empty" hidden>', html)
    assert log_text(html) == (f"::progress 40 {escaped}\n::output note {escaped}\n"
                              f"log says {escaped}\n")
    assert 's-running">running</span>' in fact(html, "state")
    assert re.search(r'<progress max="100" value="40"></progress><span class="pct">40%</span>',
                     fact(html, "progress"))
    # Running and cancelable by this (unauthenticated, unsigned) request.
    assert re.search(r'<form id="cancel"[^>]*action="[^"]*/cancel">', html)
    assert re.search(r'<dd data-field="duration" data-from="\d+">', html)
    finish(env, job)


def test_a_long_log_is_inlined_from_its_newest_lines_and_the_stream_goes_on_from_there(make_httpd):
    env = make_httpd(setup=prepare)
    job = env.submit_ok("long")["id"]
    env.wait_job(job, lambda j: int(env.log(job).headers["X-Log-Size"]) == 300000, 30,
                 "3000 lines of output")
    html = page(env, job).text
    text = log_text(html)
    assert 0 < len(text) <= INLINED
    assert text.endswith("line 3000 " + "x" * 89 + "\n")
    assert text.startswith("line ") and len(text) % 100 == 0, "the log does not begin at a line"
    skipped = 300000 - len(text)
    assert int(body_data(html, "log-from")) == skipped
    assert f"The first {skipped} bytes of the log are not shown here." in html
    assert re.search(r'<p id="log-cut" class="note">', html), "the cut is not said"
    since = body_data(html, "since")
    change, offset = since.split(".")
    assert int(offset) == 300000
    # The page's stream starts where its copy ends: only what came after.
    with EventStream(env, f"{BASE}/jobs/{job}/events?since={since}") as stream:
        env.gates["long"].open()
        events = stream.read_to_end()
    logs = [e.data for e in events if e.name == "log"]
    assert logs == ["after the gate"], logs
    assert events[-1].name == "job" and events[-1].json()["state"] == "succeeded"
    # A finished job's page inlines its whole last line too.
    assert log_text(page(env, job).text).endswith("after the gate\n")


def test_the_page_obeys_per_target_authorization_as_the_json_does(make_httpd):
    """Every user may use BASE, only alice the target hostile. The cancel
    button is there when this request could cancel without a signature: not
    for the signed target, whoever asks."""
    def setup(env):
        prepare(env)
        secret = env.write_file("conf/secret", SECRET + b"\n", 0o600)
        env.fragment += (target_block("signed", env.scripts["steps"], f"DeploySecret file:{secret}",
                                      "DeployParam note ^.{0,200}$")
                         + basic_auth_location(BASE, write_htpasswd(env))
                         + f"<Location {BASE}/targets/hostile>\n    Require user alice\n"
                         "</Location>\n")
    env = make_httpd(setup=setup)
    alice = basic_credentials("alice", PASSWORDS["alice"])
    bob = basic_credentials("bob", PASSWORDS["bob"])

    def submit(target, headers):
        body = b'{"params": {"note": "x"}}'
        h = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        h.update(headers)
        r = env.request("POST", f"{BASE}/targets/{target}", body, h)
        assert r.status == 202, r
        return r.json()["id"]
    hostile = submit("hostile", alice)
    signed = submit("signed", dict(alice, **{"X-Hub-Signature-256": hub_signature(
        SECRET, b'{"params": {"note": "x"}}')}))
    env.expect_error(r"AH01631: user bob: authorization failure")
    for accept in (BROWSER, "application/json"):
        r = page(env, hostile, accept, bob)
        # bob is not alice: httpd's challenge, with mod_deploy's JSON error.
        assert r.status == 401 and r.json()["error"] == "unauthorized", (accept, r)
        assert r.headers["WWW-Authenticate"], r.headers
        assert "Job #" not in r.text and varies_on_accept(r)
        r = page(env, hostile, accept)
        assert r.status == 401 and r.headers["WWW-Authenticate"], (accept, r)
    r = page(env, hostile, BROWSER, alice)
    assert r.status == 200 and re.search(r'<form id="cancel"[^>]*/cancel">', r.text), r
    for user in (alice, bob):
        r = page(env, signed, BROWSER, user)
        assert r.status == 200 and re.search(r'<form id="cancel"[^>]* hidden>', r.text), r
    for gate in env.gates.values():
        gate.open()
    for job_id in (hostile, signed):
        wait_for(lambda: env.get(f"{BASE}/jobs/{job_id}", alice).json()["state"] in FINAL_STATES,
                 30, f"job {job_id} to finish")


def test_a_page_in_a_browser_follows_a_running_job_to_its_end_and_cancels_another(make_httpd):
    require_browser()
    env = make_httpd(setup=prepare)
    job = env.submit_ok("steps", {"note": MARKUP})["id"]
    env.wait_job(job, lambda j: j["progress"] == 10, 15, "the job at 10%")
    env.wait_job(job, lambda j: b"creating the VM" in env.log(job).body, 15, "its first line")
    other = env.submit_ok("hostile", {"note": "to cancel"})["id"]
    env.wait_state(other, "running")
    big = env.submit_ok("big")["id"]
    env.wait_state(big, "running")
    screenshot = os.path.join(BUILD_DIR, "job-page.png")
    if os.path.exists(screenshot):
        os.unlink(screenshot)
    browser = BrowserRun(env, screenshot, script=os.path.join(REPO_DIR, "tests", "browser",
                                                              "job_page.test.mjs"),
                         url=f"{env.origin}{BASE}/jobs/{job}",
                         extra=("--cancel-url", f"{env.origin}{BASE}/jobs/{other}",
                                "--big-url", f"{env.origin}{BASE}/jobs/{big}"))
    status = browser.run(180)
    output = "\n".join(browser.output)
    print(output)
    assert status == 0, f"browser test failed (exit {status}):\n{output}"
    assert os.path.getsize(screenshot) > 0
    assert env.wait_finished(job)["state"] == "succeeded"
    assert env.wait_finished(other)["state"] == "canceled"
    assert env.wait_finished(big)["state"] == "succeeded"
