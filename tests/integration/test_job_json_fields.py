"""Each field of the job JSON: its type and format (SPEC "A job")."""

import datetime
import re
import socket
import time

import pytest

from harness.httpd_env import (BASE, Gate, basic_auth_location, basic_credentials, gated_job_script,
                               sha_htpasswd_line, target_block)

RFC3339_MS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
FIELDS = {"id", "target", "state", "params", "outputs", "progress", "stage", "stages", "requests",
          "not_before",
          "submitted_by", "submitted_at", "started_at", "finished_at", "node", "exit_code",
          "signal", "notifications", "links"}


def parse_time(text):
    assert isinstance(text, str) and RFC3339_MS_UTC.match(text), f"not RFC 3339 ms UTC: {text!r}"
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def setup_authenticated(env):
    env.gate = Gate(env, "release")
    htpasswd = env.write_file("conf/htpasswd", sha_htpasswd_line("alice", "s3cret"))
    script = gated_job_script(env, "deploy.sh", env.gate)
    env.fragment = (target_block("webapp", script, r"DeployParam version ^[0-9.]+$")
                    + basic_auth_location(BASE, htpasswd))


@pytest.fixture
def authenticated_env(make_httpd):
    env = make_httpd(setup=setup_authenticated)
    # make env.job()/jobs() authenticate
    original = env.request

    def request(method, path, body=None, headers=None, timeout=10):
        h = basic_credentials("alice", "s3cret")
        h.update(headers or {})
        return original(method, path, body, h, timeout)
    env.request = request
    env.unauthenticated = original
    return env


@pytest.mark.sanitize
def test_job_json_has_every_field_with_its_type_and_format(authenticated_env):
    env = authenticated_env
    before = time.time()
    r = env.submit("webapp", {"version": "1.2.3"})
    after = time.time()
    assert r.status == 202, r
    assert r.headers.get("Content-Type", "").startswith("application/json")
    job = r.json()
    jid = job["id"]

    assert FIELDS <= set(job), f"missing fields: {FIELDS - set(job)}"
    assert job["stages"] == [] and job["outputs"] == {}, "a new job has no stage and no output"
    assert isinstance(jid, int) and not isinstance(jid, bool) and jid > 0
    assert job["target"] == "webapp"
    assert job["params"] == {"version": "1.2.3"}
    assert job["progress"] is None
    assert job["stage"] is None
    assert job["requests"] == 1
    assert job["not_before"] is None
    assert job["submitted_by"] == "alice"
    assert before - 1 <= parse_time(job["submitted_at"]) <= after + 1
    assert job["finished_at"] is None
    assert job["node"] is None, "no node before the job starts"
    assert job["exit_code"] is None and job["signal"] is None
    assert job["links"] == {"self": f"{BASE}/jobs/{jid}", "log": f"{BASE}/jobs/{jid}/log",
                            "events": f"{BASE}/jobs/{jid}/events",
                            "cancel": f"{BASE}/jobs/{jid}/cancel"}
    assert "coalesced" not in job or job["coalesced"] is False

    running = env.wait_state(jid, "running")
    started = parse_time(running["started_at"])
    assert started >= parse_time(job["submitted_at"])
    assert running["finished_at"] is None
    # No DeployNodeName: the host name (its first label).
    assert running["node"] == socket.gethostname().split(".")[0]

    env.gate.open()
    done = env.wait_finished(jid)
    assert done["state"] == "succeeded"
    assert parse_time(done["finished_at"]) >= started
    assert done["started_at"] == running["started_at"]
    assert done["submitted_at"] == job["submitted_at"]
    assert done["exit_code"] == 0
    assert done["submitted_by"] == "alice"
    assert done["params"] == {"version": "1.2.3"}

    second = env.submit_ok("webapp", {"version": "2"})
    assert second["id"] > jid, "ids increase"
    env.wait_finished(second["id"])


def test_httpd_access_control_protects_the_routes_and_records_nothing(authenticated_env):
    env = authenticated_env
    before = env.jobs()
    r = env.unauthenticated("POST", f"{BASE}/targets/webapp", b"", {"Content-Length": "0"})
    assert r.status == 401
    r = env.unauthenticated("POST", f"{BASE}/targets/webapp", b"", dict(basic_credentials("alice", "wrong"),
                                                                         **{"Content-Length": "0"}))
    assert r.status == 401
    assert env.jobs() == before
    env.expect_error(r"AH01617|authentication failure|Password Mismatch")


def test_submitted_by_is_null_without_authentication(make_httpd):
    def prepare(env):
        env.fragment = target_block("webapp", env.write_script("ok.sh", "#!/bin/sh\nexit 0\n"))
    env = make_httpd(setup=prepare)
    job = env.submit_ok("webapp")
    assert job["submitted_by"] is None
    assert job["params"] == {}
    done = env.wait_finished(job["id"])
    assert done["submitted_by"] is None
    assert done["progress"] is None and done["stage"] is None
