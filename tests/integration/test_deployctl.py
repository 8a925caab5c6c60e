"""deployctl, the command-line client, against a real httpd with mod_deploy:
every subcommand, the exit status of each final state, basic auth (--user and
~/.netrc), signed submissions, what follow shows in a pipe and on a terminal,
and the message for a server that cannot be reached.

The binary is DEPLOY_BUILD_DIR/deployctl (default <repo>/build/deployctl)."""

import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import termios
import time

import pytest

from harness import httpd_env
from harness.httpd_env import (BASE, Gate, blocking_script_lines, free_port, gated_job_script,
                               process_alive, sha_htpasswd_line, target_block, wait_for)

DEPLOYCTL = os.path.join(httpd_env.BUILD_DIR, "deployctl")

EXIT_SUCCEEDED, EXIT_LOCAL_ERROR, EXIT_SERVER_ERROR = 0, 1, 2
EXIT_FOR_STATE = {"succeeded": 0, "failed": 3, "timed_out": 4, "canceled": 5, "expired": 6,
                  "lost": 7}

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
# Bound of every deployctl run; a hang fails the test instead of blocking it.
RUN_TIMEOUT = 30


@pytest.fixture(autouse=True)
def _deployctl_built():
    if not os.access(DEPLOYCTL, os.X_OK):
        pytest.fail(f"{DEPLOYCTL} is missing (build the deployctl target or set DEPLOY_BUILD_DIR)",
                    pytrace=False)


@pytest.fixture
def home(tmp_path):
    """An empty HOME, so that no ~/.netrc of the person running the tests applies."""
    path = tmp_path / "home"
    path.mkdir()
    return str(path)


def client_environment(home):
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"}


def url_of(env):
    return env.origin + BASE


def run_deployctl(home, *args, environment=None):
    """Runs deployctl to its end (bounded); a CompletedProcess."""
    return subprocess.run([DEPLOYCTL, *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL,
                          env=dict(client_environment(home), **(environment or {})))


def deployctl(env, home, *args):
    """Runs deployctl against the server env."""
    return run_deployctl(home, "--url", url_of(env), *args)


def deployctl_ok(env, home, *args):
    result = deployctl(env, home, *args)
    assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
    return result


def submitted_id(result):
    """The job id of `deployctl submit` human output: "job 42 of webapp: queued"."""
    match = re.match(r"job (\d+) of \S+: ", result.stdout)
    assert match, result.stdout
    return int(match.group(1))


class Follower:
    """A deployctl run in the background whose output the test reads as it comes.

    With terminal=True it runs on a pseudo-terminal (isatty(1) is true there)."""

    def __init__(self, env, home, *args, terminal=False):
        command = [DEPLOYCTL, "--url", url_of(env), *args]
        self.output = b""
        if terminal:
            master, slave = pty.openpty()
            # A known width, so that the bar is not shortened.
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
            self.process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave,
                                            env=client_environment(home), close_fds=True)
            os.close(slave)
            self.fd = master
        else:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            env=client_environment(home))
            self.fd = self.process.stdout.fileno()

    def _read_available(self, wait):
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            chunk = b""
        self.output += chunk
        return bool(chunk)

    def wait_output(self, predicate, timeout, what):
        """Reads until predicate(text so far) holds; fails after timeout s."""
        deadline = time.monotonic() + timeout
        while not predicate(self.text):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                     f"output so far: {self.text!r}")
            if not self._read_available(min(left, 0.2)) and self.process.poll() is not None:
                raise AssertionError(f"deployctl exited ({self.process.returncode}) before "
                                     f"{what}; output: {self.text!r}")

    def wait_exit(self, timeout=RUN_TIMEOUT):
        """Reads everything until deployctl exits; its exit status."""
        deadline = time.monotonic() + timeout
        while True:
            got = self._read_available(0.1)
            if not got and self.process.poll() is not None:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"deployctl did not exit within {timeout}s; "
                                     f"output: {self.text!r}")
        return self.process.returncode

    @property
    def text(self):
        return self.output.decode("utf-8", "replace")

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.close()

    def close(self):
        if self.process.stdout:
            self.process.stdout.close()
        elif self.fd is not None:
            os.close(self.fd)
        self.fd = None


@pytest.fixture
def followers():
    """Followers started by a test; stopped (by pid) at its end whatever happened."""
    started = []

    def start(*args, **kwargs):
        follower = Follower(*args, **kwargs)
        started.append(follower)
        return follower
    yield start
    for follower in started:
        follower.stop()


# ----- one server for the subcommands and the final states -----

