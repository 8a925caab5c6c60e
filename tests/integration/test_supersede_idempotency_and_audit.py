"""Triggers and outcomes, in both store engines (SPEC "Triggers and
outcomes"): DeploySupersede queued and running with `superseded_by`, per
group; Idempotency-Key and DeployIdempotencyHeader answering a retried
submission with the same job and `"duplicate": true`; `canceled_by` and the
audit lines a cancel, a supersede and a timeout add to the job's log."""

import subprocess

import pytest

from harness.httpd_env import (BASE, Gate, basic_auth_location, basic_credentials,
                               gated_job_script, target_block, wait_for)
from harness.postgres import ThrowawayPostgres, make_cluster, postgres_available

ENGINES = ["file", pytest.param("postgresql", marks=pytest.mark.skipif(
    not postgres_available(), reason="no PostgreSQL server here"))]


@pytest.fixture(scope="module")
def pg_server():
    if not postgres_available():
        yield None
        return
    with ThrowawayPostgres() as server:
        yield server


def setup_targets(env):
    env.gate = Gate(env, "release")
    gated = gated_job_script(env, "gated.sh", env.gate, before='echo "job $DEPLOY_JOB_ID"\n')
    sleeper = env.write_script("sleeper.sh", "#!/bin/bash\necho started\nsleep 30\n")
    path = env.path("conf", "htpasswd")
    subprocess.run(["htpasswd", "-b", "-c", path, "alice", "secret-a"], check=True,
                   capture_output=True)
    env.server_config = (env.server_config + "\n" if env.server_config else "") + \
        "DeployMaxRunning 8"
    env.fragment = (
        target_block("queued", gated, "DeploySupersede queued", "DeployConcurrency 1")
        + target_block("running", gated, "DeploySupersede running", "DeployConcurrency 1",
                       "DeployKillGrace 2")
        + target_block("vms", gated, "DeployParam vm ^[a-z]+$", "DeployGroupBy vm",
                       "DeploySupersede running", "DeployConcurrency 1", "DeployKillGrace 2")
        + target_block("keyed", gated, "DeployIdempotencyHeader X-GitHub-Delivery")
        + target_block("plain", gated, "DeployConcurrency 1")
        + target_block("slow", sleeper, "DeployTimeout 1", "DeployKillGrace 1")
        + basic_auth_location(f"{BASE}/jobs", path))


@pytest.fixture(params=ENGINES)
def env(request, make_httpd, pg_server):
    if request.param == "file":
        return make_httpd(setup=setup_targets)
    pg_server.psql("DROP TABLE IF EXISTS deploy_output, deploy_jobs, deploy_counters, "
                   "deploy_meta, deploy_schema_version CASCADE")
    return make_cluster(make_httpd, pg_server, 1, setup=setup_targets)[0]


ALICE = basic_credentials("alice", "secret-a")


def log_of(env, job_id):
    r = env.request("GET", f"{BASE}/jobs/{job_id}/log", headers=ALICE)
    assert r.status == 200, r.body
    return r.body.decode()


def job_of(env, job_id):
    r = env.request("GET", f"{BASE}/jobs/{job_id}", headers=ALICE)
    assert r.status == 200, r.body
    return r.json()


def wait_final(env, job_id, timeout=20):
    return wait_for(lambda: (lambda j: j if j["finished_at"] else None)(job_of(env, job_id)),
                    timeout, f"job {job_id} to finish")


def wait_running(env, job_id, timeout=15):
    return wait_for(lambda: (lambda j: j if j["state"] == "running" else None)(
        job_of(env, job_id)), timeout, f"job {job_id} to run")


