"""An accepted job survives the crash of any httpd process (SPEC, "Restarts and
failures"): kill -9 of the child that answered 202, of httpd's parent, or of
the scheduler process loses no job and starts nothing twice."""

import os
import time

import pytest

from harness.processes import (children_of, httpd_children, kill9, process_ppid, runner_pid,
                               the_scheduler, wait_gone)
from harness.status import total
from harness.httpd_env import Gate, blocking_script_lines, process_alive, target_block, wait_for


def prepare(env):
    env.gate = Gate(env, "release-blocking")
    env.blocking_script = env.write_script(
        "blocking.sh", "#!/bin/bash\necho start\n" + blocking_script_lines(env.gate.path, 60)
        + "echo end\n")
    quick = env.write_script("quick.sh", '#!/bin/bash\necho "job $DEPLOY_JOB_ID"\n')
    env.fragment = (target_block("blocking", env.blocking_script)
                    + target_block("quick", quick)
                    + target_block("quiet", quick, "DeployWaitChangeNotification 2"))


def assert_ran_once(env, jid):
    done = env.wait_finished(jid, timeout=30)
    assert done["state"] == "succeeded", done
    assert env.log(jid).body == f"job {jid}\n".encode(), "the job ran exactly once"
    return done


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_killing_the_children_right_after_a_202_loses_nothing(make_httpd, mpm):
    env = make_httpd(mpm=mpm, setup=prepare)
    scheduler = the_scheduler(env)
    workers, _ = httpd_children(env)
    assert workers
    now = env.submit_ok("quick")["id"]
    later = env.submit_ok("quiet")["id"]
    # Every worker, so the one that served the 202s is among them.
    kill9(workers)
    wait_gone(workers, 10, "the killed children to go")
    wait_for(lambda: httpd_children(env)[0] and env.port_answers(), 15,
             "httpd to start new children")
    assert_ran_once(env, now)
    assert_ran_once(env, later)
    assert process_alive(scheduler), "the scheduler process is not hit by a child's crash"
    assert total(env, "succeeded") == 2 and total(env, "lost") == 0
    assert sorted(j["id"] for j in env.jobs()) == [now, later]


def test_killing_httpd_parent_loses_nothing(make_httpd):
    env = make_httpd(setup=prepare, server_config="DeployMaxRunning 1")
    running = env.submit_ok("blocking")["id"]
    env.wait_state(running, "running")
    runner = runner_pid(env, running)
    queued = env.submit_ok("quick")["id"]

    parent = env.read_pid()
    workers, schedulers = httpd_children(env)
    kill9([parent])
    wait_gone([parent], 10, "httpd's parent to die")
    # The scheduler notices its parent is gone and exits by itself.
    wait_gone(schedulers, 10, "the scheduler to exit after httpd's parent died")
    # The workers are cleaned up by pid, as an administrator would.
    kill9(workers + children_of(parent))
    wait_gone(workers, 10, "the orphaned workers to go")
    assert process_alive(runner), "a runner does not depend on httpd's processes"
    # The dead parent may stay a zombie for a while (whoever adopted it reaps
    # late), and `-k start` takes a PidFile naming an existing pid for a
    # running httpd: remove the stale PidFile, as after any crash.
    os.unlink(env.pid_file)

    env.start()
    assert env.job(running)["state"] == "running"
    assert env.job(queued)["state"] == "queued"
    env.gate.open()
    done = env.wait_finished(running, timeout=20)
    assert done["state"] == "succeeded", done
    assert env.log(running).body == b"start\nend\n"
    assert_ran_once(env, queued)
    assert total(env, "lost") == 0


def test_killing_the_scheduler_starts_a_new_one(make_httpd):
    env = make_httpd(setup=prepare)
    running = env.submit_ok("blocking")["id"]
    env.wait_state(running, "running")
    runner = runner_pid(env, running)
    launcher = process_ppid(runner)
    scheduler = process_ppid(launcher)
    assert the_scheduler(env) == scheduler, "the scheduler is the parent of the runners' launcher"
    assert process_ppid(scheduler) == env.read_pid()

    env.expect_error(r"the scheduler process died; starting a new one")
    before = env.error_log_size()
    kill9([scheduler])
    wait_for(lambda: the_scheduler(env) != scheduler, 15, "a new scheduler process")
    wait_for(lambda: "mod_deploy: the scheduler process died; starting a new one"
             in env.error_log_text(before), 10, "the warning about the scheduler's death")

    # The launcher ends with its scheduler. The running job is not affected:
    # its runner goes on (re-parented) and is not taken for lost by the new
    # scheduler.
    wait_gone([launcher], 10, "the launcher to end with its scheduler")
    time.sleep(2.5)
    assert process_alive(runner)
    assert env.job(running)["state"] == "running"
    env.gate.open()
    assert env.wait_finished(running, timeout=20)["state"] == "succeeded"

    # The new scheduler starts what is submitted later, waiting jobs included.
    assert_ran_once(env, env.submit_ok("quick")["id"])
    assert_ran_once(env, env.submit_ok("quiet")["id"])
    assert total(env, "lost") == 0 and total(env, "succeeded") == 3
    assert len(httpd_children(env)[1]) == 1, "exactly one scheduler process"


def test_killing_the_scheduler_while_a_job_waits(make_httpd):
    env = make_httpd(setup=prepare)
    waiting = env.submit_ok("quiet")
    assert waiting["state"] == "waiting"
    scheduler = the_scheduler(env)
    env.expect_error(r"the scheduler process died; starting a new one")
    kill9([scheduler])
    wait_for(lambda: the_scheduler(env) != scheduler, 15, "a new scheduler process")
    assert_ran_once(env, waiting["id"])