def job_gate_path(env, name):
    """A gate of one job: its path names the job, so every job has its own."""
    return env.scratch_path(name + "-$DEPLOY_JOB_ID")


def open_job_gate(env, name, jid):
    with open(env.scratch_path(f"{name}-{jid}"), "w"):
        pass


STEPS = ((10, "Preparing"), (40, "Provisioning"), (70, "Configuring"))
BURSTS = 3


def bursts_script(env):
    """A job writing BURSTS bursts of 200 numbered lines (the last without a
    newline), each followed by a gate "burstN" and a progress line."""
    script = "#!/bin/bash\n"
    for burst in range(1, BURSTS + 1):
        script += (f'for i in $(seq 1 200); do echo "burst {burst} line $i"; done\n'
                   f'echo "::progress {burst * 30} Burst {burst}"\n'
                   + blocking_script_lines(job_gate_path(env, f"burst{burst}")))
    return script + 'printf "the end without newline"\n'


def prepare_main_server(env):
    quick = env.write_script("quick.sh", "#!/bin/sh\n"
                             'echo "deploying version $DEPLOY_PARAM_VERSION"\n'
                             'echo "::progress 100 Done"\n')
    fails = env.write_script("fails.sh", "#!/bin/sh\necho 'about to fail'\nexit 3\n")
    # More than the 64 KiB deployctl reads of a log's end, in numbered lines.
    noisy = env.write_script("noisy.sh", "#!/bin/sh\n"
                             'i=1; while [ $i -le 1500 ]; do printf "line %04d %s\\n" $i '
                             f'"{"x" * 80}"; i=$((i + 1)); done\n'
                             'echo "::progress 90 Checking"\necho "check failed" >&2\nexit 4\n')
    gated = env.write_script("gated.sh", "#!/bin/bash\necho \"first line\"\n"
                             + blocking_script_lines(job_gate_path(env, "release"))
                             + 'echo "second line"\n')
    # Progress in steps, each held until the test opens the step's gate:
    # every value is seen by a poller, whatever its interval.
    stepped = "#!/bin/bash\n"
    for step, (value, stage) in enumerate(STEPS, 1):
        stepped += (f'echo "::progress {value} {stage}"\n'
                    + blocking_script_lines(job_gate_path(env, f"step{step}")))
    stepped += 'echo "::progress 100 Done"\n'
    stepped = env.write_script("stepped.sh", stepped)
    # Output in three bursts of numbered lines, each held by a gate.
    bursts = env.write_script("bursts.sh", bursts_script(env))
    # Never released: only the timeout ends it.
    slow = env.write_script("slow.sh", "#!/bin/bash\n"
                            + blocking_script_lines(env.scratch_path("never")))
    env.fragment = (
        target_block("webapp", quick, r"DeployParam version ^[0-9][0-9A-Za-z.+-]{0,63}$")
        + target_block("fails", fails)
        + target_block("noisy", noisy)
        + target_block("gated", gated, "DeployConcurrency 0", "DeployKillGrace 10")
        + target_block("stepped", stepped, "DeployConcurrency 0")
        + target_block("bursts", bursts, "DeployConcurrency 0")
        + target_block("slow", slow, "DeployTimeout 1", "DeployKillGrace 200ms",
                       "DeployConcurrency 0"))


@pytest.fixture(scope="module")
def server(make_module_httpd):
    return make_module_httpd(setup=prepare_main_server, name="deployctl")


def submit_json(env, home, target):
    """Submits through deployctl --json; the job id."""
    return json.loads(deployctl_ok(env, home, "--json", "submit", target).stdout)["id"]


def test_targets_lists_every_target(server, home):
    result = deployctl_ok(server, home, "targets")
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["TARGET", "SIGNED"]
    assert sorted(line.split()[0] for line in lines[1:]) == \
        ["bursts", "fails", "gated", "noisy", "slow", "stepped", "webapp"]

    as_json = json.loads(deployctl_ok(server, home, "--json", "targets").stdout)
    assert as_json == server.get(f"{BASE}/targets").json()


