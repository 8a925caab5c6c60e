"""DeployQueueLimit counts waiting and queued jobs: past it a new job is refused
with 503 queue_full and Retry-After and nothing is recorded, while a trigger
that joins a waiting job is still accepted. DeployQueueTimeout: a job not
started in time, queued or still waiting, becomes expired with finished_at."""

import os

from harness.httpd_env import BASE, Gate, gated_job_script, target_block, wait_for
from test_job_json_fields import parse_time


def job_list(env):
    return [(j["id"], j["state"], j["requests"]) for j in env.jobs("?limit=1000")]


def test_a_full_queue_refuses_new_jobs_but_accepts_a_joining_trigger(make_httpd):
    def prepare(env):
        env.gate = Gate(env, "release")
        env.server_config = "DeployMaxRunning 1\nDeployQueueLimit 2"
        env.fragment = (target_block("blocker", gated_job_script(env, "blocker.sh", env.gate))
                        + target_block("quiet", "/bin/true", "DeployParam v ^[0-9]+$",
                                       "DeployWaitChangeNotification 1mi"))
    env = make_httpd(setup=prepare, name="queue-limit")
    running = env.submit_ok("blocker")["id"]
    env.wait_state(running, "running")
    queued = env.submit_ok("blocker")["id"]
    waiting = env.submit_ok("quiet", {"v": "1"})["id"]
    assert env.job(queued)["state"] == "queued" and env.job(waiting)["state"] == "waiting"

    def refused(target):
        before = job_list(env)
        r = env.submit(target)
        assert r.status == 503, r
        assert r.json()["error"] == "queue_full" and r.json()["message"]
        assert r.headers.get("Retry-After", "").strip().isdigit(), r.headers.get("Retry-After")
        assert job_list(env) == before, "a refused submission recorded something"

    refused("blocker")
    joined = env.submit("quiet", {"v": "2"})
    assert joined.status == 202, f"a joining trigger is accepted with the queue full: {joined}"
    assert joined.json()["id"] == waiting and joined.json()["coalesced"] is True
    assert joined.json()["requests"] == 2 and joined.json()["params"] == {"v": "2"}
    refused("blocker")
    before = job_list(env)

    # A joining trigger that is itself bad is refused, even though it adds no job.
    r = env.submit("quiet", {"v": "x"})
    assert r.status == 400 and r.json()["error"] == "invalid_param"
    assert job_list(env) == before

    assert env.request("POST", f"{BASE}/jobs/{waiting}/cancel", b"",
                       {"Content-Length": "0"}).status == 202
    env.gate.open()
    for jid in (running, queued):
        assert env.wait_finished(jid, timeout=30)["state"] == "succeeded"


def test_jobs_not_started_within_the_queue_timeout_expire(make_httpd):
    def prepare(env):
        env.gate = Gate(env, "release")
        marker = env.write_script("marker.sh",
                                  f'#!/bin/sh\ntouch "{env.scratch}/ran-$DEPLOY_JOB_ID"\n')
        env.server_config = "DeployMaxRunning 1"
        env.fragment = (target_block("blocker", gated_job_script(env, "blocker.sh", env.gate))
                        + target_block("late", marker, "DeployQueueTimeout 500ms")
                        + target_block("quiet", marker, "DeployQueueTimeout 500ms",
                                       "DeployWaitChangeNotification 3"))
    env = make_httpd(setup=prepare, name="queue-timeout")
    blocker = env.submit_ok("blocker")["id"]
    env.wait_state(blocker, "running")
    late = env.submit_ok("late")
    quiet = env.submit_ok("quiet")
    assert late["state"] == "queued" and quiet["state"] == "waiting"

    for submitted in (late, quiet):
        job = env.wait_finished(submitted["id"], timeout=15)
        assert job["state"] == "expired", job
        assert job["started_at"] is None and job["exit_code"] is None and job["signal"] is None
        assert job["not_before"] is None
        assert job["finished_at"] is not None, "finished_at is set for every final state"
        waited = parse_time(job["finished_at"]) - parse_time(job["submitted_at"])
        assert 0.49 <= waited < 5, f"expired {waited:.3f} s after submission (timeout 0.5 s)"
        assert not os.path.exists(env.scratch_path(f"ran-{job['id']}")), \
            "an expired job never runs"
    assert env.log(late["id"]).body == b""

    env.gate.open()
    assert env.wait_finished(blocker, timeout=30)["state"] == "succeeded"
    # The slot is free again: a new job of the target runs.
    again = env.submit_ok("late")["id"]
    assert env.wait_finished(again, timeout=15)["state"] == "succeeded"
    wait_for(lambda: os.path.exists(env.scratch_path(f"ran-{again}")), 5, "the new job's marker")
