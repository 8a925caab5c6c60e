"""GET BASE/: the HTML dashboard. Complete without JavaScript (every section
rendered on the server, everything from outside escaped, a strict CSP), and
live with it: tests/browser/dashboard.test.mjs drives Debian's headless
Chromium through playwright-core while this side releases the job step by step.

The browser test needs node, /usr/bin/chromium (or $CHROMIUM) and
`npm ci --prefix tests/browser` (scripts/test runs it)."""

import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from html import unescape

import pytest

from harness.httpd_env import (BASE, BUILD_DIR, REPO_DIR, Gate, blocking_script_lines, target_block)

MARKUP = "<script>alert(1)</script><img src=x onerror=alert(1)>"
BROWSER_DIR = os.path.join(REPO_DIR, "tests", "browser")
BROWSER_SCRIPT = os.path.join(BROWSER_DIR, "dashboard.test.mjs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BROWSER_TIMEOUT = 180  # the whole browser run, seconds


def prepare(env):
    """Targets for every section: webapp (three gated steps), markup (a stage
    and params full of markup), db (one at a time: one runs, the rest queue)
    and nightly (a long quiet window: its jobs wait)."""
    env.gates = {name: Gate(env, name) for name in ("step1", "step2", "step3", "markup", "db")}

    def gate(name):
        return blocking_script_lines(env.gates[name].path, seconds=120)
    webapp = env.write_script("webapp.sh", "#!/bin/bash\n"
                              'echo "::progress 10 A"\n' + gate("step1") +
                              'echo "::progress 60 B"\n' + gate("step2") +
                              'echo "::progress 90 C"\n' + gate("step3") +
                              'echo "deployed $DEPLOY_PARAM_VERSION"\n')
    markup = env.write_script("markup.sh", "#!/bin/bash\n"
                              'echo "::progress 50 $DEPLOY_PARAM_NOTE"\n' + gate("markup"))
    db = env.write_script("db.sh", "#!/bin/bash\n"
                          'echo "::progress 30 Migrating"\n' + gate("db"))
    # Short event streams: the browser test sees EventSource reconnect.
    env.server_config = "DeployEventsTimeout 2"
    env.fragment = (
        target_block("webapp", webapp, r"DeployParam version ^[0-9][0-9A-Za-z.+-]{0,63}$",
                     "DeployParam note ^.{0,200}$")
        + target_block("markup", markup, "DeployParam note ^.{0,200}$")
        + target_block("db", db, "DeployConcurrency 1")
        + target_block("nightly", db, "DeployWaitChangeNotification 300",
                       "DeployMaxWaitChangeNotification 600")
        + target_block("quick", "/bin/true", "DeployConcurrency 0"))


def section(html, name):
    m = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert m, f"section {name} missing from the dashboard"
    return m.group(1)


def row(html, job_id):
    m = re.search(rf'<tr data-job="{job_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert m, f"no row for job {job_id}"
    return m.group(1)


def cancel(env, job_id):
    r = env.request("POST", f"{BASE}/jobs/{job_id}/cancel", b"", {"Content-Length": "0"})
    assert r.status in (202, 409), r


def finish_all(env, job_ids):
    """Ends every job the test left unfinished, so no process outlives it."""
    for gate in env.gates.values():
        gate.open()
    for job_id in job_ids:
        cancel(env, job_id)
    for job_id in job_ids:
        env.wait_finished(job_id, timeout=30)


@pytest.mark.sanitize
def test_dashboard_without_javascript_shows_every_section_with_markup_escaped(make_httpd):
    env = make_httpd(setup=prepare)
    for name in ("step1", "step2", "step3"):
        env.gates[name].open()
    done = env.submit_ok("webapp", {"version": "1.2.3"})["id"]
    env.wait_state(done, "succeeded")
    evil = env.submit_ok("markup", {"note": MARKUP})["id"]
    env.wait_job(evil, lambda j: j["progress"] == 50, 15, "markup job at 50%")
    running_db = env.submit_ok("db")["id"]
    env.wait_job(running_db, lambda j: j["progress"] == 30, 15, "db job at 30%")
    queued_db = env.submit_ok("db")["id"]
    waiting = env.submit_ok("nightly")["id"]
    assert env.job(queued_db)["state"] == "queued"
    assert env.job(waiting)["state"] == "waiting"

    r = env.get(f"{BASE}/")
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("text/html"), r.headers["Content-Type"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in r.headers["Cache-Control"]
    policy = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy, policy
    nonce = re.search(r"script-src 'nonce-([A-Za-z0-9+/=]+)'", policy).group(1)
    html = r.text
    scripts = re.findall(r"<script\b([^>]*)>", html, re.I)
    assert scripts == [f' nonce="{nonce}"'], f"scripts on the page: {scripts}"
    assert re.search(r'<style nonce="%s">' % re.escape(nonce), html)
    assert not re.search(r"\b(src|href)=\"(https?:)?//", html), "the page loads something external"
    other = env.get(f"{BASE}/").headers["Content-Security-Policy"]
    assert other != policy, "the nonce must be new for every response"

    # Everything from outside is escaped: no markup of the job reaches the page.
    assert "<script>alert" not in html and "<img src=x" not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    running = section(html, "running")
    evil_row = row(running, evil)
    assert evil_row.count(escaped) == 2, f"params and stage not shown escaped: {evil_row}"
    assert '<progress max="100" value="50">' in evil_row
    assert f'action="{BASE}/jobs/{evil}/cancel"' in evil_row and 'method="post"' in evil_row
    assert f'<progress max="100" value="30">' in row(running, running_db)

    waiting_row = row(section(html, "waiting"), waiting)
    assert re.search(r'data-field="left" data-until="\d+">in 4m 5\ds<', waiting_row), waiting_row
    assert f'action="{BASE}/jobs/{waiting}/cancel"' in waiting_row
    assert f'action="{BASE}/jobs/{queued_db}/cancel"' in row(section(html, "queued"), queued_db)

    history_row = row(section(html, "history"), done)
    assert "badge s-succeeded" in history_row and ">exit 0<" in history_row
    assert f'href="{BASE}/jobs/{done}/log"' in history_row
    assert "cancel" not in history_row

    # One table of columns: the script gets, in <body data-columns>, the one
    # every server-rendered row was made with.
    table = json.loads(unescape(re.search(r'<body [^>]*data-columns="([^"]*)"', html).group(1)))
    for name in ("running", "waiting", "queued", "history"):
        fields = table["sections"][name]
        assert fields and all(f in table["columns"] for f in fields), table
        for m in re.finditer(r'<tr data-job="\d+"[^>]*>(.*?)</tr>', section(html, name), re.S):
            assert re.findall(r'<td data-field="(\w+)"', m.group(1)) == fields, (name, m.group(1))
    assert table["columns"]["left"] == {"kind": "countdown", "key": "not_before"}

    targets = section(html, "targets")
    assert f'action="{BASE}/targets/webapp"' in targets
    assert 'enctype="application/x-www-form-urlencoded"' in targets
    assert '<input name="version"' in targets and '<input name="note"' in targets
    webapp_target = re.search(r'<tr data-target="webapp">(.*?)</tr>', targets, re.S).group(1)
    assert f">#{done}</a> <span class=\"badge s-succeeded\">" in webapp_target

    # BASE without the slash is the same page (every link is absolute); ?auto stays.
    assert env.get(BASE).status == 200 and "<section id=\"history\">" in env.get(BASE).text
    auto = env.get(f"{BASE}/?auto")
    assert auto.headers["Content-Type"].startswith("text/plain") and "Running: 2" in auto.text

    finish_all(env, [evil, running_db, queued_db, waiting])


class BrowserRun:
    """A script of tests/browser (dashboard.test.mjs unless told) as a child:
    it prints `release GATE` when the page shows what it waited for; this
    side opens that gate. `extra`: more arguments for the script."""

    def __init__(self, env, screenshot, script=BROWSER_SCRIPT, url=None, extra=()):
        self.env = env
        self.lines = queue.Queue()
        self.output = []
        self.proc = subprocess.Popen(
            ["node", script, "--url", url or f"{env.origin}{BASE}/",
             "--screenshot", screenshot, "--chromium", CHROMIUM, *extra],
            cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def run(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"browser test still running after {timeout}s:\n" +
                                     "\n".join(self.output))
            if line is None:
                return self.proc.wait(timeout=10)
            self.output.append(line)
            m = re.fullmatch(r"release (\w+)", line)
            if m:
                assert m.group(1) in self.env.gates, line
                self.env.gates[m.group(1)].open()


def require_browser():
    """Fails with what to install when a browser test cannot run."""
    assert shutil.which("node"), "node is missing (apt-get install nodejs)"
    assert os.access(CHROMIUM, os.X_OK), \
        f"{CHROMIUM} is missing (apt-get install chromium, or set CHROMIUM)"
    assert os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")), \
        "playwright-core is missing: run `npm ci --prefix tests/browser`"


def test_dashboard_in_a_browser_follows_jobs_live_and_runs_no_injected_markup(make_httpd):
    require_browser()
    env = make_httpd(setup=prepare)
    # Rows the page renders on the server before any event: one running job,
    # two queued behind it (the page cancels one), one in its quiet window.
    running_db = env.submit_ok("db")["id"]
    env.wait_job(running_db, lambda j: j["progress"] == 30, 15, "db job at 30%")
    queued_db = [env.submit_ok("db")["id"] for _ in range(2)]
    waiting = env.submit_ok("nightly")["id"]
    # More finished jobs than a page of the history holds.
    for jid in [env.submit_ok("quick")["id"] for _ in range(55)]:
        env.wait_finished(jid)

    screenshot = os.path.join(BUILD_DIR, "dashboard.png")
    if os.path.exists(screenshot):
        os.unlink(screenshot)
    browser = BrowserRun(env, screenshot)
    status = browser.run(BROWSER_TIMEOUT)
    output = "\n".join(browser.output)
    print(output)  # shown with -s, or on failure
    assert status == 0, f"browser test failed (exit {status}):\n{output}"
    assert os.path.getsize(screenshot) > 0

    # What the page showed is what the server holds.
    jobs = {j["id"]: j for j in env.jobs("?limit=1000")}
    webapp = [j for j in jobs.values() if j["target"] == "webapp"]
    assert len(webapp) == 1 and webapp[0]["state"] == "succeeded", webapp
    assert webapp[0]["progress"] == 90 and webapp[0]["params"] == {"version": "1.2.3"}
    markup = [j for j in jobs.values() if j["target"] == "markup"]
    assert len(markup) == 1 and markup[0]["params"] == {"note": MARKUP}, markup
    assert jobs[queued_db[0]]["state"] == "canceled", "the page's cancel button did not cancel"

    finish_all(env, [running_db, queued_db[1], waiting])


def history_ids(html):
    return [int(i) for i in re.findall(r'<tr data-job="(\d+)"', section(html, "history"))]


def pager_link(html, which):
    """The href of the history's "older" or "newest" link, None when hidden."""
    m = re.search(rf'<a data-page="{which}" href="([^"]*)"( hidden)?>', section(html, "history"))
    assert m, f"no {which} link in the history"
    return None if m.group(2) else unescape(m.group(1))


@pytest.mark.sanitize
def test_history_pages_back_by_id_and_each_target_shows_its_newest_result(make_httpd):
    """The history's first page holds the 50 newest finished jobs (by id),
    the latest finish first; its "older" link (before= the lowest id shown)
    leads to the rest, down to an old job that finished late; "newest"
    leads back. The targets table shows each target's newest finished job."""
    def prepare_history(env):
        env.gate = Gate(env, "slow")
        env.fragment = (target_block("quick", "/bin/true", "DeployConcurrency 0")
                        + target_block("slow", env.write_script(
                            "slow.sh", "#!/bin/bash\n" + blocking_script_lines(env.gate.path))))
    env = make_httpd(setup=prepare_history, name="dashboard-history")
    slow = env.submit_ok("slow")["id"]
    env.wait_state(slow, "running")
    quick = [env.submit_ok("quick")["id"] for _ in range(55)]
    for jid in quick:
        env.wait_finished(jid)
    env.gate.open()
    assert env.wait_finished(slow)["state"] == "succeeded"

    html = env.get(f"{BASE}/").text
    shown = history_ids(html)
    # finished_at has milliseconds, the server sorts by microseconds: ties
    # in the JSON may come in either order.
    finished_at = {j: env.job(j)["finished_at"] for j in quick + [slow]}
    assert sorted(shown) == sorted(quick[5:]), shown
    times = [finished_at[j] for j in shown]
    assert times == sorted(times, reverse=True), times
    assert pager_link(html, "newest") is None
    older = pager_link(html, "older")
    assert older == f"{BASE}/?before={min(quick[5:])}", older

    page2 = env.get(older).text
    assert sorted(history_ids(page2)) == sorted([slow] + quick[:5]), history_ids(page2)
    assert history_ids(page2)[0] == slow, "the old job that finished last comes first"
    assert pager_link(page2, "older") is None, "nothing is older"
    assert pager_link(page2, "newest") == f"{BASE}/"
    assert re.search(r'data-before="%d"' % min(quick[5:]), page2)

    targets = section(html, "targets")
    for name, newest in (("quick", quick[-1]), ("slow", slow)):
        line = re.search(rf'<tr data-target="{name}">(.*?)</tr>', targets, re.S).group(1)
        assert f">#{newest}</a>" in line, line

    # The filter, first paint: the same query as GET BASE/jobs.
    only_slow = env.get(f"{BASE}/?target=slow").text
    assert history_ids(only_slow) == [slow]
    assert pager_link(only_slow, "older") is None
    assert '<option value="slow" selected>slow</option>' in section(only_slow, "history")
    # The targets table and the other sections are not filtered.
    assert f">#{quick[-1]}</a>" in section(only_slow, "targets")
    paged = env.get(f"{BASE}/?target=quick&state=succeeded&before={quick[10]}&limit=3").text
    assert sorted(history_ids(paged)) == sorted(quick[:10]), history_ids(paged)
    assert '<option value="succeeded" selected>succeeded</option>' in paged
    assert pager_link(paged, "newest") == f"{BASE}/?target=quick&state=succeeded"
    none = env.get(f"{BASE}/?state=failed").text
    assert history_ids(none) == [] and "No finished job matches." in section(none, "history")
    assert re.search(r'<form id="history-filter" class="filter" method="get" action="%s/">' % BASE,
                     none)

    # What the page could not have sent is dropped, never shown back.
    for query in ("?target=%3Cscript%3Ealert(1)%3C/script%3E&state=%3Cimg%20src=x%3E&before=x",
                  "?target=nosuch&state=running&before=0", "?target=%zz"):
        hostile = env.get(f"{BASE}/{query}")
        assert hostile.status == 200, (query, hostile)
        assert history_ids(hostile.text) == shown, query
        assert "<script>alert" not in hostile.text and "<img" not in hostile.text
        assert "nosuch" not in hostile.text and " selected>" not in hostile.text, query
        assert 'data-filter-target="" data-filter-state="" data-before=""' in hostile.text