def test_submit_with_params_then_status_list_and_log(server, home):
    result = deployctl_ok(server, home, "submit", "webapp", "version=1.2.3")
    jid = submitted_id(result)
    assert result.stdout.startswith(f"job {jid} of webapp: ")
    job = server.wait_finished(jid)
    assert job["state"] == "succeeded"
    assert job["params"] == {"version": "1.2.3"}

    status = deployctl_ok(server, home, "status", str(jid)).stdout
    assert re.search(rf"^job\s+{jid}$", status, re.M), status
    assert re.search(r"^state\s+succeeded$", status, re.M), status
    assert re.search(r"^params\s+version=1\.2\.3$", status, re.M), status
    assert re.search(r"^progress\s+100%$", status, re.M), status
    assert re.search(r"^exit code\s+0$", status, re.M), status
    assert re.search(rf"^started\s+\S.* on {re.escape(job['node'])}$", status, re.M), status
    assert json.loads(deployctl_ok(server, home, "--json", "status", str(jid)).stdout) == \
        server.job(jid)

    listing = deployctl_ok(server, home, "list", "--target", "webapp", "--state", "succeeded",
                           "--limit", "1").stdout.splitlines()
    assert listing[0].split()[:3] == ["ID", "TARGET", "STATE"]
    assert [line.split()[:3] for line in listing[1:]] == [[str(jid), "webapp", "succeeded"]]
    as_json = json.loads(deployctl_ok(server, home, "--json", "list", "--limit", "2").stdout)
    assert as_json == server.jobs("?limit=2")

    log = deployctl_ok(server, home, "log", str(jid)).stdout
    assert log == "deploying version 1.2.3\n::progress 100 Done\n"


def test_status_shows_the_group_of_a_grouped_target_only(make_httpd, home):
    def prepare(env):
        env.fragment = (target_block("grouped", "/bin/true", "DeployParam vm ^[a-z]*$",
                                     "DeployGroupBy vm")
                        + target_block("plain", "/bin/true", "DeployParam vm ^[a-z]*$"))
    env = make_httpd(setup=prepare)
    jid = submitted_id(deployctl_ok(env, home, "submit", "grouped", "vm=blue"))
    assert env.wait_finished(jid)["group"] == "blue"
    status = deployctl_ok(env, home, "status", str(jid)).stdout
    assert re.search(r"^target\s+grouped\ngroup\s+blue$", status, re.M), status

    ungrouped = submitted_id(deployctl_ok(env, home, "submit", "plain", "vm=blue"))
    env.wait_finished(ungrouped)
    status = deployctl_ok(env, home, "status", str(ungrouped)).stdout
    assert not re.search(r"^group", status, re.M), status


def test_submit_sends_a_json_body_and_reports_the_module_error(server, home):
    result = deployctl(server, home, "submit", "webapp", "version=not valid")
    assert result.returncode == EXIT_SERVER_ERROR
    assert re.fullmatch(r"deployctl: 400 invalid_param: .*version.*\n", result.stderr), \
        result.stderr
    result = deployctl(server, home, "submit", "nosuchtarget")
    assert result.returncode == EXIT_SERVER_ERROR
    assert result.stderr == "deployctl: 404 not_found: no target named nosuchtarget\n"

    submitted = json.loads(deployctl_ok(server, home, "--json", "submit", "webapp",
                                        "version=2.0").stdout)
    assert submitted["target"] == "webapp" and submitted["params"] == {"version": "2.0"}
    server.wait_finished(submitted["id"])


def test_status_of_an_unknown_job_is_a_server_error(server, home):
    result = deployctl(server, home, "status", "987654")
    assert result.returncode == EXIT_SERVER_ERROR
    assert result.stderr == "deployctl: 404 not_found: no job 987654\n"
    assert result.stdout == ""


def test_log_follow_copies_the_output_until_the_job_ends(server, home, followers):
    jid = submit_json(server, home, "gated")
    follower = followers(server, home, "log", str(jid), "-f")
    follower.wait_output(lambda text: "first line\n" in text, 15, "the first log line")
    assert follower.process.poll() is None, "log -f ended while the job runs"
    open_job_gate(server, "release", jid)
    assert follower.wait_exit() == EXIT_SUCCEEDED
    assert follower.text == "first line\nsecond line\n"
    assert server.job(jid)["state"] == "succeeded"


def test_cancel_of_a_running_job_then_of_a_finished_one(server, home, followers):
    jid = submit_json(server, home, "gated")
    server.wait_job(jid, lambda j: b"first line" in server.log(jid).body, 15, "the job to run")
    follower = followers(server, home, "follow", str(jid))

    result = deployctl_ok(server, home, "cancel", str(jid))
    assert result.stdout == f"job {jid}: cancel requested; it is being stopped (running)\n"
    assert follower.wait_exit() == EXIT_FOR_STATE["canceled"]
    assert f"job {jid} canceled: signal 15, ran " in follower.text

    result = deployctl(server, home, "cancel", str(jid))
    assert result.returncode == EXIT_SERVER_ERROR
    assert result.stderr == \
        f"deployctl: 409 conflict: job {jid} has already finished (canceled)\n"


@pytest.mark.parametrize("target,state", [("webapp", "succeeded"), ("fails", "failed"),
                                          ("slow", "timed_out")])
