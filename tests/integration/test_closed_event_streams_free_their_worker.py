"""A watcher that goes away (a closed browser tab) frees its httpd worker
within about a second, even while nothing changes: the stream notices the
closed connection as it waits, not only when a write fails (after the next
change, or after two 15 s heartbeats)."""

import time

import pytest

from harness.event_stream import EventStream
from harness.httpd_env import BASE, target_block, wait_for

WORKERS = 4
FREED_WITHIN = 5.0  # seconds; streams look at their connection every second


@pytest.mark.sanitize
@pytest.mark.parametrize("route", ["events", "jobs/ID/events"])
def test_closed_streams_free_their_workers_while_nothing_changes(make_httpd, route):
    def prepare(env):
        env.server_config = (f"ServerLimit 1\nThreadsPerChild {WORKERS}\n"
                             f"MaxRequestWorkers {WORKERS}\nDeployEventsTimeout 10mi\n"
                             # Every worker may stream here (by default only a quarter).
                             f"DeployEventsMaxStreams {WORKERS}\n"
                             "LogLevel info deploy:debug")
        env.fragment = target_block("held", env.write_script(
            "held.sh", "#!/bin/sh\nexec sleep 120\n"), "DeployTimeout 3mi")
    env = make_httpd(setup=prepare, name="closed-streams")
    env.expect_error(r"AH00484|AH10159")  # MaxRequestWorkers reached: on purpose
    path = f"{BASE}/events"
    if route != "events":
        jid = env.submit_ok("held")["id"]
        env.wait_state(jid, "running")
        path = f"{BASE}/jobs/{jid}/events"

    streams = [EventStream(env, path) for _ in range(WORKERS)]
    try:
        assert all(s.status == 200 for s in streams)
        # Every worker streams: a request now waits for one.
        with pytest.raises(OSError):
            env.request("GET", f"{BASE}/jobs", timeout=1.5)
    finally:
        for s in streams:
            s.close()
    closed = time.monotonic()
    try:
        r = env.request("GET", f"{BASE}/jobs", timeout=FREED_WITHIN + 5)
    except OSError as e:
        pytest.fail(f"no worker was free {FREED_WITHIN + 5} s after the streams closed ({e})")
    waited = time.monotonic() - closed
    assert r.status == 200
    assert waited < FREED_WITHIN, f"a worker was free again {waited:.2f} s after the close"
    # LogLevel deploy:debug says why each stream ended (the first one to end
    # freed the worker that answered; the others follow within a second).
    def ended():
        with open(env.error_log) as f:
            lines = [line for line in f if f"event stream {path} ended after" in line]
        return lines if len(lines) == WORKERS else None
    ended = wait_for(ended, FREED_WITHIN, f"{WORKERS} streams to log their end")
    assert all(line.rstrip().endswith(": the client closed the connection") for line in ended), \
        ended
    if route != "events":
        assert env.request("POST", f"{BASE}/jobs/{jid}/cancel").status == 202
        env.wait_finished(jid)
