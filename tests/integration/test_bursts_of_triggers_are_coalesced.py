"""DeployWaitChangeNotification: submissions to a target whose job is still
waiting join it (latest params win, requests grows, coalesced: true), and the
job starts after the quiet window."""

import time

import pytest

from harness.httpd_env import target_block
from test_job_json_fields import parse_time
from test_job_parameters_never_reach_a_shell import read_environ


def prepare(env):
    script = env.write_script("env.sh", f"""#!/bin/bash
cat /proc/$$/environ > "{env.scratch}/job-$DEPLOY_JOB_ID.environ"
""")
    env.fragment = target_block("webapp", script, "DeployParam version ^[0-9.]+$",
                                "DeployWaitChangeNotification 2",
                                "DeployMaxWaitChangeNotification 30")


@pytest.mark.sanitize
def test_triggers_within_the_quiet_window_make_one_job(make_httpd):
    env = make_httpd(setup=prepare)
    first = env.submit_ok("webapp", {"version": "1"})
    assert first["state"] == "waiting"
    assert first["requests"] == 1
    assert parse_time(first["not_before"]) >= parse_time(first["submitted_at"]) + 1.9

    second = env.submit_ok("webapp", {"version": "2"})
    third = env.submit_ok("webapp", {"version": "3"})
    last_trigger = time.time()
    for joined, requests in ((second, 2), (third, 3)):
        assert joined["id"] == first["id"]
        assert joined.get("coalesced") is True
        assert joined["requests"] == requests
        assert joined["state"] == "waiting"
    assert third["params"] == {"version": "3"}
    assert parse_time(third["not_before"]) >= parse_time(first["not_before"])
    assert abs(parse_time(third["not_before"]) - (last_trigger + 2)) < 1.0

    done = env.wait_finished(first["id"], timeout=15)
    assert done["state"] == "succeeded"
    assert parse_time(done["started_at"]) >= parse_time(third["not_before"]) - 0.05
    environ = read_environ(env.scratch_path(f"job-{first['id']}.environ"))
    assert environ["DEPLOY_REQUESTS"] == "3"
    assert environ["DEPLOY_PARAM_VERSION"] == "3"
    assert [j["id"] for j in env.jobs()] == [first["id"]], "coalesced triggers made other jobs"

    later = env.submit_ok("webapp", {"version": "4"})
    assert later["id"] > first["id"] and later.get("coalesced") is not True
    assert env.wait_finished(later["id"], timeout=15)["state"] == "succeeded"