def test_submit_follow_exits_with_the_final_state(server, home, target, state):
    result = deployctl(server, home, "submit", target, "--follow")
    assert result.returncode == EXIT_FOR_STATE[state], (result.stdout, result.stderr)
    jid = submitted_id(result)
    assert server.job(jid)["state"] == state
    assert result.stdout.splitlines()[-1].startswith(f"job {jid} {state}: ")
    if state == "failed":
        assert result.stderr == ("deployctl: the last 1 lines of the log of job "
                                 f"{jid}:\n  about to fail\n")
    elif state == "timed_out":  # the job printed nothing: the log has the timeout's line
        assert result.stderr.startswith("deployctl: the last 1 lines of the log of job "
                                        f"{jid}:\n  deploy: timed out after "), result.stderr
    else:  # succeeded: nothing to show
        assert result.stderr == ""
    # status answers 0 whatever the state: the request worked.
    assert deployctl(server, home, "status", str(jid)).returncode == 0


def test_a_followed_job_that_fails_shows_the_end_of_its_log(server, home):
    result = deployctl(server, home, "submit", "noisy", "--follow")
    assert result.returncode == EXIT_FOR_STATE["failed"], (result.stdout, result.stderr)
    jid = submitted_id(result)
    expected = ([f"line {i:04d} {'x' * 80}" for i in range(1483, 1501)]
                + ["::progress 90 Checking", "check failed"])
    assert result.stderr.splitlines() == \
        [f"deployctl: the last 20 lines of the log of job {jid}:"] + ["  " + e for e in expected]
    # follow of the finished job says the same; the log itself stays on stdout for `log`.
    again = deployctl(server, home, "follow", str(jid))
    assert again.returncode == EXIT_FOR_STATE["failed"]
    assert again.stderr == result.stderr


def test_follow_in_a_pipe_prints_a_timestamped_line_per_change(server, home, followers):
    jid = submit_json(server, home, "stepped")
    follower = followers(server, home, "follow", str(jid))
    expected = []
    for step, (value, stage) in enumerate(STEPS, 1):
        line = f"job {jid} running {value}% {stage}"
        expected.append(line)
        follower.wait_output(lambda text: line in text, 15, f"the line '{line}'")
        open_job_gate(server, f"step{step}", jid)
    assert follower.wait_exit() == EXIT_SUCCEEDED
    lines = follower.text.splitlines()
    for line in lines[:-1]:
        assert re.fullmatch(rf"{TIMESTAMP} job {jid} \w+( \d+%)?( .*)?", line), line
    changes = [line.split(" ", 1)[1] for line in lines[:-1]]
    assert len(changes) == len(set(changes)), f"a line without a change: {lines}"
    positions = [changes.index(line) for line in expected]
    assert positions == sorted(positions), f"progress out of order: {lines}"
    assert changes[-1] == f"job {jid} succeeded 100% Done"
    assert re.fullmatch(rf"job {jid} succeeded: exit code 0, ran \d+s", lines[-1]), lines[-1]


def test_follow_on_a_terminal_draws_a_progress_bar(server, home, followers):
    jid = submit_json(server, home, "stepped")
    follower = followers(server, home, "follow", str(jid), terminal=True)
    follower.wait_output(
        lambda text: "[##......" in text and "]  10%  Preparing  (running, " in text, 15,
        "the bar at 10%")
    open_job_gate(server, "step1", jid)
    follower.wait_output(lambda text: "[########......" in text and "40%  Provisioning" in text,
                         15, "the bar at 40%")
    open_job_gate(server, "step2", jid)
    open_job_gate(server, "step3", jid)
    assert follower.wait_exit() == EXIT_SUCCEEDED
    text = follower.text
    assert "\r[##......" in text, "the bar is redrawn in place"
    assert "\r[" + "#" * 20 + "] 100%  Done  (succeeded, " in text
    final = text.replace("\r\n", "\n").rstrip("\n").split("\n")[-1]
    assert re.fullmatch(rf"job {jid} succeeded: exit code 0, ran \d+s", final), repr(text)


def test_follow_json_prints_the_servers_job_at_each_change(server, home):
    jid = submit_json(server, home, "fails")
    result = deployctl(server, home, "--json", "follow", str(jid))
    assert result.returncode == EXIT_FOR_STATE["failed"]
    jobs = [json.loads(line) for line in result.stdout.splitlines()]
    assert jobs[-1] == server.job(jid)
    assert all(job["id"] == jid for job in jobs)


# ----- the event stream -----

