"""A job starts when it becomes ready — its quiet window over, or a slot freed —
without any request to set things going. The test only reads (GET of the
job), which decides nothing; the bounds are generous because they prove the
scheduler wakes by itself, not how fast it is."""

import pytest

from harness.httpd_env import target_block
from test_job_json_fields import parse_time

PROMPT = 1.0  # seconds; the scheduler's target is milliseconds


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_a_waiting_job_starts_at_not_before_with_no_request(make_httpd, mpm):
    def prepare(env):
        env.fragment = target_block("quiet", "/bin/true", "DeployWaitChangeNotification 300ms")
    env = make_httpd(setup=prepare, mpm=mpm, name="self-start")
    submitted = env.submit_ok("quiet")
    assert submitted["state"] == "waiting"
    not_before = parse_time(submitted["not_before"])

    done = env.wait_finished(submitted["id"], timeout=15)
    assert done["state"] == "succeeded"
    late = parse_time(done["started_at"]) - not_before
    assert -0.01 <= late < PROMPT, f"started {late:.3f} s after not_before"


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_a_queued_job_starts_when_the_slot_frees_with_no_request(make_httpd, mpm):
    def prepare(env):
        short = env.write_script("short.sh", "#!/bin/sh\nsleep 0.5\n")
        env.server_config = "DeployMaxRunning 1"
        env.fragment = target_block("short", short, "DeployConcurrency 0")
    env = make_httpd(setup=prepare, mpm=mpm, name="slot-freed")
    first = env.submit_ok("short")["id"]
    second = env.submit_ok("short")["id"]
    first_done = env.wait_finished(first, timeout=15)
    second_done = env.wait_finished(second, timeout=15)
    assert first_done["state"] == second_done["state"] == "succeeded"
    gap = parse_time(second_done["started_at"]) - parse_time(first_done["finished_at"])
    assert -0.01 <= gap < PROMPT, f"the queued job started {gap:.3f} s after the slot freed"
