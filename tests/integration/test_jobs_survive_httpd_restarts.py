"""apachectl graceful, restart and stop do not stop running jobs; their outcome
is recorded once, when they end, and is visible as soon as httpd runs; waiting
and queued jobs are kept and start after the restart (SPEC, "Restarts and
failures")."""

import os
import time

import pytest

from harness.processes import (job_pid, runner_pid, runner_pids, job_pids, the_scheduler,
                               timestamp, wait_gone)
from harness.status import total
from harness.httpd_env import BASE, Gate, blocking_script_lines, process_alive, target_block, wait_for

RELOADS = ["graceful", "restart"]


def two_gate_script(env, name, first, second):
    """A job that reports progress, waits for `first`, reports more, waits for `second`."""
    return env.write_script(name, "#!/bin/bash\n"
                            'echo "before"\n'
                            'echo "::progress 30 Before"\n'
                            + blocking_script_lines(first.path, 60)
                            + 'echo "::progress 70 After"\n'
                            + blocking_script_lines(second.path, 60)
                            + 'echo "after"\n'
                            "exit 0\n")


def prepare(env):
    env.gates = {}
    env.scripts = {}
    blocks = []
    for name in RELOADS + ["stop"]:
        first, second = Gate(env, f"{name}-1"), Gate(env, f"{name}-2")
        env.gates[name] = (first, second)
        env.scripts[name] = two_gate_script(env, f"{name}.sh", first, second)
        blocks.append(target_block(name, env.scripts[name]))
    quick = env.write_script("quick.sh", '#!/bin/bash\necho "quick $DEPLOY_JOB_ID"\n')
    blocks.append(target_block("quick", quick))
    blocks.append(target_block("quiet", quick, "DeployWaitChangeNotification 5"))
    env.fragment = "".join(blocks)


def reload(env, how):
    if how == "stop":
        assert env.stop() is None
        env.start()
    else:
        getattr(env, how)()


def finished_counter(env, target, state):
    """deploy_jobs_finished_total{target=,state=} of /metrics."""
    r = env.get(f"{BASE}/metrics")
    assert r.status == 200, r
    prefix = f'deploy_jobs_finished_total{{target="{target}",state="{state}"}} '
    for line in r.text.splitlines():
        if line.startswith(prefix):
            return int(line[len(prefix):])
    return 0


@pytest.mark.sanitize
@pytest.mark.parametrize("mpm", ["event", "prefork"])
@pytest.mark.parametrize("how", RELOADS)
def test_running_job_survives_a_reload(make_httpd, how, mpm):
    env = make_httpd(mpm=mpm, setup=prepare)
    first, second = env.gates[how]
    jid = env.submit_ok(how)["id"]
    env.wait_job(jid, lambda j: j["state"] == "running" and j["progress"] == 30, 15,
                 "running at 30 %")
    job = job_pid(env, jid, env.scripts[how])
    runner = runner_pid(env, jid)
    old_scheduler = the_scheduler(env)

    getattr(env, how)()

    # The same processes go on; the scheduler is a new one.
    assert process_alive(job) and job_pids(env, jid, env.scripts[how]) == [job]
    assert process_alive(runner) and runner_pids(env, jid) == [runner]
    wait_gone([old_scheduler], 10, "the scheduler of the old generation to exit")
    assert the_scheduler(env) != old_scheduler
    j = env.job(jid)
    assert (j["state"], j["progress"], j["stage"]) == ("running", 30, "Before"), j

    # Progress made after the reload is visible.
    first.open()
    env.wait_job(jid, lambda j: j["progress"] == 70 and j["stage"] == "After", 15,
                 "progress 70 after the reload")
    assert env.job(jid)["state"] == "running"
    assert process_alive(job)

    second.open()
    done = env.wait_finished(jid)
    assert done["state"] == "succeeded", done
    assert done["exit_code"] == 0 and done["signal"] is None
    assert done["finished_at"] is not None
    assert env.log(jid).body == b"before\n::progress 30 Before\n::progress 70 After\nafter\n"

    # Recorded once, and it stays once across another reload.
    assert total(env, "succeeded") == 1
    assert finished_counter(env, how, "succeeded") == 1
    getattr(env, how)()
    assert total(env, "succeeded") == 1
    assert finished_counter(env, how, "succeeded") == 1
    assert env.job(jid) == done

    later = env.submit_ok("quick")["id"]
    assert later > jid, "ids increase across a reload"
    assert env.wait_finished(later)["state"] == "succeeded"
    assert total(env, "succeeded") == 2


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_job_running_through_stop_is_recorded_when_httpd_runs_again(make_httpd, mpm):
    env = make_httpd(mpm=mpm, setup=prepare)
    first, second = env.gates["stop"]
    jid = env.submit_ok("stop")["id"]
    env.wait_job(jid, lambda j: j["state"] == "running" and j["progress"] == 30, 15,
                 "running at 30 %")
    job = job_pid(env, jid, env.scripts["stop"])
    runner = runner_pid(env, jid)

    assert env.stop() is None
    stopped_at = time.time()
    # httpd is down; the job and its runner are not.
    assert process_alive(job) and process_alive(runner)
    first.open()
    second.open()
    wait_gone([job, runner], 15, "the job and its runner to end while httpd is stopped")
    ended_at = time.time()

    env.start()
    # Visible at once: no waiting for a scheduler pass.
    done = env.job(jid)
    assert done["state"] == "succeeded", done
    assert done["exit_code"] == 0 and done["signal"] is None
    assert done["progress"] == 70 and done["stage"] == "After"
    finished_at = timestamp(done["finished_at"])
    assert stopped_at - 0.01 <= finished_at <= ended_at + 0.01, \
        f"finished_at {done['finished_at']} is not within the stop"
    assert env.log(jid).body == b"before\n::progress 30 Before\n::progress 70 After\nafter\n"
    assert total(env, "succeeded") == 1
    assert finished_counter(env, "stop", "succeeded") == 1

    later = env.submit_ok("quick")["id"]
    assert later > jid, "ids increase across a stop"
    assert env.wait_finished(later)["state"] == "succeeded"
    assert env.job(jid) == done, "a finished job does not change after a restart"