def requests_for(env, jid):
    """The access_log's request lines ("GET /deploy/jobs/7/events HTTP/1.1", status)
    for job jid, in order."""
    with open(env.path("logs", "access_log")) as f:
        found = re.findall(r'"(\S+ (\S+) HTTP/[\d.]+)" (\d+) ', f.read())
    prefix = f"{BASE}/jobs/{jid}"
    return [(line, int(status)) for line, path, status in found
            if path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "?")]


def stream_requests(env, jid):
    return [r for r in requests_for(env, jid) if r[0] == f"GET {BASE}/jobs/{jid}/events HTTP/1.1"]


def polls(env, jid):
    """GET BASE/jobs/ID and GET BASE/jobs/ID/log?offset=N (not the tail read at the end)."""
    return [r for r in requests_for(env, jid)
            if r[0] == f"GET {BASE}/jobs/{jid} HTTP/1.1"
            or re.fullmatch(rf"GET {BASE}/jobs/{jid}/log\?offset=\d{{1,18}} HTTP/1.1", r[0])]


def assert_no_polls(env, jid):
    requests = "\n".join(f"{line} {status}" for line, status in requests_for(env, jid))
    assert polls(env, jid) == [], f"deployctl polled:\n{requests}"


def wait_for_stream_requests(env, jid, count, what):
    """Waits until count event-stream requests of job jid have ended (logged)."""
    httpd_env.wait_for(lambda: len(stream_requests(env, jid)) >= count, 20, what)


def open_bursts_one_by_one(env, jid, log_follower, follower=None):
    """Opens each burst's gate once log_follower (`log -f`) has printed the
    burst and follower (`follow`), if any, its progress: so that no change
    goes unseen by the followers, whatever their speed."""
    for burst in range(1, BURSTS + 1):
        log_follower.wait_output(lambda text: f"burst {burst} line 200" in text, 15,
                                 f"burst {burst} before its gate opens")
        if follower:
            follower.wait_output(lambda text: f"running {burst * 30}% Burst {burst}" in text, 15,
                                 f"the progress of burst {burst} before its gate opens")
        open_job_gate(env, f"burst{burst}", jid)


def test_follow_reads_the_event_stream_without_polling(server, home, followers):
    jid = submit_json(server, home, "stepped")
    follower = followers(server, home, "follow", str(jid))
    follower.wait_output(lambda text: f"job {jid} running 10% Preparing" in text, 15,
                         "the first step")
    # Three poll intervals at least: a poller would have asked again meanwhile.
    time.sleep(3 * 0.4)
    for step in range(1, len(STEPS) + 1):
        line = f"job {jid} running {STEPS[step - 1][0]}% {STEPS[step - 1][1]}"
        follower.wait_output(lambda text: line in text, 15, f"the line '{line}'")
        open_job_gate(server, f"step{step}", jid)
    assert follower.wait_exit() == EXIT_SUCCEEDED
    wait_for_stream_requests(server, jid, 1, "the stream in access_log")
    assert stream_requests(server, jid) == [(f"GET {BASE}/jobs/{jid}/events HTTP/1.1", 200)]
    assert_no_polls(server, jid)


def test_log_follow_prints_the_whole_log_then_follows_the_stream_live(server, home, followers):
    jid = submit_json(server, home, "bursts")
    # (server.log, not server.wait_job: GET BASE/jobs/ID would look like a poll.)
    httpd_env.wait_for(lambda: b"burst 1 line 200" in server.log(jid).body, 15, "the first burst")
    follower = followers(server, home, "log", str(jid), "-f")
    open_bursts_one_by_one(server, jid, follower)
    assert follower.wait_exit() == EXIT_SUCCEEDED
    assert follower.output == server.log(jid).body
    assert follower.text.endswith("burst 3 line 200\n::progress 90 Burst 3\n"
                                  "the end without newline")
    wait_for_stream_requests(server, jid, 1, "the stream in access_log")
    assert len(stream_requests(server, jid)) == 1
    assert_no_polls(server, jid)


