"""Cancel of a running job nudges its runner with SIGUSR1, but only the runner
that recorded itself: the recorded pid must still have the start time the
runner recorded. A pid that names another process now (the runner died and
the pid was reused) is not signalled; the job is still canceled or, with its
runner gone, marked lost."""

import fcntl
import os
import signal
import struct
import subprocess
import sys

from harness.processes import runner_pid, the_scheduler
from harness.httpd_env import BASE, HTTPD_USER, RUNNING_AS_ROOT, target_block, wait_for

HEADER_SIZE = 65536
RECORD_SIZE = 4096
CAPACITY_AT = 16          # uint32 in the header
CHECKSUM_AT = 8           # uint64 in a record, FNV-1a of the record with itself zeroed
RUNNER_TICKS_AT = 56      # uint64 in a record: the runner's start time
RUNNER_PID_AT = 72        # int32 in a record

DECOY = """
import os, signal, sys, time
marks = sys.argv[1]
def mark(name):
    with open(marks, "a") as f:
        f.write(name + "\\n")
signal.signal(signal.SIGUSR1, lambda *_: mark("usr1"))
signal.signal(signal.SIGUSR2, lambda *_: mark("usr2"))
mark("ready")
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.05)
"""


def fnv1a(data):
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def forge_runner_pid(env, job_id, runner, pid):
    """Writes `pid` as the job's runner pid, keeping the runner's recorded
    start time, under the table lock, with a valid checksum."""
    table = os.path.join(env.state_dir, "jobs.table")
    with open(os.path.join(env.state_dir, "lock"), "rb") as lock, open(table, "r+b") as f:
        fcntl.flock(lock, fcntl.LOCK_EX)
        f.seek(CAPACITY_AT)
        capacity = struct.unpack("<I", f.read(4))[0]
        at = HEADER_SIZE + (job_id % capacity) * RECORD_SIZE
        f.seek(at)
        record = bytearray(f.read(RECORD_SIZE))
        assert struct.unpack_from("<Q", record, 0)[0] == job_id
        assert struct.unpack_from("<i", record, RUNNER_PID_AT)[0] == runner, \
            "the runner has recorded itself"
        assert struct.unpack_from("<Q", record, RUNNER_TICKS_AT)[0] == start_ticks(runner)
        struct.pack_into("<i", record, RUNNER_PID_AT, pid)
        struct.pack_into("<Q", record, CHECKSUM_AT, 0)
        struct.pack_into("<Q", record, CHECKSUM_AT, fnv1a(bytes(record)))
        f.seek(at)
        f.write(record)
        f.flush()


def start_ticks(pid):
    """Field 22 of /proc/PID/stat, as the runner records it."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def prepare(env):
    slow = env.write_script("slow.sh", "#!/bin/sh\n"
                            f"touch {env.scratch}/started-$DEPLOY_JOB_ID\nexec sleep 60\n")
    env.fragment = target_block("slow", slow, "DeployKillGrace 1")


def test_cancel_does_not_signal_a_pid_that_is_no_longer_the_runner(make_httpd):
    env = make_httpd(setup=prepare, name="cancel-reused-pid")
    jid = env.submit_ok("slow")["id"]
    env.wait_state(jid, "running")
    runner = runner_pid(env, jid)
    # The runner records itself (pid and start time) before it starts the job.
    wait_for(lambda: os.path.exists(env.scratch_path(f"started-{jid}")), 10, "the job to start")

    marks = env.scratch_path("decoy-marks")
    # The decoy runs as httpd's user: an httpd child could signal it.
    def as_httpd_user():
        if RUNNING_AS_ROOT:
            import pwd
            user = pwd.getpwnam(HTTPD_USER)
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
    open(marks, "w").close()
    os.chmod(marks, 0o666)
    # The decoy must differ from the runner by its start time (in clock
    # ticks), as a process that got the runner's pid later would.
    while True:
        decoy = subprocess.Popen([sys.executable, "-c", DECOY, marks], preexec_fn=as_httpd_user)
        if start_ticks(decoy.pid) != start_ticks(runner):
            break
        decoy.kill()
        decoy.wait(10)
    scheduler = the_scheduler(env)
    try:
        wait_for(lambda: "ready" in open(marks).read(), 10, "the decoy to start")
        # The scheduler would mark the job lost at once (its runner's pid has
        # another start time now): it waits while the cancel is sent.
        os.kill(scheduler, signal.SIGSTOP)
        forge_runner_pid(env, jid, runner, decoy.pid)
        r = env.request("POST", f"{BASE}/jobs/{jid}/cancel")
        assert r.status == 202, r
        # Signals pending for a process are delivered lowest number first:
        # once the decoy has seen our SIGUSR2, a SIGUSR1 sent before would
        # have been seen too.
        decoy.send_signal(signal.SIGUSR2)
        wait_for(lambda: "usr2" in open(marks).read(), 10, "the decoy to see SIGUSR2")
        assert "usr1" not in open(marks).read(), "cancel signalled a pid that is not the runner"
    finally:
        os.kill(scheduler, signal.SIGCONT)
        decoy.kill()
        decoy.wait(10)
    # The real runner sees the cancel at its periodic check, or the job is
    # marked lost: it ends either way.
    final = env.wait_finished(jid, timeout=30)
    assert final["state"] in ("canceled", "lost"), final
