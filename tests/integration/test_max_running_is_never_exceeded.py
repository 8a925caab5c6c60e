"""DeployMaxRunning and DeployConcurrency: never more jobs at once than allowed;
ready jobs start oldest first, passing over those whose target is full."""

import os

import pytest

from harness.httpd_env import Gate, blocking_script_lines, target_block, wait_for


def prepare(env):
    env.gate = Gate(env, "release")
    script = env.write_script("timed.sh", f"""#!/bin/bash
date +%s%N > "{env.scratch}/$DEPLOY_JOB_ID.start"
""" + blocking_script_lines(env.gate.path) + f"""
date +%s%N > "{env.scratch}/$DEPLOY_JOB_ID.end"
""")
    env.server_config = "DeployMaxRunning 2"
    env.fragment = (target_block("many", script, "DeployConcurrency 0")
                    + target_block("single", script)
                    + target_block("other", script))


def running_ids(env):
    return sorted(j["id"] for j in env.jobs("?state=running"))


def max_overlap(env, ids):
    events = []
    for jid in ids:
        start = int(open(env.scratch_path(f"{jid}.start")).read())
        end = int(open(env.scratch_path(f"{jid}.end")).read())
        events += [(start, 1), (end, -1)]
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        running += delta
        peak = max(peak, running)
    return peak


@pytest.mark.sanitize
def test_max_running_is_never_exceeded(make_httpd):
    env = make_httpd(setup=prepare)
    ids = [env.submit_ok("many")["id"] for _ in range(5)]
    wait_for(lambda: len(running_ids(env)) == 2, 15, "two jobs running")
    assert running_ids(env) == ids[:2], "the oldest jobs start first"
    assert sorted(j["id"] for j in env.jobs("?state=queued")) == ids[2:]
    wait_for(lambda: all(os.path.exists(env.scratch_path(f"{i}.start")) for i in ids[:2]), 10,
             "the two running jobs to record their start")
    assert not any(os.path.exists(env.scratch_path(f"{i}.start")) for i in ids[2:])

    env.gate.open()
    for jid in ids:
        assert env.wait_finished(jid)["state"] == "succeeded"
    assert max_overlap(env, ids) <= 2


def test_a_full_target_is_passed_over_for_a_younger_job(make_httpd):
    def setup3(env):
        prepare(env)
        env.server_config = "DeployMaxRunning 3"
    env = make_httpd(setup=setup3)
    s1 = env.submit_ok("single")["id"]
    s2 = env.submit_ok("single")["id"]
    o1 = env.submit_ok("other")["id"]
    wait_for(lambda: running_ids(env) == [s1, o1], 15, "single#1 and other#1 running")
    assert env.job(s2)["state"] == "queued", "DeployConcurrency 1 exceeded"
    env.gate.open()
    for jid in (s1, s2, o1):
        assert env.wait_finished(jid)["state"] == "succeeded"
    assert max_overlap(env, [s1, s2]) == 1