def test_follow_and_log_follow_resume_the_stream_after_a_graceful_restart(server, home,
                                                                          followers):
    jid = submit_json(server, home, "bursts")
    log_follower = followers(server, home, "log", str(jid), "-f")
    follower = followers(server, home, "follow", str(jid))
    log_follower.wait_output(lambda text: "burst 1 line 200" in text, 15, "the first burst")
    follower.wait_output(lambda text: "30% Burst 1" in text, 15, "the first progress")
    server.graceful()
    # Both streams ended with the old generation and were opened again.
    wait_for_stream_requests(server, jid, 2, "the streams ended by the restart")
    open_bursts_one_by_one(server, jid, log_follower, follower)
    assert log_follower.wait_exit() == EXIT_SUCCEEDED
    assert follower.wait_exit() == EXIT_SUCCEEDED
    assert log_follower.output == server.log(jid).body, "a line lost or repeated"
    # Every change once, in order ("running" without progress may come first).
    changes = [line.split(" ", 1)[1] for line in follower.text.splitlines()[:-1]]
    assert [change for change in changes if "%" in change] == \
        [f"job {jid} running {30 * b}% Burst {b}" for b in range(1, BURSTS + 1)] \
        + [f"job {jid} succeeded 90% Burst 3"], follower.text
    wait_for_stream_requests(server, jid, 4, "the resumed streams")
    assert all(status == 200 for _, status in stream_requests(server, jid))
    assert_no_polls(server, jid)


def test_follow_and_log_follow_of_an_unknown_job_fall_back_to_the_poll_and_its_404(server,
                                                                                   home):
    for args in (("follow", "424242"), ("log", "424242", "-f")):
        result = deployctl(server, home, *args)
        assert result.returncode == EXIT_SERVER_ERROR, args
        assert result.stderr == "deployctl: 404 not_found: no job 424242\n", args
    wait_for_stream_requests(server, 424242, 2, "both streams in access_log")
    assert [status for _, status in stream_requests(server, 424242)] == [404, 404]
    assert [status for _, status in polls(server, 424242)] == [404, 404]


@pytest.mark.parametrize("args", [("follow",), ("log", "-f")])
def test_ctrl_c_stops_watching_the_stream_and_the_job_goes_on(server, home, followers, args):
    jid = submit_json(server, home, "gated")
    follower = followers(server, home, args[0], str(jid), *args[1:])
    follower.wait_output(lambda text: ("first line" if args[0] == "log" else "running") in text,
                         15, "the job running")
    os.kill(follower.process.pid, signal.SIGINT)
    assert follower.wait_exit() == 130
    assert f"deployctl: interrupted; job {jid} goes on (deployctl cancel {jid} stops it)" \
        in follower.text
    wait_for_stream_requests(server, jid, 1, "the stream in access_log")
    assert_no_polls(server, jid)
    assert server.job(jid)["state"] == "running"
    open_job_gate(server, "release", jid)
    server.wait_job(jid, lambda j: j["state"] == "succeeded", 15, "the job to end")


def prepare_stream_server(env, extra=""):
    bursts = env.write_script("bursts.sh", bursts_script(env))
    env.fragment = extra + target_block("bursts", bursts, "DeployConcurrency 0")


def test_log_follow_resumes_after_streams_ended_by_the_events_timeout(make_httpd, home,
                                                                      followers):
    env = make_httpd(setup=lambda e: prepare_stream_server(e, "DeployEventsTimeout 1\n"))
    jid = submit_json(env, home, "bursts")
    follower = followers(env, home, "log", str(jid), "-f")
    follower.wait_output(lambda text: "burst 1 line 200" in text, 15, "the first burst")
    wait_for_stream_requests(env, jid, 2, "streams ended by DeployEventsTimeout mid-job")
    open_bursts_one_by_one(env, jid, follower)
    assert follower.wait_exit() == EXIT_SUCCEEDED
    assert follower.output == env.log(jid).body, "a line lost or repeated"
    assert_no_polls(env, jid)


def watch_bursts_by_polling_after(env, home, followers, refusal):
    """`log -f` and `follow` of a bursts job whose stream is refused with
    status `refusal`: once each, then they poll, and show the same."""
    jid = submit_json(env, home, "bursts")
    log_follower = followers(env, home, "log", str(jid), "-f")
    follower = followers(env, home, "follow", str(jid))
    open_bursts_one_by_one(env, jid, log_follower, follower)
    assert log_follower.wait_exit() == EXIT_SUCCEEDED
    assert follower.wait_exit() == EXIT_SUCCEEDED
    assert log_follower.output == env.log(jid).body
    assert follower.text.splitlines()[-1].startswith(f"job {jid} succeeded: ")
    assert [status for _, status in stream_requests(env, jid)] == [refusal, refusal]
    assert len(polls(env, jid)) >= 2


def test_follow_polls_when_the_stream_route_is_refused(make_httpd, home, followers):
    env = make_httpd(setup=lambda e: prepare_stream_server(
        e, '<LocationMatch "/events$">\n    Require all denied\n</LocationMatch>\n'))
    env.expect_error(r"AH01630")  # client denied by server configuration
    watch_bursts_by_polling_after(env, home, followers, 403)


