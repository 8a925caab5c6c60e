"""The whole flow under each MPM: a POST is answered 202 at once, the job runs in
the background, and its JSON goes from running to succeeded."""

import time
import urllib.parse

import pytest

from harness.httpd_env import BASE, MPMS, Gate, gated_job_script, target_block


def setup_blocking_target(env):
    env.gate = Gate(env, "release")
    script = gated_job_script(env, "deploy.sh", env.gate, before='echo "deploying $DEPLOY_TARGET"\n',
                              after='echo "done"\n')
    env.fragment = target_block("webapp", script)


@pytest.mark.sanitize
@pytest.mark.parametrize("mpm", MPMS)
def test_post_is_answered_at_once_and_job_runs_to_success(make_httpd, mpm):
    env = make_httpd(mpm=mpm, setup=setup_blocking_target)

    started = time.monotonic()
    r = env.submit("webapp")
    elapsed = time.monotonic() - started
    assert r.status == 202, r
    assert elapsed < 1.0, f"202 took {elapsed:.3f}s although the job blocks"
    job = r.json()
    assert isinstance(job["id"], int) and job["id"] > 0
    assert job["target"] == "webapp"
    assert job["state"] in ("queued", "running")
    location = r.headers.get("Location")
    assert location, "202 without Location"
    assert urllib.parse.urlsplit(location).path == f"{BASE}/jobs/{job['id']}"

    running = env.wait_state(job["id"], "running")
    assert running["started_at"] is not None
    assert running["finished_at"] is None
    assert running["exit_code"] is None

    env.gate.open()
    done = env.wait_finished(job["id"])
    assert done["state"] == "succeeded", done
    assert done["exit_code"] == 0
    assert done["signal"] is None
    assert done["finished_at"] is not None
    assert b"deploying webapp\n" in env.log(job["id"]).body


def test_missing_state_dir_is_created(make_httpd):
    def prepare(env):
        env.fragment = target_block("webapp", env.write_script("ok.sh", "#!/bin/sh\nexit 0\n"))
    env = make_httpd(prepare_state_dir=False, setup=prepare)
    job = env.submit_ok("webapp")
    assert env.wait_finished(job["id"])["state"] == "succeeded"
    import os
    assert os.path.isdir(env.state_dir)


def test_failing_job_is_failed_with_its_exit_code(make_httpd):
    def prepare(env):
        env.fragment = target_block("webapp", env.write_script("fail.sh", "#!/bin/sh\nexit 3\n"))
    env = make_httpd(setup=prepare)
    job = env.submit_ok("webapp")
    done = env.wait_finished(job["id"])
    assert done["state"] == "failed"
    assert done["exit_code"] == 3
    assert done["signal"] is None
