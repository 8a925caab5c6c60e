"""A job whose outcome can no longer be learned (its deploy-runner was killed)
becomes `lost` within 10 s of httpd running, with finished_at set, and never
stays `running` (SPEC, "Restarts and failures").

What happens to the job's own processes (observed, documented in
docs/job-protocol.md, "Leftovers"): the runner is their only supervisor and
the only reader of their output pipe. Once it is killed with SIGKILL they are
re-parented and keep running; the first output they write after that meets a
pipe without reader and SIGPIPE ends them. The tests check this, and that the
record stays `lost` when they end."""

import time

from harness.processes import job_pid, kill9, runner_pid, timestamp, wait_gone
from harness.status import total
from harness.httpd_env import Gate, blocking_script_lines, process_alive, target_block


def prepare(env):
    env.gate = Gate(env, "release")
    env.script = env.write_script(
        "blocking.sh", "#!/bin/bash\n"
        'echo "::progress 10 Working"\n'
        + blocking_script_lines(env.gate.path, 60)
        + 'echo "after the gate"\n'
        "exit 0\n")
    env.fragment = target_block("blocking", env.script)
    quick = env.write_script("quick.sh", '#!/bin/bash\necho "job $DEPLOY_JOB_ID"\n')
    env.fragment += target_block("quick", quick)


def start_blocking_job(env):
    jid = env.submit_ok("blocking")["id"]
    env.wait_job(jid, lambda j: j["state"] == "running" and j["progress"] == 10, 15,
                 "running at 10 %")
    return jid, runner_pid(env, jid), job_pid(env, jid, env.script)


def assert_lost(job, not_before):
    assert job["state"] == "lost", job
    assert job["finished_at"] is not None, job
    assert timestamp(job["finished_at"]) >= not_before - 0.01
    assert job["exit_code"] is None and job["signal"] is None, job


def end_orphaned_job(env, jid, job):
    """The job outlived its runner; its next output ends it (SIGPIPE)."""
    survived = process_alive(job)
    env.gate.open()
    wait_gone([job], 10, "the orphaned job to end at its next output")
    print(f"job {jid}: its process {'survived' if survived else 'did not survive'} "
          "the runner's death; it ended at its next output")
    return survived


def test_killed_runner_makes_its_job_lost_within_10s(make_httpd):
    env = make_httpd(setup=prepare)
    env.expect_error(r"is lost: its runner \(pid \d+\) is gone")
    jid, runner, job = start_blocking_job(env)

    killed_at = time.time()
    kill9([runner])
    lost = env.wait_state(jid, "lost", timeout=10)  # SPEC: within 10 s
    assert_lost(lost, killed_at)
    assert lost["progress"] == 10 and lost["stage"] == "Working", "what was known stays"
    assert total(env, "lost") == 1
    assert env.log(jid).headers.get("X-More-Data") is None, "a lost job writes no more"

    survived = end_orphaned_job(env, jid, job)
    assert survived, "documented: the job's processes outlive a killed runner"
    time.sleep(1.5)
    assert env.job(jid) == lost, "the record stays lost when the orphaned job ends"
    assert b"after the gate" not in env.log(jid).body
    assert total(env, "lost") == 1

    # Nothing else is affected.
    later = env.submit_ok("quick")["id"]
    assert env.wait_finished(later)["state"] == "succeeded"


def test_runner_killed_while_httpd_is_stopped_is_lost_soon_after_start(make_httpd):
    env = make_httpd(setup=prepare)
    env.expect_error(r"is lost: its runner \(pid \d+\) is gone")
    jid, runner, job = start_blocking_job(env)

    assert env.stop() is None
    kill9([runner])
    wait_gone([runner], 10, "the runner to die")
    time.sleep(1)

    starting_at = time.time()
    env.start()
    lost = env.wait_state(jid, "lost", timeout=10)  # within 10 s of httpd answering
    assert_lost(lost, starting_at)
    assert total(env, "lost") == 1
    end_orphaned_job(env, jid, job)
    assert env.job(jid)["state"] == "lost"
