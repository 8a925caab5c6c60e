"""Per-target authorization covers every route of a job, and same origin means
this server (SPEC "Trust").

The layout of docs/api.md "Authorization", with two users of an htpasswd file
made by htpasswd(1): every user may use BASE, only alice the target webapp
(`<Location BASE/targets/webapp> Require user alice`). A job's routes
(BASE/jobs/ID...) do not name its target, yet they obey that Location: bob can
neither submit to webapp, nor cancel or read its jobs, nor see it in any
listing, stream or status page. A signed target's cancel must be signed, and
an Origin is the server's only when it names one of the server's own names.
"""

import datetime
import os
import re
import subprocess

import pytest

from harness.event_stream import EventStream, is_final_job_event
from harness.httpd_env import (BASE, Gate, basic_auth_location, basic_credentials, gated_job_script,
                               hub_signature, target_block, wait_for)

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}
SECRET = b"cancel-needs-this-key"
# Every user may use BASE, only alice the target webapp. Anyone may submit to
# sealed (without credentials), nobody may read it: a refusal whatever the
# credentials, 403.
PER_TARGET_LOCATIONS = (f"<Location {BASE}/targets/webapp>\n    Require user alice\n</Location>\n"
                        f"<Location {BASE}/targets/sealed>\n    AuthType None\n"
                        "    Require method POST\n</Location>\n")
# What httpd's mod_authz_core logs when it refuses bob webapp, or anyone to
# read sealed, as for a request of BASE/targets/NAME itself: expected where a
# test is refused a job route; a listing that hides a target logs nothing.
AUTHORIZATION_FAILURES = (r"AH01631: user bob: authorization failure",
                          r"AH01630: client denied by server configuration: \S*/deploy/targets/sealed")


def write_htpasswd(env):
    path = env.path("conf", "htpasswd")
    for i, (user, password) in enumerate(PASSWORDS.items()):
        subprocess.run(["htpasswd", "-b"] + (["-c"] if i == 0 else []) + [path, user, password],
                       check=True, capture_output=True)
    os.chmod(path, 0o644)
    return path


def setup_layout(env):
    env.gate = Gate(env, "release")
    script = gated_job_script(env, "deploy.sh", env.gate, before='echo "deploying $DEPLOY_JOB_ID"\n')
    secret = env.write_file("conf/secret", SECRET + b"\n", 0o600)
    env.server_config = "DeployMaxRunning 4"
    env.fragment = (target_block("webapp", script)
                    + target_block("other", script)
                    + target_block("signed", script, f"DeploySecret file:{secret}")
                    + target_block("sealed", script)
                    + basic_auth_location(BASE, write_htpasswd(env)) + PER_TARGET_LOCATIONS)


class User:
    """Requests of one user of the layout's server."""

    def __init__(self, env, name):
        self.env = env
        self.headers = basic_credentials(name, PASSWORDS[name])

    def request(self, method, path, body=b"", headers=None):
        h = dict(self.headers)
        if method == "POST":
            h["Content-Length"] = str(len(body))
        h.update(headers or {})
        return self.env.request(method, path, body if method == "POST" else None, h)

    def get(self, path):
        return self.request("GET", path)

    def submit(self, target):
        return self.request("POST", f"{BASE}/targets/{target}")

    def cancel(self, job_id, headers=None, body=b""):
        return self.request("POST", f"{BASE}/jobs/{job_id}/cancel", body, headers)

    def job(self, job_id):
        r = self.get(f"{BASE}/jobs/{job_id}")
        assert r.status == 200, r
        return r.json()

    def wait_state(self, job_id, states, timeout=15):
        states = {states} if isinstance(states, str) else set(states)
        last = {}

        def reached():
            last["job"] = self.job(job_id)
            return last["job"]["state"] in states
        try:
            wait_for(reached, timeout, f"job {job_id} to reach {sorted(states)}")
        except AssertionError as e:
            raise AssertionError(f"{e}; last seen: {last.get('job')}")
        return last["job"]


