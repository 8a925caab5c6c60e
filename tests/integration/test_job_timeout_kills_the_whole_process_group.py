"""DeployTimeout: SIGTERM to the job's process group, SIGKILL after
DeployKillGrace; no process of the job survives and no zombie is left."""

import os

import pytest

from harness.httpd_env import all_pids, process_ppid, process_state, target_block, wait_for


STUBBORN = """#!/bin/bash
trap '' TERM
echo $$ > "{s}/job.pid"
echo $PPID > "{s}/runner.pid"
sleep 1000 &
echo $! > "{s}/child.pid"
( sleep 1000 & echo $! > "{s}/orphan.pid" )
echo "all started"
for i in $(seq 1 600); do sleep 0.05; done
"""


def setup_stubborn(env):
    script = env.write_script("stubborn.sh", STUBBORN.format(s=env.scratch))
    env.fragment = target_block("webapp", script, "DeployTimeout 1", "DeployKillGrace 500ms")


def read_pid(env, name):
    with open(env.scratch_path(name)) as f:
        return int(f.read())


def zombies_with_parent(ppids):
    return [p for p in all_pids() if process_state(p) == "Z" and process_ppid(p) in ppids]


def assert_job_processes_gone(env, names):
    pids = {name: read_pid(env, name) for name in names}
    runner = read_pid(env, "runner.pid")

    def gone():
        return all(process_state(p) is None for p in pids.values())
    try:
        wait_for(gone, 5, "every process of the job to disappear")
    except AssertionError:
        left = {n: (p, process_state(p), process_ppid(p)) for n, p in pids.items()
                if process_state(p) is not None}
        raise AssertionError(f"job processes left (name: pid, state, ppid): {left}; "
                             f"a 'Z' with ppid 1 means nobody reaped it (PID 1 here does not "
                             f"reap orphans; the runner should be a child subreaper)")
    ours = [p for p in zombies_with_parent({runner}) if p not in pids.values()]
    assert ours == [], f"zombies of the runner: {ours}"


@pytest.mark.sanitize
def test_timeout_kills_a_job_and_its_children_that_ignore_sigterm(make_httpd):
    env = make_httpd(setup=setup_stubborn)
    jid = env.submit_ok("webapp")["id"]
    done = env.wait_finished(jid, timeout=20)
    assert done["state"] == "timed_out", done
    assert done["signal"] == 9
    assert done["exit_code"] is None
    assert b"all started" in env.log(jid).body
    assert_job_processes_gone(env, ["job.pid", "child.pid", "orphan.pid"])


def test_timeout_of_a_job_that_obeys_sigterm_ends_it_with_sigterm(make_httpd):
    def prepare(env):
        script = env.write_script("obedient.sh", f"""#!/bin/bash
echo $$ > "{env.scratch}/job.pid"
echo $PPID > "{env.scratch}/runner.pid"
for i in $(seq 1 600); do sleep 0.05; done
""")
        env.fragment = target_block("webapp", script, "DeployTimeout 1", "DeployKillGrace 30")
    env = make_httpd(setup=prepare)
    jid = env.submit_ok("webapp")["id"]
    done = env.wait_finished(jid, timeout=15)
    assert done["state"] == "timed_out", done
    assert done["signal"] == 15, "SIGKILL although the job obeyed SIGTERM"
    assert_job_processes_gone(env, ["job.pid"])
