"""Finding the processes of one test's httpd in /proc: its children (workers and
the scheduler process), the deploy-runner of a job, the job itself; and small
readers for job times and ?auto, used by the restart and crash tests."""

import datetime
import os
import signal

from .httpd_env import (BASE, _read_proc, all_pids, children_of, holds_listener, process_alive,
                        process_ppid, wait_for)


def cmdline(pid):
    return [w.decode(errors="replace") for w in _read_proc(pid, "cmdline").split(b"\0") if w]


def httpd_children(env):
    """(workers, schedulers): the live children of httpd's parent. Workers hold
    the listening socket; the scheduler process closed it (ap_close_listeners)."""
    parent = env.read_pid()
    workers, schedulers = [], []
    for pid in children_of(parent):
        (workers if holds_listener(pid, env.port) else schedulers).append(pid)
    return workers, schedulers


def the_scheduler(env, timeout=10):
    """The pid of the one scheduler process (waits until there is exactly one)."""
    def one():
        _, schedulers = httpd_children(env)
        return schedulers[0] if len(schedulers) == 1 else None
    return wait_for(one, timeout, "exactly one scheduler process")


def _topmost(pids):
    """Drops the pids whose parent is among them: a process that has forked
    and not yet exec'd has its parent's command line and environment."""
    return [p for p in pids if process_ppid(p) not in pids]


def runner_pids(env, job_id):
    """deploy-runner processes of job_id in env's state dir (argv: runner, state
    dir, id, ...)."""
    found = []
    for pid in all_pids():
        argv = cmdline(pid)
        if (len(argv) >= 3 and os.path.basename(argv[0]) == "deploy-runner"
                and argv[1] == env.state_dir and argv[2] == str(job_id) and process_alive(pid)):
            found.append(pid)
    return _topmost(found)


def runner_pid(env, job_id, timeout=10):
    def one():
        pids = runner_pids(env, job_id)
        return pids[0] if len(pids) == 1 else None
    return wait_for(one, timeout, f"the deploy-runner of job {job_id}")


def job_pids(env, job_id, script):
    """Live processes running `script` (a path under env.dir) for job_id: the job
    itself, not its runner (which has the same environment)."""
    marker = f"DEPLOY_JOB_ID={job_id}".encode()
    found = []
    for pid in all_pids():
        argv = cmdline(pid)
        if not argv or os.path.basename(argv[0]) == "deploy-runner" or script not in argv:
            continue
        if marker in _read_proc(pid, "environ").split(b"\0") and process_alive(pid):
            found.append(pid)
    return _topmost(found)


def job_pid(env, job_id, script, timeout=10):
    def one():
        pids = job_pids(env, job_id, script)
        return pids[0] if len(pids) == 1 else None
    return wait_for(one, timeout, f"the process of job {job_id} ({script})")


def kill9(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_gone(pids, timeout, what):
    wait_for(lambda: not any(process_alive(p) for p in pids), timeout, what)


def timestamp(text):
    """Seconds since the epoch of an RFC 3339 time of the API, None for null."""
    if text is None:
        return None
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def auto_status(env):
    r = env.get(f"{BASE}/?auto")
    assert r.status == 200, r
    values = {}
    for line in r.text.splitlines():
        key, _, value = line.partition(":")
        values[key.strip()] = value.strip()
    return values


def total(env, state):
    """TotalSucceeded, TotalLost... of ?auto, as an int."""
    return int(auto_status(env)["Total" + "".join(w.capitalize() for w in state.split("_"))])
