"""DeployGroupBy: a target's jobs are grouped by a parameter's value.
DeployConcurrency holds per group, so vm=a and vm=b deploy at the same time
while a second vm=a queues; coalescing joins only a waiting job of the same
group; the job JSON shows `group` (null without DeployGroupBy).

Each job of the gated target blocks until the test creates the file named
after its id, so which jobs run together is decided by the test, not by
timing."""

import pytest

from harness.event_stream import EventStream, is_job_event
from harness.httpd_env import BASE, blocking_script_lines, target_block


def gate_of(env, job_id):
    return env.scratch_path(f"gate-{job_id}")


def open_gate(env, job_id):
    with open(gate_of(env, job_id), "w"):
        pass


def prepare(env):
    gated = env.write_script("gated.sh", "#!/bin/bash\n" + blocking_script_lines(
        env.scratch_path("gate-$DEPLOY_JOB_ID"), seconds=60))
    env.fragment = (target_block("vms", gated, "DeployParam vm ^[a-z]*$", "DeployGroupBy vm",
                                 "DeployConcurrency 1")
                    + target_block("plain", "/bin/true", "DeployParam vm ^[a-z]*$")
                    + target_block("quiet", "/bin/true", "DeployParam vm ^[a-z]*$",
                                   "DeployParam version ^[0-9]+$", "DeployGroupBy vm",
                                   "DeployWaitChangeNotification 5",
                                   "DeployMaxWaitChangeNotification 30"))


@pytest.mark.sanitize
def test_groups_run_in_parallel_and_a_second_job_of_a_group_queues(make_httpd):
    env = make_httpd(setup=prepare)
    a1 = env.submit_ok("vms", {"vm": "a"})
    b1 = env.submit_ok("vms", {"vm": "b"})
    assert (a1["group"], b1["group"]) == ("a", "b")
    # With DeployConcurrency 1 for the whole target, b would queue behind a.
    env.wait_state(a1["id"], "running")
    env.wait_state(b1["id"], "running")

    a2 = env.submit_ok("vms", {"vm": "a"})
    assert a2["group"] == "a" and a2["state"] == "queued"
    # The empty value (or no vm at all) is a group of its own.
    no_vm = env.submit_ok("vms")
    assert no_vm["group"] == ""
    env.wait_state(no_vm["id"], "running")
    assert env.job(a2["id"])["state"] == "queued"

    open_gate(env, b1["id"])
    assert env.wait_finished(b1["id"])["state"] == "succeeded"
    assert env.job(a2["id"])["state"] == "queued", "vm=b's end started a job of vm=a"

    open_gate(env, a1["id"])
    first = env.wait_finished(a1["id"])
    assert first["state"] == "succeeded"
    second = env.wait_state(a2["id"], "running")
    assert second["started_at"] >= first["finished_at"]
    for job in (a2, no_vm):
        open_gate(env, job["id"])
        assert env.wait_finished(job["id"])["state"] == "succeeded"

    # Every place the job JSON appears shows the group.
    listed = {j["id"]: j["group"] for j in env.jobs("?target=vms")}
    assert listed == {a1["id"]: "a", b1["id"]: "b", a2["id"]: "a", no_vm["id"]: ""}
    assert env.job(b1["id"])["group"] == "b"
    targets = {t["name"]: t for t in env.get(f"{BASE}/targets").json()}
    assert targets["vms"]["latest_job"]["group"] == ""
    with EventStream(env, f"{BASE}/jobs/{a2['id']}/events") as stream:
        event = stream.read_until(lambda e: is_job_event(e, a2["id"]), "the job's state")[-1]
        assert event.json()["group"] == "a"
    with EventStream(env, f"{BASE}/events?since=0") as stream:
        event = stream.read_until(lambda e: is_job_event(e, b1["id"]), "vm=b's job")[-1]
        assert event.json()["group"] == "b"


@pytest.mark.sanitize
def test_a_target_without_group_by_shows_group_null(make_httpd):
    env = make_httpd(setup=prepare)
    job = env.submit_ok("plain", {"vm": "a"})
    assert "group" in job and job["group"] is None
    assert env.wait_finished(job["id"])["group"] is None
    assert env.jobs("?target=plain")[0]["group"] is None


@pytest.mark.sanitize
def test_triggers_of_two_groups_make_two_waiting_jobs_each_coalescing_its_own(make_httpd):
    env = make_httpd(setup=prepare)
    a = env.submit_ok("quiet", {"vm": "a", "version": "1"})
    b = env.submit_ok("quiet", {"vm": "b", "version": "2"})
    a_again = env.submit_ok("quiet", {"vm": "a", "version": "3"})
    b_again = env.submit_ok("quiet", {"vm": "b", "version": "4"})
    assert a["state"] == b["state"] == "waiting"
    assert b["id"] != a["id"] and b.get("coalesced") is not True
    assert a_again["id"] == a["id"] and a_again.get("coalesced") is True
    assert b_again["id"] == b["id"] and b_again.get("coalesced") is True
    assert a_again["params"] == {"vm": "a", "version": "3"} and a_again["requests"] == 2
    assert b_again["params"] == {"vm": "b", "version": "4"} and b_again["requests"] == 2

    for job, group, version in ((a, "a", "3"), (b, "b", "4")):
        done = env.wait_finished(job["id"], timeout=30)
        assert done["state"] == "succeeded"
        assert (done["group"], done["params"]["version"], done["requests"]) == (group, version, 2)
    assert sorted(j["id"] for j in env.jobs("?target=quiet")) == sorted([a["id"], b["id"]])
