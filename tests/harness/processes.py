"""Finding the processes of one httpd in /proc: its children (workers and the
scheduler process), the deploy-runner of a job, the job itself, the whole tree
(zombies in it) and its memory; used by the tests, the load test and the bench."""

import collections
import datetime
import os
import signal

from .httpd_env import (_read_proc, all_pids, children_of, holds_listener, process_alive,
                        process_ppid, stat_fields, wait_for)


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


def process_table():
    """{pid: (comm, state, ppid)} of every process, read once."""
    table = {}
    for pid in all_pids():
        fields = stat_fields(pid)
        if fields:
            table[pid] = fields
    return table


def descendants(root, table=None):
    """root and all its descendants (workers, scheduler, runners, jobs of httpd's
    parent), from one process table."""
    table = table or process_table()
    children = collections.defaultdict(list)
    for pid, (_, _, ppid) in table.items():
        children[ppid].append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            tree.append(pid)
            todo.extend(children.get(pid, ()))
    return tree


def zombies_under(root):
    """"pid N (comm) parent P" of each zombie among root and its descendants."""
    table = process_table()
    return [f"pid {p} ({table[p][0]}) parent {table[p][2]}"
            for p in descendants(root, table) if table[p][1] == "Z"]


def httpd_processes(parent):
    """httpd's parent and its live children: the MPM's workers and the scheduler."""
    return [parent] + children_of(parent)


MEMORY_KEYS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")


def memory_kib(pids):
    """Sums over pids of /proc/PID/status VmRSS, RssAnon, RssFile and RssShmem
    (KiB), and "procs": how many were read (a pid gone meanwhile counts nothing)."""
    total = dict.fromkeys(("procs",) + MEMORY_KEYS, 0)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                lines = f.readlines()
        except OSError:
            continue
        total["procs"] += 1
        for line in lines:
            key, _, value = line.partition(":")
            if key in MEMORY_KEYS:
                total[key] += int(value.split()[0])
    return total


def run_bounded(cmd, timeout, grace=30, **kwargs):
    """subprocess.run(cmd, capture_output=True, text=True) bounded by `timeout`:
    past it the command gets SIGINT first (a Python driver such as scripts/bench
    then stops the httpd it started, in its finally blocks), SIGKILL only
    after `grace` more seconds; then subprocess.TimeoutExpired as run() raises."""
    import subprocess
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          **kwargs) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                out, err = process.communicate(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            raise subprocess.TimeoutExpired(cmd, timeout, output=out, stderr=err)
        return subprocess.CompletedProcess(cmd, process.returncode, out, err)


def cpu_seconds(pids):
    """utime + stime of each pid (threads included), by pid."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return used