@pytest.fixture
def layout(make_httpd):
    env = make_httpd(setup=setup_layout)
    return env, User(env, "alice"), User(env, "bob")


def expect_refusals_logged(env):
    for pattern in AUTHORIZATION_FAILURES:
        env.expect_error(pattern)


def assert_refused(r, what, by_httpd=False, status=401):
    """bob's refusal: the answer httpd gives for BASE/targets/webapp itself
    (401 with its challenge: bob is not alice), with mod_deploy's JSON error
    unless httpd refused the request itself (its own HTML page)."""
    assert r.status == status, f"{what}: {r}"
    if r.status == 401:
        assert r.headers.get("WWW-Authenticate", "") == 'Basic realm="deploy"', \
            f"{what}: a 401 without httpd's challenge: {dict(r.headers)}"
    if by_httpd:
        return
    assert r.headers.get("Content-Type", "").startswith("application/json"), what
    assert r.json()["error"] == ("unauthorized" if r.status == 401 else "forbidden"), f"{what}: {r}"


def running_job(alice, target="webapp"):
    r = alice.submit(target) if target != "signed" else alice.request(
        "POST", f"{BASE}/targets/signed", b"", {"X-Hub-Signature-256": hub_signature(SECRET, b"")})
    assert r.status == 202, r
    job_id = r.json()["id"]
    alice.wait_state(job_id, "running")
    return job_id


def finished_job(env, alice, target):
    r = alice.submit(target)
    assert r.status == 202, r
    job_id = r.json()["id"]
    env.gate.open()
    assert alice.wait_state(job_id, "succeeded")["target"] == target
    return job_id


def test_another_user_can_neither_submit_to_nor_cancel_jobs_of_a_protected_target(layout):
    env, alice, bob = layout
    expect_refusals_logged(env)
    assert_refused(bob.submit("webapp"), "bob's submission to webapp", by_httpd=True)
    job_id = running_job(alice)

    assert_refused(bob.cancel(job_id), "bob's cancel of alice's running job")
    assert alice.job(job_id)["state"] == "running"
    env.gate.open()
    done = alice.wait_state(job_id, ("succeeded", "failed", "canceled"))
    assert done["state"] == "succeeded", f"bob's refused cancel stopped the job: {done}"

    # alice may do all of it; bob may still cancel jobs of a target open to him.
    queued = alice.submit("webapp")
    assert queued.status == 202, queued
    assert alice.cancel(queued.json()["id"]).status == 202
    other = bob.submit("other")
    assert other.status == 202, other
    assert bob.cancel(other.json()["id"]).status in (202, 409)


def test_another_user_cannot_read_the_json_log_or_events_of_a_protected_targets_job(layout):
    env, alice, bob = layout
    expect_refusals_logged(env)
    job_id = running_job(alice)
    for path in (f"{BASE}/jobs/{job_id}", f"{BASE}/jobs/{job_id}/log",
                 f"{BASE}/jobs/{job_id}/log?offset=0", f"{BASE}/jobs/{job_id}/events"):
        r = bob.get(path)
        assert_refused(r, f"bob's GET {path}")
        assert b"deploying" not in r.body
    assert bob.request("HEAD", f"{BASE}/jobs/{job_id}").status == 401

    assert alice.job(job_id)["target"] == "webapp"
    assert alice.get(f"{BASE}/jobs/{job_id}/log").status == 200
    env.gate.open()
    with EventStream(env, f"{BASE}/jobs/{job_id}/events", alice.headers) as stream:
        assert stream.status == 200
        stream.read_until(lambda e: is_final_job_event(e, job_id), "alice's job to finish")