@pytest.mark.parametrize("how", ["graceful", "restart", "stop"])
def test_running_job_survives_a_reload_that_rewrites_the_table(make_httpd, how):
    """A new DeployHistory resizes jobs.table at the restart: the runner of a
    running job follows the new file, and its outcome lands there."""
    env = make_httpd(setup=prepare, server_config="DeployHistory 5")
    first, second = env.gates[how if how != "stop" else "stop"]
    jid = env.submit_ok(how)["id"]
    env.wait_job(jid, lambda j: j["state"] == "running" and j["progress"] == 30, 15,
                 "running at 30 %")
    runner = runner_pid(env, jid)
    table = os.path.join(env.state_dir, "jobs.table")
    inode = os.stat(table).st_ino

    env.server_config = "DeployHistory 7"
    reload(env, how)
    assert os.stat(table).st_ino != inode, "the table was rewritten"
    assert process_alive(runner)
    first.open()
    env.wait_job(jid, lambda j: j["progress"] == 70, 15, "progress 70 in the new table")
    second.open()
    done = env.wait_finished(jid)
    assert done["state"] == "succeeded" and done["exit_code"] == 0, done
    assert env.log(jid).body == b"before\n::progress 30 Before\n::progress 70 After\nafter\n"
    assert total(env, "succeeded") == 1
    later = env.submit_ok("quick")["id"]
    assert later > jid
    assert env.wait_finished(later)["state"] == "succeeded"


@pytest.mark.parametrize("how", ["graceful", "restart", "stop"])
def test_waiting_job_starts_after_the_restart_not_before_its_time(make_httpd, how):
    env = make_httpd(setup=prepare)
    submitted = env.submit_ok("quiet")
    jid = submitted["id"]
    assert submitted["state"] == "waiting", submitted
    not_before = timestamp(submitted["not_before"])

    reload(env, how)
    reloaded_at = time.time()
    j = env.job(jid)
    assert reloaded_at < not_before, "the reload took longer than the quiet window: retry"
    assert j["state"] == "waiting", j
    assert j["not_before"] == submitted["not_before"]

    done = env.wait_finished(jid, timeout=30)
    assert done["state"] == "succeeded", done
    started_at = timestamp(done["started_at"])
    assert started_at >= not_before, f"started at {done['started_at']}, before {submitted['not_before']}"
    assert started_at >= reloaded_at - 0.01
    assert done["requests"] == 1
    assert env.log(jid).body == f"quick {jid}\n".encode()


def prepare_queue(env):
    env.gate = Gate(env, "release-first")
    env.first_script = env.write_script(
        "first.sh", "#!/bin/bash\n" + blocking_script_lines(env.gate.path, 60) + "echo first\n")
    quick = env.write_script("second.sh", "#!/bin/bash\necho second\n")
    env.server_config = "DeployMaxRunning 1"
    env.fragment = target_block("first", env.first_script) + target_block("second", quick)


@pytest.mark.parametrize("how", ["graceful", "restart", "stop"])
def test_queued_job_starts_after_the_running_one_ends_after_the_restart(make_httpd, how):
    env = make_httpd(setup=prepare_queue)
    first = env.submit_ok("first")["id"]
    env.wait_state(first, "running")
    second = env.submit_ok("second")["id"]
    env.wait_state(second, "queued")

    reload(env, how)
    time.sleep(1.5)  # more than one scheduler pass of the new generation
    assert env.job(first)["state"] == "running"
    assert env.job(second)["state"] == "queued", "the queued job started beside the running one"
    assert not os.path.exists(os.path.join(env.state_dir, "logs", f"{second}.log"))

    env.gate.open()
    a = env.wait_finished(first, timeout=20)
    b = env.wait_finished(second, timeout=20)
    assert a["state"] == "succeeded" and b["state"] == "succeeded", (a, b)
    assert timestamp(b["started_at"]) >= timestamp(a["finished_at"])
    assert env.log(second).body == b"second\n"
    assert total(env, "succeeded") == 2
