"""A table header written into nonsense while httpd runs (any process of
httpd's user can write jobs.table) crashes nothing: every process keeps the
capacity it validated when it mapped the file. Routes answer as before or with
a JSON error, the scheduler starts new jobs, a running job's runner records
its outcome, no httpd child dies of a signal, and the next start repairs the
file."""

import os
import struct

import pytest

from harness.httpd_env import BASE, Gate, children_of, gated_job_script, target_block, wait_for

# Offsets in TableHeader (core/job_table.h).
CAPACITY = 16
SUPERSEDED = 20
NEXT_ID = 24


def overwrite(env, offset, data):
    with open(os.path.join(env.state_dir, "jobs.table"), "r+b") as f:
        f.seek(offset)
        f.write(data)


def read_u32(env, offset):
    with open(os.path.join(env.state_dir, "jobs.table"), "rb") as f:
        f.seek(offset)
        return struct.unpack("<I", f.read(4))[0]


def prepare(env):
    quick = env.write_script("quick.sh", '#!/bin/bash\necho "job $DEPLOY_JOB_ID"\n')
    env.gate = Gate(env, "gate")
    gated = gated_job_script(env, "gated.sh", env.gate, before='echo "started"\n',
                             after='echo "::progress 90 Finishing"\necho "done"\n')
    env.fragment = target_block("quick", quick) + target_block("gated", gated)


def json_answer(r):
    """The answer is a JSON document: a crashed child sends none."""
    assert r.headers.get("Content-Type", "").startswith("application/json"), r
    return r.json()


def mappings_of_the_table(env):
    """The most mappings of jobs.table any process of httpd has."""
    most = 0
    for pid in children_of(env.read_pid()):
        try:
            with open(f"/proc/{pid}/maps") as f:
                most = max(most, sum("jobs.table" in line for line in f))
        except OSError:
            pass
    return most


DAMAGES = {
    "capacity_0": (CAPACITY, struct.pack("<I", 0)),
    "capacity_1": (CAPACITY, struct.pack("<I", 1)),
    "next_id_at_the_end_of_uint64": (NEXT_ID, struct.pack("<Q", 2**64 - 1)),
    "superseded_forged": (SUPERSEDED, struct.pack("<I", 1)),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_header_crashes_nothing_and_start_repairs_it(make_httpd, damage):
    env = make_httpd(setup=prepare)
    finished = [env.wait_finished(env.submit_ok("quick")["id"]) for _ in range(3)]
    running = env.submit_ok("gated")["id"]
    env.wait_job(running, lambda j: j["state"] == "running", 15, "running")
    capacity = read_u32(env, CAPACITY)
    ids = [j["id"] for j in finished] + [running]

    offset, data = DAMAGES[damage]
    overwrite(env, offset, data)
    if damage == "next_id_at_the_end_of_uint64":
        env.expect_error(r"the header of the job table is damaged")

    # Reads answer as before.
    for _ in range(20):
        for job in finished:
            r = env.get(f"{BASE}/jobs/{job['id']}")
            assert r.status == 200, r
            assert json_answer(r) == job
    assert [j["id"] for j in env.jobs()] == sorted(ids, reverse=True)
    for path in ("/", "/?auto", "/metrics", "/targets"):
        assert env.get(BASE + path).status == 200, path
    # A submission is a job that runs, or a JSON error; never a crash.
    r = env.submit("quick")
    body = json_answer(r)
    if damage == "next_id_at_the_end_of_uint64":
        assert (r.status, body["error"]) == (500, "internal"), r
    else:
        assert r.status == 202, r
        assert ids[-1] < body["id"] < 2**53
        assert env.wait_finished(body["id"])["state"] == "succeeded"
        ids.append(body["id"])
    # The running job's runner keeps its job.
    env.gate.open()
    done = env.wait_finished(running)
    assert (done["state"], done["progress"]) == ("succeeded", 90), done
    assert env.log(running).body == b"started\n::progress 90 Finishing\ndone\n"
    assert "exit signal" not in env.error_log_text()
    # Each process maps the file once, whatever `superseded` says.
    assert mappings_of_the_table(env) <= 2

    # The next start repairs the header and keeps the jobs.
    assert env.stop() is None
    env.start()
    assert read_u32(env, CAPACITY) == capacity
    assert read_u32(env, SUPERSEDED) == 0
    assert [j["id"] for j in env.jobs()] == sorted(ids, reverse=True)
    new = env.submit_ok("quick")
    assert new["id"] > max(ids)
    assert env.wait_finished(new["id"])["state"] == "succeeded"
    assert "exit signal" not in env.error_log_text()
