"""A step of the wall clock, backwards or forwards, changes no delay, timeout,
quiet window or stream deadline (SPEC "Trust": every one of them is measured on
a monotonic clock), while the times shown are the stepped wall clock.

httpd and every process it forks run with their wall clock shifted by a shim
(httpd_env.ClockShift); the test steps it while jobs wait, queue and run and
while an event stream is open, and times everything on its own monotonic
clock. An observer thread polls the job list and notes when each job was
first seen in each state.
"""

import socket
import threading
import time

import pytest

from harness.httpd_env import BASE, ClockShift, Gate, gated_job_script, target_block
from test_job_json_fields import parse_time

EVENTS_TIMEOUT = 3
QUIET = 2
CAP = 3
QUEUE_TIMEOUT = 4
HELD_QUEUE_TIMEOUT = 12  # longer than a restart of httpd on a loaded machine
JOB_TIMEOUT = 3
KILL_GRACE = 1
# Slack for a loaded machine: what comes late may come this much later. A
# step of 60 s or 1 h is far beyond it.
LATE = 3.5
EARLY = 0.3  # what comes early must not come more than this before its time


class Observer(threading.Thread):
    """Polls GET BASE/jobs and keeps, per job, when (time.monotonic()) it was
    first seen in each state."""

    def __init__(self, env):
        super().__init__(daemon=True)
        self.env = env
        self.first_seen = {}  # (id, state) -> monotonic time
        self.jobs = {}  # id -> latest JSON
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                jobs = self.env.jobs("?limit=100")
                now = time.monotonic()
                for job in jobs:
                    self.jobs[job["id"]] = job
                    self.first_seen.setdefault((job["id"], job["state"]), now)
                self.stop.wait(0.05)
        except Exception as e:  # reported by the test, not lost in the thread
            self.error = e

    def seen(self, job_id, *states):
        """When the job was first seen in one of `states`, or None."""
        times = [self.first_seen[(job_id, s)] for s in states if (job_id, s) in self.first_seen]
        return min(times) if times else None

    def wait(self, job_id, states, until, what):
        while time.monotonic() < until:
            assert self.error is None, f"the observer failed: {self.error!r}"
            t = self.seen(job_id, *states)
            if t is not None:
                return t
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} never {what}; last seen: {self.jobs.get(job_id)}\n"
                             f"{self.env.error_log_tail()}")


class StreamTimer(threading.Thread):
    """Holds GET BASE/events open (raw socket, Connection: close) and notes
    how long it lasted, reading at most `limit` seconds."""

    def __init__(self, env, limit):
        super().__init__(daemon=True)
        self.env = env
        self.limit = limit
        self.lasted = None
        self.head = b""
        self.opened = threading.Event()

    def run(self):
        sock = socket.create_connection(("127.0.0.1", self.env.port), timeout=0.5)
        try:
            sock.sendall(f"GET {BASE}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Connection: close\r\n\r\n".encode())
            opened_at = time.monotonic()
            while time.monotonic() - opened_at < self.limit:
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                if not self.opened.is_set():
                    self.head += data
                    if b"\r\n\r\n" in self.head:
                        self.opened.set()
                if not data:
                    self.lasted = time.monotonic() - opened_at
                    return
        finally:
            sock.close()


def prepare(env):
    env.clock = ClockShift(env)
    env.gate = Gate(env, "release")
    env.server_config = f"DeployEventsTimeout {EVENTS_TIMEOUT}"
    sleeper = env.write_script("sleeper.sh", "#!/bin/sh\nsleep 30\n")
    env.fragment = (
        target_block("now", "/bin/true")
        + target_block("quiet", "/bin/true", f"DeployWaitChangeNotification {QUIET}")
        + target_block("capped", "/bin/true", f"DeployWaitChangeNotification {QUIET}",
                       f"DeployMaxWaitChangeNotification {CAP}")
        + target_block("slow", gated_job_script(env, "blocker.sh", env.gate),
                       "DeployConcurrency 1", f"DeployQueueTimeout {QUEUE_TIMEOUT}")
        + target_block("timed", sleeper, f"DeployTimeout {JOB_TIMEOUT}",
                       f"DeployKillGrace {KILL_GRACE}")
        + target_block("held", gated_job_script(env, "held.sh", env.gate), "DeployConcurrency 1",
                       f"DeployQueueTimeout {HELD_QUEUE_TIMEOUT}"))


def between(value, low, high, what):
    assert low <= value <= high, f"{what}: {value:.2f} s, expected between {low:.2f} and {high:.2f}"


