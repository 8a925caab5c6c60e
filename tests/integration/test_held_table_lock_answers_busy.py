"""A process that holds DeployStateDir/lock (any process of httpd's user can,
as `flock -x lock sleep 60` does) makes no request wait more than 5 seconds:
routes of the table answer 503 busy with Retry-After, other content of the
server is served meanwhile, a running job's output still reaches its log, and
once the lock is free everything works: the scheduler starts the jobs that
waited and the runner records the outcome of its job."""

import os
import subprocess
import sys
import threading
import time

from harness.httpd_env import BASE, Gate, gated_job_script, target_block, wait_for

# Longest a request may take while the lock is held: 5 s and some slack.
BUSY_LIMIT = 12


def prepare(env):
    quick = env.write_script("quick.sh", '#!/bin/bash\necho "job $DEPLOY_JOB_ID"\n')
    env.gate = Gate(env, "gate")
    # Prints a line, waits for the gate, prints more: the second half is
    # written while the lock is held.
    gated = gated_job_script(env, "gated.sh", env.gate, before='echo "before"\n',
                             after='echo "::progress 70 Locked out"\n'
                                   'for i in $(seq 1 50); do echo "line $i"; done\n')
    env.fragment = (target_block("quick", quick)
                    + target_block("later", quick, "DeployWaitChangeNotification 1"))
    env.fragment += target_block("gated", gated)
    env.write_file("htdocs/static.txt", "static\n")


class LockHolder:
    """A process of the test that holds the lock file until it is stopped."""

    def __init__(self, path):
        code = ("import fcntl, sys, time\n"
                "f = open(sys.argv[1], 'r+')\n"
                "fcntl.flock(f, fcntl.LOCK_EX)\n"
                "print('locked', flush=True)\n"
                "time.sleep(120)\n")
        self.process = subprocess.Popen([sys.executable, "-c", code, path],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "locked"

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, 9)
        self.process.wait(timeout=10)


def timed(call):
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def assert_busy(r, elapsed):
    assert r.status == 503, r
    assert r.json()["error"] == "busy", r
    assert r.headers.get("Retry-After") == "5", r
    assert elapsed < BUSY_LIMIT, f"answered after {elapsed:.1f} s"


def test_held_lock_answers_busy_and_everything_resumes(make_httpd):
    env = make_httpd(setup=prepare)
    done = env.wait_finished(env.submit_ok("quick")["id"])
    running = env.submit_ok("gated")["id"]
    env.wait_job(running, lambda j: j["state"] == "running", 15, "running")
    waiting = env.submit_ok("later")["id"]  # starts 1 s later: while the lock is held

    holder = LockHolder(os.path.join(env.state_dir, "lock"))
    try:
        # The job writes while the lock is held.
        env.gate.open()
        r, elapsed = timed(lambda: env.submit("quick"))
        assert_busy(r, elapsed)
        r, elapsed = timed(lambda: env.get(f"{BASE}/jobs/{done['id']}"))
        assert_busy(r, elapsed)

        # Twenty deploy requests wait; a static file is served meanwhile.
        answers = []

        def deploy_request(i):
            path = f"{BASE}/jobs/{done['id']}" if i % 2 else f"{BASE}/jobs"
            answers.append(timed(lambda: env.request("GET", path, timeout=30)))
        threads = [threading.Thread(target=deploy_request, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        r, elapsed = timed(lambda: env.get("/static.txt"))
        assert (r.status, r.body) == (200, b"static\n")
        assert len(answers) < 20, "the static file waited for the deploy requests"
        for t in threads:
            t.join(timeout=60)
        assert len(answers) == 20
        for r, elapsed in answers:
            assert_busy(r, elapsed)
        assert "busy" in env.error_log_text()
        # The runner copied the job's output to its log meanwhile.
        log_path = os.path.join(env.state_dir, "logs", f"{running}.log")
        wait_for(lambda: open(log_path, "rb").read().endswith(b"line 50\n"), 15,
                 "the job's output in its log while the lock is held")
        assert holder.process.poll() is None
    finally:
        holder.stop()

    # Free again: the waiting job runs, the runner recorded its job's outcome
    # and every line of its output.
    assert env.job(done["id"]) == done
    assert env.wait_finished(waiting, timeout=30)["state"] == "succeeded"
    finished = env.wait_finished(running, timeout=30)
    assert (finished["state"], finished["progress"]) == ("succeeded", 70), finished
    expected = ("before\n::progress 70 Locked out\n"
                + "".join(f"line {i}\n" for i in range(1, 51))).encode()
    assert env.log(running).body == expected
    new = env.submit_ok("quick")
    assert env.wait_finished(new["id"])["state"] == "succeeded"
    # The refused submission is counted.
    metrics = env.get(f"{BASE}/metrics").body.decode()
    assert 'result="rejected",reason="busy"} 1\n' in metrics, metrics
    wait_for(lambda: "exit signal" not in env.error_log_text(), 1, "no crash")