def test_listings_show_only_the_targets_a_user_may_read(layout):
    env, alice, bob = layout
    webapp = finished_job(env, alice, "webapp")
    other = finished_job(env, alice, "other")

    for query in ("", "?target=webapp", "?state=succeeded", "?limit=1&before=" + str(other + 1)):
        r = bob.get(f"{BASE}/jobs{query}")
        assert r.status == 200, r
        assert webapp not in [j["id"] for j in r.json()], f"bob's GET jobs{query}: {r.json()}"
    assert [j["id"] for j in bob.get(f"{BASE}/jobs").json()] == [other]
    assert [j["id"] for j in bob.get(f"{BASE}/jobs?limit=1").json()] == [other]
    assert [j["id"] for j in alice.get(f"{BASE}/jobs").json()] == [other, webapp]

    bobs = [t["name"] for t in bob.get(f"{BASE}/targets").json()]
    assert bobs == ["other", "signed"], bobs
    alices = alice.get(f"{BASE}/targets").json()
    assert [t["name"] for t in alices] == ["webapp", "other", "signed"]
    assert alices[0]["latest_job"]["id"] == webapp


def test_the_all_jobs_event_stream_sends_only_readable_targets(layout):
    env, alice, bob = layout
    webapp = finished_job(env, alice, "webapp")
    other = finished_job(env, alice, "other")
    with EventStream(env, f"{BASE}/events?since=0", bob.headers) as stream:
        assert stream.status == 200
        read = stream.read_until(lambda e: is_final_job_event(e, other), "other's job")
    assert {e.json()["target"] for e in read} == {"other"}, read
    with EventStream(env, f"{BASE}/events?since=0", alice.headers) as stream:
        read = stream.read_until(lambda e: is_final_job_event(e, other), "other's job")
    assert webapp in {e.json()["id"] for e in read}


def test_the_dashboard_shows_only_readable_targets_and_their_jobs(layout):
    env, alice, bob = layout
    webapp = finished_job(env, alice, "webapp")
    other = finished_job(env, alice, "other")
    page = bob.get(f"{BASE}/").text
    assert 'data-target="other"' in page and f'data-job="{other}"' in page
    assert 'data-target="webapp"' not in page, "bob's dashboard shows webapp"
    assert f'data-job="{webapp}"' not in page and f"/targets/webapp" not in page
    page = alice.get(f"{BASE}/").text
    assert 'data-target="webapp"' in page and f'data-job="{webapp}"' in page
    # The history's filter offers bob only his targets; one he may not read
    # is ignored (the page is unfiltered), never shown back.
    page = bob.get(f"{BASE}/?target=webapp&before={webapp + 10}").text
    assert f'data-job="{other}"' in page and f'data-job="{webapp}"' not in page
    assert "webapp" not in page and 'data-filter-target=""' in page, page
    assert '<option value="other" selected>' in bob.get(f"{BASE}/?target=other").text
    page = alice.get(f"{BASE}/?target=webapp").text
    history = page[page.index('<section id="history">'):]
    assert f'data-job="{webapp}"' in history and f'data-job="{other}"' not in history