@pytest.mark.parametrize("step", [-60, 60, 3600], ids=["back_60s", "forward_60s", "forward_1h"])
def test_a_wall_clock_step_moves_no_deadline(make_httpd, step):
    env = make_httpd(setup=prepare, name="clock-steps")
    clock = env.clock
    # A first job, so that the scheduler has decided and kept house before the step.
    warm_up = env.submit_ok("now")["id"]
    assert env.wait_finished(warm_up)["state"] == "succeeded"

    observer = Observer(env)
    observer.start()
    stream = StreamTimer(env, limit=EVENTS_TIMEOUT + 10)
    try:
        # Before the step: a job in its quiet window, the first trigger of a
        # capped one, a queued job with a queue timeout, a running one with a
        # timeout.
        quiet_at = time.monotonic()
        quiet = env.submit_ok("quiet")["id"]
        capped_at = time.monotonic()
        capped = env.submit_ok("capped")["id"]
        blocker = env.submit_ok("slow")["id"]
        queued_at = time.monotonic()
        queued = env.submit_ok("slow")["id"]
        timed = env.submit_ok("timed")["id"]
        observer.wait(timed, ("running",), time.monotonic() + 10, "ran")
        # And an event stream.
        stream.start()
        assert stream.opened.wait(5), f"GET {BASE}/events did not answer: {stream.head!r}"

        clock.step(step)

        # A new job on a target without a quiet window starts at once.
        now_at = time.monotonic()
        shown_at = clock.now()
        now_job = env.submit_ok("now")
        started = observer.wait(now_job["id"], ("running", "succeeded"), now_at + LATE + 2,
                                "started")
        between(started - now_at, 0, LATE, "a new job started after")

        # The capped job takes a trigger every 0.4 s until it leaves waiting:
        # only the cap, from its first trigger (before the step), ends it.
        capped_json = None
        while observer.seen(capped, "queued", "running", "succeeded") is None:
            assert time.monotonic() < capped_at + CAP + LATE + 3, (
                f"the capped job never started; last seen {observer.jobs.get(capped)}")
            answer_at, answer_shown_at = time.monotonic(), clock.now()
            r = env.submit("capped")
            assert r.status == 202, r
            if r.json()["id"] == capped:
                capped_json = r.json()
                # Shown: the stepped wall clock plus what is left of the cap.
                assert abs(parse_time(capped_json["not_before"])
                           - (answer_shown_at + capped_at + CAP - answer_at)) < 1.5, capped_json
            time.sleep(0.4)
        left = observer.seen(capped, "queued", "running", "succeeded")
        between(left - capped_at, CAP - EARLY, CAP + LATE, "the capped job left waiting after")
        assert capped_json and capped_json["requests"] >= 3, capped_json

        # The quiet window of the job submitted before the step.
        left = observer.wait(quiet, ("queued", "running", "succeeded"), quiet_at + QUIET + LATE,
                             "left waiting")
        between(left - quiet_at, QUIET - EARLY, QUIET + LATE, "the quiet job left waiting after")

        # The queue timeout, counted from the submission before the step.
        expired = observer.wait(queued, ("expired",), queued_at + QUEUE_TIMEOUT + LATE, "expired")
        between(expired - queued_at, QUEUE_TIMEOUT - EARLY, QUEUE_TIMEOUT + LATE,
                "the queued job expired after")

        # DeployTimeout of the job that was running when the clock stepped.
        ran = observer.seen(timed, "running")
        ended = observer.wait(timed, ("timed_out",), ran + JOB_TIMEOUT + KILL_GRACE + LATE,
                              "timed out")
        between(ended - ran, JOB_TIMEOUT - EARLY, JOB_TIMEOUT + KILL_GRACE + LATE,
                "the running job timed out after")

        # The event stream opened before the step ends after DeployEventsTimeout.
        stream.join(EVENTS_TIMEOUT + 12)
        assert stream.lasted is not None, (
            f"GET {BASE}/events was still open after {stream.limit} s "
            f"(DeployEventsTimeout {EVENTS_TIMEOUT})")
        between(stream.lasted, EVENTS_TIMEOUT - EARLY, EVENTS_TIMEOUT + LATE,
                "the event stream lasted")

        # What is shown is the stepped wall clock (the runner, started with
        # an empty environment, writes finished_at on the true one).
        shown = env.job(now_job["id"])
        between(parse_time(shown["submitted_at"]) - shown_at, -1, 1.5, "submitted_at - the clock")
        between(parse_time(shown["started_at"]) - shown_at, -1, LATE + 1, "started_at - the clock")
        expired_job = env.job(queued)
        between(parse_time(expired_job["finished_at"]) - clock.now(), -(LATE + 10), 1,
                "finished_at of the expired job - the clock")
    finally:
        observer.stop.set()
        observer.join(5)
        env.gate.open()
    assert env.wait_finished(blocker, timeout=30)["state"] == "succeeded"


@pytest.mark.parametrize("step", [-60, 3600], ids=["back_60s", "forward_1h"])
def test_deadlines_kept_in_the_job_table_hold_across_a_step_and_a_restart(make_httpd, step):
    env = make_httpd(setup=prepare, name="clock-steps-restart")
    blocker = env.submit_ok("held")["id"]
    env.wait_state(blocker, "running")
    queued_at = time.monotonic()
    queued = env.submit_ok("held")["id"]
    env.clock.step(step)
    env.restart()
    observer = Observer(env)
    observer.start()
    try:
        restarted = time.monotonic()
        assert restarted < queued_at + HELD_QUEUE_TIMEOUT - 2, "the restart took too long to tell"
        expired = observer.wait(queued, ("expired",), queued_at + HELD_QUEUE_TIMEOUT + LATE,
                                "expired")
        between(expired - queued_at, HELD_QUEUE_TIMEOUT - EARLY, HELD_QUEUE_TIMEOUT + LATE,
                "the queued job expired after")
    finally:
        observer.stop.set()
        observer.join(5)
        env.gate.open()
    assert env.wait_finished(blocker, timeout=30)["state"] == "succeeded"
