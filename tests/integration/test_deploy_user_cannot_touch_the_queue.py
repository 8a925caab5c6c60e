"""DeployUser: the job runs as another user than httpd's User, and then
nothing it does can read or write the job table, its lock, other jobs' logs,
the state dir or the secret files, nor signal or inspect its runner; timeout
and cancel still kill its whole process group. Without DeployUser the job runs
as User and can rewrite the queue (documented).

Root only: the test creates a throwaway system user (removed afterwards)."""

import json
import os
import pwd
import shutil
import signal
import subprocess
import uuid

import pytest

from harness.httpd_env import (BASE, HTTPD_USER, RUNNING_AS_ROOT, all_pids, process_ppid, process_state,
                               target_block, wait_for)

pytestmark = pytest.mark.skipif(
    not RUNNING_AS_ROOT or shutil.which("useradd") is None,
    reason="DeployUser needs root (httpd must start as root) and useradd to create a user")

PYTHON = "/usr/bin/python3"

# The job: every attempt prints one line "ATTEMPT NAME: ok" or
# "ATTEMPT NAME: denied (ERRNO)"; facts about itself as "FACT NAME: VALUE".
ATTACK = r'''
import fcntl, json, os, signal, sys

state_dir, secret, other_log = sys.argv[1], sys.argv[2], sys.argv[3]
runner = os.getppid()

def attempt(name, action):
    try:
        action()
        print(f"ATTEMPT {name}: ok", flush=True)
    except OSError as e:
        print(f"ATTEMPT {name}: denied ({e.errno})", flush=True)

def read(path):
    with open(path, "rb") as f:
        f.read(1)

def write_table():
    fd = os.open(os.path.join(state_dir, "jobs.table"), os.O_RDWR)
    try:
        os.pwrite(fd, b"forged", 65536 + 16)
    finally:
        os.close(fd)

def lock():
    fd = os.open(os.path.join(state_dir, "lock"), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)

def create_in_state_dir():
    fd = os.open(os.path.join(state_dir, "forged"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)

attempt("read jobs.table", lambda: read(os.path.join(state_dir, "jobs.table")))
attempt("write jobs.table", write_table)
attempt("flock the lock", lock)
attempt("read another job's log", lambda: read(other_log))
attempt("list the logs", lambda: os.listdir(os.path.join(state_dir, "logs")))
attempt("read the secret file", lambda: read(secret))
attempt("create a file in the state dir", create_in_state_dir)
attempt("signal the runner", lambda: os.kill(runner, signal.SIGKILL))
attempt("read the runner's environ", lambda: read(f"/proc/{runner}/environ"))
attempt("list the runner's descriptors", lambda: os.listdir(f"/proc/{runner}/fd"))
attempt("take back the runner's uid", lambda: os.setuid(os.stat(f"/proc/{runner}").st_uid))

status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
fds = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
       if os.path.exists(f"/proc/self/fd/{fd}")}
print("FACT ids: " + json.dumps([os.getuid(), os.geteuid(), os.getgid(), os.getegid()]))
print("FACT groups: " + json.dumps(sorted(os.getgroups())))
print("FACT caps: " + json.dumps({k: status[k].strip() for k in
                                  ("CapInh", "CapPrm", "CapEff", "CapAmb")}))
print("FACT cwd: " + json.dumps(os.getcwd()))
print("FACT fds: " + json.dumps(fds))
print("FACT runner: " + json.dumps(runner), flush=True)
'''

ATTEMPTS = ["read jobs.table", "write jobs.table", "flock the lock", "read another job's log",
            "list the logs", "read the secret file", "create a file in the state dir",
            "signal the runner", "read the runner's environ", "list the runner's descriptors",
            "take back the runner's uid"]

STUBBORN = """#!/bin/bash
trap '' TERM
echo $$ > "{s}/job.pid"
echo $PPID > "{s}/runner.pid"
id -u > "{s}/job.uid"
sleep 1000 &
echo $! > "{s}/child.pid"
( trap '' TERM; sleep 1000 & echo $! > "{s}/grandchild.pid"; wait )  &
echo "all started"
for i in $(seq 1 600); do sleep 0.05; done
"""


