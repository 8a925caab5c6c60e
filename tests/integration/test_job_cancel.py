"""POST BASE/jobs/ID/cancel: a running job gets SIGTERM, a queued one is
canceled at once, a finished one answers 409."""

import os

import pytest

from harness.httpd_env import BASE, Gate, gated_job_script, target_block
from test_job_timeout_kills_the_whole_process_group import assert_job_processes_gone


def prepare(env):
    env.gate = Gate(env, "release")
    script = gated_job_script(env, "job.sh", env.gate,
                              before=f'echo $$ > "{env.scratch}/job.pid"\n'
                                     f'echo $PPID > "{env.scratch}/runner.pid"\n'
                                     f'touch "{env.scratch}/ran-$DEPLOY_JOB_ID"\n')
    env.server_config = "DeployMaxRunning 1"
    env.fragment = target_block("webapp", script, "DeployKillGrace 10")


def cancel(env, jid):
    return env.request("POST", f"{BASE}/jobs/{jid}/cancel", b"", {"Content-Length": "0"})


@pytest.mark.sanitize
def test_cancel_of_a_running_job_ends_it_with_sigterm(make_httpd):
    env = make_httpd(setup=prepare)
    jid = env.submit_ok("webapp")["id"]
    env.wait_state(jid, "running")
    env.wait_job(jid, lambda j: os.path.exists(env.scratch_path(f"ran-{jid}")), 10, "job started")

    r = cancel(env, jid)
    assert r.status == 202, r
    assert r.json()["id"] == jid

    done = env.wait_finished(jid)
    assert done["state"] == "canceled"
    assert done["signal"] == 15
    assert done["exit_code"] is None
    assert done["finished_at"] is not None
    assert_job_processes_gone(env, ["job.pid"])

    r = cancel(env, jid)
    assert r.status == 409
    assert r.json()["error"] == "conflict"
    assert env.job(jid)["state"] == "canceled"


def test_cancel_of_a_queued_job_is_immediate_and_it_never_runs(make_httpd):
    env = make_httpd(setup=prepare)
    first = env.submit_ok("webapp")["id"]
    env.wait_state(first, "running")
    second = env.submit_ok("webapp")["id"]
    assert env.job(second)["state"] == "queued"

    r = cancel(env, second)
    assert r.status == 202, r
    job = env.job(second)
    assert job["state"] == "canceled", "a queued job is canceled at once"
    assert job["started_at"] is None and job["signal"] is None and job["exit_code"] is None
    assert job["finished_at"] is not None

    env.gate.open()
    assert env.wait_finished(first)["state"] == "succeeded"
    assert not os.path.exists(env.scratch_path(f"ran-{second}")), "canceled job ran"
    assert env.job(second)["state"] == "canceled"


def test_cancel_of_a_finished_job_is_a_conflict(make_httpd):
    env = make_httpd(setup=prepare)
    env.gate.open()
    jid = env.submit_ok("webapp")["id"]
    assert env.wait_finished(jid)["state"] == "succeeded"
    r = cancel(env, jid)
    assert r.status == 409
    body = r.json()
    assert body["error"] == "conflict" and isinstance(body["message"], str) and body["message"]
    assert env.job(jid)["state"] == "succeeded"