def test_follow_polls_when_the_server_has_no_stream_to_spare(make_httpd, home, followers):
    env = make_httpd(setup=lambda e: prepare_stream_server(e, "DeployEventsMaxStreams 1\n"))
    holder_job = submit_json(env, home, "bursts")
    # The one stream the server allows, held by someone else.
    holder = socket.create_connection(("127.0.0.1", env.port), timeout=10)
    try:
        holder.sendall(f"GET {BASE}/jobs/{holder_job}/events HTTP/1.1\r\n"
                       "Host: 127.0.0.1\r\n\r\n".encode())
        assert holder.recv(64).startswith(b"HTTP/1.1 200"), "the held stream"
        watch_bursts_by_polling_after(env, home, followers, 503)
    finally:
        holder.close()
    for burst in range(1, BURSTS + 1):
        open_job_gate(env, f"burst{burst}", holder_job)


def find_runner(env, jid):
    """The pid of the deploy-runner of job jid (argv: runner STATE_DIR ID ...)."""
    for pid in httpd_env.all_pids():
        args = httpd_env._read_proc(pid, "cmdline").split(b"\0")
        if (len(args) > 2 and args[0].endswith(b"deploy-runner")
                and args[1].startswith(env.state_dir.encode()) and args[2] == str(jid).encode()
                and process_alive(pid)):
            return pid
    return None


def job_processes(jid):
    marker = f"DEPLOY_JOB_ID={jid}".encode()
    return [pid for pid in httpd_env.all_pids() if process_alive(pid)
            and marker in httpd_env._read_proc(pid, "environ").split(b"\0")]


def test_follow_of_a_job_whose_runner_was_killed_exits_lost(server, home, followers):
    jid = submit_json(server, home, "gated")
    server.wait_job(jid, lambda j: b"first line" in server.log(jid).body, 15, "the job to run")
    follower = followers(server, home, "follow", str(jid))
    runner = wait_for(lambda: find_runner(server, jid), 10, f"the runner of job {jid}")
    os.kill(runner, signal.SIGKILL)
    assert follower.wait_exit() == EXIT_FOR_STATE["lost"], follower.text
    assert server.job(jid)["state"] == "lost"
    assert f"job {jid} lost: " in follower.text
    # The job outlived its runner: release it and see it end.
    open_job_gate(server, "release", jid)
    wait_for(lambda: not job_processes(jid), 40, f"the processes of job {jid} to end")


# ----- servers of their own -----

def test_follow_of_a_job_that_expired_in_the_queue(make_httpd, home):
    def prepare(env):
        env.gate = Gate(env, "release")
        blocker = gated_job_script(env, "blocker.sh", env.gate)
        env.server_config = "DeployMaxRunning 1"
        env.fragment = (target_block("blocker", blocker)
                        + target_block("late", "/bin/true", "DeployQueueTimeout 300ms"))
    env = make_httpd(setup=prepare)
    blocker = env.submit_ok("blocker")["id"]
    env.wait_state(blocker, "running")
    try:
        result = deployctl(env, home, "submit", "late", "--follow")
        assert result.returncode == EXIT_FOR_STATE["expired"], (result.stdout, result.stderr)
        jid = submitted_id(result)
        assert env.job(jid)["state"] == "expired"
        assert re.fullmatch(rf"job {jid} expired: never started, waited \d+s",
                            result.stdout.splitlines()[-1])
    finally:
        env.gate.open()
    env.wait_finished(blocker)


def prepare_basic_auth(env):
    env.write_file("conf/htpasswd", sha_htpasswd_line("alice", "s3cret"))
    env.fragment = (target_block("webapp", "/bin/true")
                    + f"<Location {BASE}>\n"
                      "    AuthType Basic\n"
                      "    AuthName deploy\n"
                      f'    AuthUserFile "{env.path("conf", "htpasswd")}"\n'
                      "    Require valid-user\n"
                      "</Location>\n")


def test_basic_auth_with_user_option_and_netrc(make_httpd, home):
    env = make_httpd(setup=prepare_basic_auth)
    env.expect_error(r"AH01617|user alice: authentication failure")

    result = deployctl(env, home, "targets")
    assert result.returncode == EXIT_SERVER_ERROR
    assert result.stderr == "deployctl: 401 Unauthorized\n"
    result = deployctl(env, home, "--user", "alice:wrong", "targets")
    assert result.returncode == EXIT_SERVER_ERROR
    assert result.stderr == "deployctl: 401 Unauthorized\n"

    result = deployctl_ok(env, home, "--user", "alice:s3cret", "submit", "webapp")
    jid = submitted_id(result)
    assert env.request("GET", f"{BASE}/jobs/{jid}").status == 401
    with open(os.path.join(home, ".netrc"), "w") as f:
        f.write("machine 127.0.0.1 login alice password s3cret\n")
    status = deployctl_ok(env, home, "status", str(jid)).stdout
    assert re.search(r"^submitted\s+\S+ by alice$", status, re.M), status
    # --user without a password (and no terminal to ask on): ~/.netrc has it.
    deployctl_ok(env, home, "--user", "alice", "targets")