def test_supersede_queued_cancels_the_waiting_jobs_and_running_stops_the_running_one(env):
    first = env.submit_ok("queued")
    wait_running(env, first["id"])
    second = env.submit_ok("queued")
    third = env.submit_ok("queued")
    # queued: the older queued job is canceled at once, the running one runs on.
    old = job_of(env, second["id"])
    assert (old["state"], old["superseded_by"], old["canceled_by"]) == \
        ("canceled", third["id"], None)
    assert f"deploy: superseded by job {third['id']}" in log_of(env, second["id"])
    assert job_of(env, first["id"])["state"] == "running"
    assert job_of(env, third["id"])["superseded_by"] is None

    # running: the running job is stopped, and the new one starts after it.
    a = env.submit_ok("running")
    wait_running(env, a["id"])
    b = env.submit_ok("running")
    stopped = wait_final(env, a["id"])
    assert (stopped["state"], stopped["superseded_by"]) == ("canceled", b["id"])
    assert f"deploy: superseded by job {b['id']}" in log_of(env, a["id"])
    started = wait_running(env, b["id"])
    assert started["started_at"] >= stopped["finished_at"]

    # Per group: vm=b's job is left alone by a new vm=a.
    va = env.submit_ok("vms", {"vm": "a"})
    vb = env.submit_ok("vms", {"vm": "b"})
    wait_running(env, va["id"])
    wait_running(env, vb["id"])
    va2 = env.submit_ok("vms", {"vm": "a"})
    assert wait_final(env, va["id"])["superseded_by"] == va2["id"]
    assert job_of(env, vb["id"])["state"] == "running"
    env.gate.open()
    for job in (first, third, b, vb, va2):
        assert wait_final(env, job["id"])["state"] == "succeeded"


def test_a_retried_submission_with_its_key_returns_the_same_job(env):
    h = {"Idempotency-Key": "retry-42"}
    r1 = env.submit("keyed", headers=h)
    assert r1.status == 202
    r2 = env.submit("keyed", headers=h)
    assert r2.status == 200, r2.body
    body = r2.json()
    assert body["duplicate"] is True and body["id"] == r1.json()["id"]
    assert "duplicate" not in r1.json()
    # The target's DeployIdempotencyHeader, as GitHub sends on a redelivery.
    g1 = env.submit("keyed", headers={"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab"})
    g2 = env.submit("keyed", headers={"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab"})
    assert (g1.status, g2.status) == (202, 200)
    assert g2.json()["id"] == g1.json()["id"] != r1.json()["id"]
    # Another target does not know the key; a bad key is refused.
    assert env.submit("queued", headers=h).status == 202
    for bad in ("x" * 256, "tab\there", ""):
        r = env.submit("keyed", headers={"Idempotency-Key": bad})
        assert (r.status, r.json()["error"]) == (400, "bad_request"), bad
    listed = env.request("GET", f"{BASE}/jobs?target=keyed", headers=ALICE).json()
    assert len(listed) == 2
    env.gate.open()


def test_cancel_records_who_asked_and_a_timeout_says_so_in_the_log(env):
    running = env.submit_ok("plain")
    wait_running(env, running["id"])
    queued = env.submit_ok("plain")
    # A queued job: canceled at once by alice (authenticated by httpd).
    r = env.request("POST", f"{BASE}/jobs/{queued['id']}/cancel", b"", ALICE)
    assert r.status == 202, r.body
    assert (r.json()["state"], r.json()["canceled_by"]) == ("canceled", "alice")
    assert log_of(env, queued["id"]) == "deploy: canceled by alice\n"
    # A running job: its runner writes the line once it has the cancel.
    r = env.request("POST", f"{BASE}/jobs/{running['id']}/cancel", b"", ALICE)
    assert r.status == 202 and r.json()["canceled_by"] == "alice"
    done = wait_final(env, running["id"])
    assert (done["state"], done["canceled_by"], done["superseded_by"]) == \
        ("canceled", "alice", None)
    assert "deploy: canceled by alice" in log_of(env, running["id"])
    # A timeout.
    slow = env.submit_ok("slow")
    ended = wait_final(env, slow["id"])
    assert ended["state"] == "timed_out" and ended["canceled_by"] is None
    assert "deploy: timed out after 1s (DeployTimeout)" in log_of(env, slow["id"])
    # A job that ended otherwise shows no canceled_by.
    other = env.submit_ok("plain")
    env.gate.open()
    assert wait_final(env, other["id"])["canceled_by"] is None