def test_metrics_and_auto_show_per_target_lines_only_for_readable_targets(layout):
    env, alice, bob = layout
    finished_job(env, alice, "webapp")
    other = alice.job(finished_job(env, alice, "other"))
    metrics = bob.get(f"{BASE}/metrics").text
    assert 'target="other"' in metrics
    # Each line keeps its own target's value when others are left out.
    finished = datetime.datetime.strptime(other["finished_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    last = re.search(r'deploy_last_success_timestamp_seconds\{target="other"\} (\S+)', metrics)
    assert last and abs(float(last.group(1)) - finished) < 0.001, (last, other["finished_at"])
    assert 'target="webapp"' not in metrics, [l for l in metrics.splitlines() if "webapp" in l]
    assert "webapp" not in bob.get(f"{BASE}/?auto").text
    metrics = alice.get(f"{BASE}/metrics").text
    assert 'deploy_jobs_finished_total{target="webapp",state="succeeded"} 1' in metrics


def test_a_signed_targets_cancel_must_carry_a_signature_of_its_body(layout):
    env, alice, bob = layout
    job_id = running_job(alice, "signed")
    r = alice.cancel(job_id)
    assert (r.status, r.json()["error"]) == (403, "bad_signature"), r
    r = alice.cancel(job_id, {"X-Hub-Signature-256": hub_signature(b"other-key", b"")})
    assert (r.status, r.json()["error"]) == (403, "bad_signature"), r
    # A signature of another body than the one sent.
    r = alice.cancel(job_id, {"X-Hub-Signature-256": hub_signature(SECRET, b"")}, b"{}")
    assert (r.status, r.json()["error"]) == (403, "bad_signature"), r
    assert alice.job(job_id)["state"] == "running"

    r = alice.cancel(job_id, {"X-Hub-Signature-256": hub_signature(SECRET, b"")})
    assert r.status == 202, r
    assert alice.wait_state(job_id, ("canceled", "succeeded", "failed"))["state"] == "canceled"


def test_a_target_nobody_may_read_answers_403_on_its_jobs_and_may_still_be_canceled(layout):
    env, alice, bob = layout
    expect_refusals_logged(env)
    r = env.request("POST", f"{BASE}/targets/sealed", b"", {"Content-Length": "0"})
    assert r.status == 202, r
    job_id = r.json()["id"]
    for user in (alice, bob):
        for path in (f"{BASE}/jobs/{job_id}", f"{BASE}/jobs/{job_id}/log"):
            assert_refused(user.get(path), f"GET {path}", status=403)
        assert job_id not in [j["id"] for j in user.get(f"{BASE}/jobs").json()]
        assert "sealed" not in [t["name"] for t in user.get(f"{BASE}/targets").json()]
    # A cancel needs what a submission needs: sealed takes POSTs from anyone
    # (who may use BASE, whose routes the cancel's URL is under).
    assert bob.cancel(job_id).status == 202


# ----- Origin: the server's own names, never the request's Host

def setup_named_server(env):
    setup_layout(env)
    env.fragment += (f"<VirtualHost 127.0.0.1:{env.port}>\n"
                     "    ServerName deploy.example\n"
                     "    ServerAlias alias.example *.wild.example\n"
                     "</VirtualHost>\n")


@pytest.fixture
def named_server(make_httpd):
    env = make_httpd(setup=setup_named_server)
    return env, User(env, "alice")


def test_an_origin_equal_to_an_attackers_host_is_cross_origin(named_server):
    env, alice = named_server
    for host in ("evil.example", f"evil.example:{env.port}"):
        headers = {"Origin": f"http://{host}", "Host": host}
        r = alice.request("POST", f"{BASE}/targets/other", b"", headers)
        assert (r.status, r.json()["error"]) == (403, "cross_origin"), f"Host {host}: {r}"
    job_id = running_job(alice, "other")
    r = alice.cancel(job_id, {"Origin": "http://evil.example", "Host": "evil.example"})
    assert (r.status, r.json()["error"]) == (403, "cross_origin"), r
    assert alice.job(job_id)["state"] == "running"
    env.gate.open()


def test_an_origin_naming_the_server_its_alias_or_its_address_is_accepted(named_server):
    env, alice = named_server
    env.gate.open()
    for name in ("deploy.example", "alias.example", "a.wild.example", "127.0.0.1", "localhost"):
        origin = f"http://{name}:{env.port}"
        r = alice.request("POST", f"{BASE}/targets/other", b"", {"Origin": origin})
        assert r.status == 202, f"Origin {origin}: {r}"
        r = alice.cancel(r.json()["id"], {"Origin": origin})
        assert r.status in (202, 409), f"cancel with Origin {origin}: {r}"
    for origin in (f"http://deploy.example:{env.port + 1}", f"https://deploy.example:{env.port}",
                   f"http://wild.example:{env.port}"):
        r = alice.request("POST", f"{BASE}/targets/other", b"", {"Origin": origin})
        assert (r.status, r.json()["error"]) == (403, "cross_origin"), f"Origin {origin}: {r}"