@pytest.fixture(scope="module")
def job_user():
    """A system user of its own, without home directory; removed afterwards."""
    name = "dtest" + uuid.uuid4().hex[:10]
    subprocess.run(["useradd", "--system", "--no-create-home", "--user-group",
                    "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


def facts_and_attempts(log):
    facts, attempts = {}, {}
    for line in log.decode(errors="replace").splitlines():
        if line.startswith("FACT "):
            name, value = line[5:].split(": ", 1)
            facts[name] = json.loads(value)
        elif line.startswith("ATTEMPT "):
            name, result = line[8:].rsplit(": ", 1)
            attempts[name] = result
    return facts, attempts


def caps_of(pid):
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    return int(status["CapEff"], 16), int(status["CapPrm"], 16), int(status["Uid"].split()[0])


CAP_KILL, CAP_SETGID, CAP_SETUID = 5, 6, 7
RUNNER_CAPS = (1 << CAP_KILL) | (1 << CAP_SETGID) | (1 << CAP_SETUID)


def setup_attack(job_user):
    def prepare(env):
        env.secret = env.write_file("conf/secret", "the signing key\n", 0o600)
        script = env.write_file("jobs/attack.py", ATTACK, 0o755)
        plain = env.write_script("plain.sh", "#!/bin/sh\necho 'a log only httpd may read'\n")
        logs = os.path.join(env.state_dir, "logs")
        env.fragment = (
            target_block("plain", plain)
            + target_block("signed", plain, f"DeploySecret file:{env.secret}")
            + target_block("attack", f"{PYTHON} {script} {env.state_dir} {env.secret} "
                           f"{logs}/1.log", f"DeployUser {job_user.pw_name}"))
    return prepare


def test_a_deploy_user_job_cannot_touch_the_queue_the_logs_the_secret_or_its_runner(
        make_httpd, job_user):
    env = make_httpd(setup=setup_attack(job_user))
    first = env.submit_ok("plain")
    assert first["id"] == 1
    before = env.wait_finished(1)
    assert before["state"] == "succeeded", before

    jid = env.submit_ok("attack")["id"]
    done = env.wait_finished(jid, timeout=30)
    log = env.log(jid).body
    facts, attempts = facts_and_attempts(log)
    assert done["state"] == "succeeded", (done, log)
    assert sorted(attempts) == sorted(ATTEMPTS), log
    allowed = {name: result for name, result in attempts.items() if not result.startswith("denied")}
    assert allowed == {}, f"a DeployUser job could do this: {allowed}\n{log.decode()}"

    uid, gid = job_user.pw_uid, job_user.pw_gid
    assert facts["ids"] == [uid, uid, gid, gid]
    assert facts["groups"] == [gid]
    assert facts["caps"] == {"CapInh": "0" * 16, "CapPrm": "0" * 16, "CapEff": "0" * 16,
                             "CapAmb": "0" * 16}
    # No home directory: the job starts in /, not in the state dir.
    assert facts["cwd"] == "/"
    assert not any(env.state_dir in target for target in facts["fds"].values()), facts["fds"]

    # Nothing changed: the first job as it was, no job was added.
    assert env.job(1) == before
    assert [j["id"] for j in env.jobs()] == [jid, 1]
    assert not os.path.exists(os.path.join(env.state_dir, "forged"))
    # The files are User's alone.
    for path, mode in (("", 0o700), ("logs", 0o700), ("jobs.table", 0o600), ("lock", 0o600),
                       ("logs/1.log", 0o600)):
        st = os.stat(os.path.join(env.state_dir, path))
        assert (st.st_mode & 0o777, st.st_uid) == (mode, pwd.getpwnam(HTTPD_USER).pw_uid), path

    # The runner (still there, waiting for a next job) runs as User with the
    # three capabilities it needs and no other.
    runner = facts["runner"]
    effective, permitted, runner_uid = caps_of(runner)
    assert runner_uid == pwd.getpwnam(HTTPD_USER).pw_uid
    assert effective == permitted == RUNNER_CAPS, hex(permitted)


def setup_stubborn(env, job_user, *directives):
    script = env.write_script("stubborn.sh", STUBBORN.format(s=env.scratch))
    env.fragment = target_block("stubborn", script, f"DeployUser {job_user.pw_name}",
                                "DeployKillGrace 500ms", *directives)


def read_pid(env, name):
    with open(env.scratch_path(name)) as f:
        return int(f.read())


def wait_started(env):
    wait_for(lambda: os.path.exists(env.scratch_path("grandchild.pid"))
             and os.path.getsize(env.scratch_path("grandchild.pid")) > 0, 15,
             "the job and its grandchild to start")


def assert_all_gone(env):
    pids = [read_pid(env, n) for n in ("job.pid", "child.pid", "grandchild.pid")]
    wait_for(lambda: all(process_state(p) is None for p in pids), 10,
             "every process of the job to be gone")
    runner = read_pid(env, "runner.pid")
    zombies = [p for p in all_pids() if process_state(p) == "Z" and process_ppid(p) == runner]
    assert zombies == []


def test_timeout_kills_the_whole_group_of_a_deploy_user_job(make_httpd, job_user):
    env = make_httpd(setup=lambda env: setup_stubborn(env, job_user, "DeployTimeout 2"))
    jid = env.submit_ok("stubborn")["id"]
    wait_started(env)
    with open(env.scratch_path("job.uid")) as f:
        assert int(f.read()) == job_user.pw_uid
    done = env.wait_finished(jid, timeout=30)
    assert done["state"] == "timed_out", done
    assert done["signal"] == signal.SIGKILL  # it ignored SIGTERM: killed after the grace
    assert_all_gone(env)


def test_cancel_kills_the_whole_group_of_a_deploy_user_job(make_httpd, job_user):
    env = make_httpd(setup=lambda env: setup_stubborn(env, job_user))
    jid = env.submit_ok("stubborn")["id"]
    wait_started(env)
    r = env.request("POST", f"{BASE}/jobs/{jid}/cancel", b"", {"Content-Length": "0"})
    assert r.status == 202, r
    done = env.wait_finished(jid, timeout=30)
    assert done["state"] == "canceled", done
    assert done["signal"] == signal.SIGKILL
    assert_all_gone(env)


def test_a_job_without_deploy_user_runs_as_user_and_can_rewrite_the_queue(make_httpd):
    """Documented: without DeployUser a job is httpd's User, who owns the table."""
    def prepare(env):
        script = env.write_script("as-user.sh", f"""#!/bin/sh
id -u
[ -w "{env.state_dir}/jobs.table" ] && echo "table writable"
grep -E '^Cap(Prm|Eff)' /proc/$PPID/status
""")
        env.fragment = target_block("webapp", script)
    env = make_httpd(setup=prepare)
    jid = env.submit_ok("webapp")["id"]
    assert env.wait_finished(jid)["state"] == "succeeded"
    lines = env.log(jid).body.decode().splitlines()
    assert lines[0] == str(pwd.getpwnam(HTTPD_USER).pw_uid)
    assert "table writable" in lines
    # Without DeployUser no process keeps a capability: the runner has none.
    assert lines[2:] == ["CapPrm:\t0000000000000000", "CapEff:\t0000000000000000"], lines


def launcher_pids(env):
    return [p for p in all_pids()
            if f"--launcher\0{env.state_dir}".encode() in _cmdline(p)]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def test_a_dead_launcher_is_replaced_through_a_new_scheduler(make_httpd, job_user):
    def prepare(env):
        script = env.write_script("whoami.sh", "#!/bin/sh\nid -u\n")
        env.fragment = target_block("webapp", script, f"DeployUser {job_user.pw_name}")
    env = make_httpd(setup=prepare)
    launchers = wait_for(lambda: launcher_pids(env), 10, "the launcher")
    assert len(launchers) == 1
    # The launcher is executed as root and becomes User itself, at once.
    www_data = pwd.getpwnam(HTTPD_USER).pw_uid
    wait_for(lambda: caps_of(launchers[0])[2] == www_data, 10, "the launcher to become User")
    effective, permitted, _ = caps_of(launchers[0])
    assert effective == permitted == RUNNER_CAPS

    os.kill(launchers[0], signal.SIGKILL)
    wait_for(lambda: "the scheduler process died; starting a new one" in env.error_log_text(),
             15, "httpd to start a new scheduler")
    new = wait_for(lambda: [p for p in launcher_pids(env) if p != launchers[0]], 15,
                   "a new launcher")
    wait_for(lambda: caps_of(new[0])[2] == www_data, 10, "the new launcher to become User")
    assert caps_of(new[0])[1] == RUNNER_CAPS
    jid = env.submit_ok("webapp")["id"]
    done = env.wait_finished(jid, timeout=20)
    assert done["state"] == "succeeded", done
    assert env.log(jid).body.decode().strip() == str(job_user.pw_uid)


def test_deploy_user_comes_and_goes_with_a_graceful_restart(make_httpd, job_user):
    """The launcher has capabilities exactly while some target has DeployUser;
    a DeployUser job running across the graceful restart is recorded."""
    def prepare(env):
        env.whoami = env.write_script("whoami.sh", "#!/bin/sh\nid -u\n")
        env.gate = env.scratch_path("gate")
        env.gated = env.write_script("gated.sh", "#!/bin/sh\nid -u\n"
                                     f"for i in $(seq 1 400); do [ -e {env.gate} ] && break; "
                                     "sleep 0.05; done\n")
        env.fragment = target_block("webapp", env.whoami)
    env = make_httpd(setup=prepare)
    www_data = pwd.getpwnam(HTTPD_USER).pw_uid

    def launcher_caps():
        return caps_of(wait_for(lambda: launcher_pids(env), 10, "the launcher")[0])[1]

    assert launcher_caps() == 0
    env.graceful(target_block("webapp", env.whoami, f"DeployUser {job_user.pw_name}")
                 + target_block("gated", env.gated, f"DeployUser {job_user.pw_name}"))
    wait_for(lambda: launcher_caps() == RUNNER_CAPS, 10, "a launcher with capabilities")
    jid = env.submit_ok("webapp")["id"]
    assert env.wait_finished(jid)["state"] == "succeeded"
    assert env.log(jid).body.decode().strip() == str(job_user.pw_uid)

    gated = env.submit_ok("gated")["id"]
    env.wait_state(gated, "running")
    env.graceful(target_block("webapp", env.whoami))
    wait_for(lambda: launcher_caps() == 0, 10, "a launcher without capabilities")
    with open(env.gate, "w"):
        pass
    done = env.wait_finished(gated, timeout=30)
    assert done["state"] == "succeeded", done
    assert env.log(gated).body.decode().strip() == str(job_user.pw_uid)
    jid = env.submit_ok("webapp")["id"]
    assert env.wait_finished(jid)["state"] == "succeeded"
    assert env.log(jid).body.decode().strip() == str(www_data)


def test_a_deploy_user_job_that_cannot_start_says_why_with_a_shell_code(make_httpd, job_user):
    """The working directory and the program are checked with the user's own
    rights: the state dir (User's, 0700) cannot be entered, a script of mode
    0700 cannot be executed."""
    def prepare(env):
        ok = env.write_script("ok.sh", "#!/bin/sh\npwd\n")
        private = env.write_file("jobs/private.sh", "#!/bin/sh\necho ran\n", 0o700)
        env.fragment = (
            target_block("in-state-dir", ok, f"DeployUser {job_user.pw_name}",
                         f"DeployWorkingDirectory {env.state_dir}")
            + target_block("private", private, f"DeployUser {job_user.pw_name}")
            + target_block("in-scratch", ok, f"DeployUser {job_user.pw_name}",
                           f"DeployWorkingDirectory {env.scratch}"))
    env = make_httpd(setup=prepare)

    jid = env.submit_ok("in-state-dir")["id"]
    done = env.wait_finished(jid)
    assert (done["state"], done["exit_code"]) == ("failed", 126), done
    log = env.log(jid).body.decode()
    assert "cannot change to the working directory" in log and job_user.pw_name in log, log

    jid = env.submit_ok("private")["id"]
    done = env.wait_finished(jid)
    assert (done["state"], done["exit_code"]) == ("failed", 127), done
    assert "cannot execute" in env.log(jid).body.decode()

    jid = env.submit_ok("in-scratch")["id"]
    assert env.wait_finished(jid)["state"] == "succeeded"
    assert env.log(jid).body.decode().strip() == env.scratch