def prepare_signed_target(env):
    env.secret = env.write_file("conf/secret", "the key\n", 0o644)
    env.fragment = target_block("signed", "/bin/true", f"DeploySecret file:{env.secret}")


def test_signed_submission(make_httpd, home, tmp_path):
    env = make_httpd(setup=prepare_signed_target)
    result = deployctl(env, home, "--secret-file", env.secret, "submit", "signed", "--follow")
    assert result.returncode == EXIT_SUCCEEDED, (result.stdout, result.stderr)
    assert env.job(submitted_id(result))["state"] == "succeeded"

    wrong = tmp_path / "wrong"
    wrong.write_text("another key\n")
    result = deployctl(env, home, "--secret-file", str(wrong), "submit", "signed")
    assert result.returncode == EXIT_SERVER_ERROR
    assert result.stderr == \
        "deployctl: 403 bad_signature: the X-Hub-Signature-256 signature does not match\n"
    result = deployctl(env, home, "submit", "signed")
    assert result.returncode == EXIT_SERVER_ERROR
    assert result.stderr == \
        "deployctl: 403 bad_signature: the X-Hub-Signature-256 header is missing\n"
    assert len(env.jobs()) == 1, "a refused submission records nothing"

    result = deployctl(env, home, "--secret-file", str(tmp_path / "missing"), "submit", "signed")
    assert result.returncode == EXIT_LOCAL_ERROR
    assert result.stderr.startswith(f"deployctl: cannot read secret file {tmp_path}/missing: ")


# ----- no server -----

def test_unreachable_server_is_named_with_the_reason(home):
    url = f"http://127.0.0.1:{free_port()}/deploy"
    for args in (["targets"], ["status", "1"], ["follow", "1"], ["submit", "webapp"]):
        result = run_deployctl(home, "--url", url, *args)
        assert result.returncode == EXIT_SERVER_ERROR, args
        assert result.stderr == f"deployctl: cannot reach {url}: Connection refused\n", args


def test_deploy_url_from_the_environment(home):
    url = f"http://127.0.0.1:{free_port()}/somewhere"
    result = run_deployctl(home, "targets", environment={"DEPLOY_URL": url})
    assert result.stderr == f"deployctl: cannot reach {url}: Connection refused\n"


@pytest.mark.parametrize("args,message", [
    ([], "no command given"),
    (["deploy"], "unknown command 'deploy'"),
    (["status"], "status needs exactly one job ID"),
    (["status", "12x"], "'12x' is not a job ID"),
    (["submit", "webapp", "version"], "parameter 'version' is not NAME=VALUE"),
    (["submit", "webapp", "a=1", "a=2"], "parameter a is given twice"),
    (["list", "--limit", "0"], "--limit needs a positive number"),
    (["log", "1", "--follow"], "option --follow does not apply to 'log'"),
    (["targets", "--bogus"], "unknown option --bogus"),
])
def test_usage_errors_exit_1(home, args, message):
    result = run_deployctl(home, *args)
    assert result.returncode == EXIT_LOCAL_ERROR
    assert result.stderr == f"deployctl: {message}\nTry 'deployctl --help'.\n"


def test_help_names_the_default_url_and_deploy_url(home):
    result = run_deployctl(home, "--help")
    assert result.returncode == 0
    assert "http://127.0.0.1:8080/deploy, where scripts/demo listens" in result.stdout
    assert re.search(r"^Environment:\n  DEPLOY_URL +the Location of mod_deploy when --url is not",
                     result.stdout, re.M)
    assert "last 20 lines of its log" in result.stdout


def test_help_documents_the_commands_and_exit_statuses(home):
    result = run_deployctl(home, "--help")
    assert result.returncode == 0
    for word in ("submit TARGET", "follow ID", "status ID", "list [--target T]", "cancel ID",
                 "log ID [-f]", "targets", "--url", "--user", "--secret-file", "--json"):
        assert word in result.stdout, word
    for code, state in ((3, "failed"), (4, "timed out"), (5, "canceled"), (6, "expired"),
                        (7, "lost")):
        assert re.search(rf"^  {code}  the job .*{state}", result.stdout, re.M), state
