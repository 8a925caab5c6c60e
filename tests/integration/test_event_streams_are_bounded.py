"""DeployEventsMaxStreams and DeployEventsMaxPerClient: a stream past either
limit is answered 503 too_many_streams with Retry-After at once, while other
routes (a static file, a submission) keep being served; a closed stream, or
the streams of a child that died, free their place."""

import json
import os
import signal
import threading

import pytest

from harness.event_stream import EventStream
from harness.httpd_env import BASE, children_of, holds_listener, target_block, wait_for


def prepare(env, server_config=""):
    env.write_file("htdocs/static.txt", "static\n")
    quick = env.write_script("quick.sh", "#!/bin/sh\necho done\n")
    slow = env.write_script("slow.sh", "#!/bin/sh\nexec sleep 60\n")
    env.fragment = target_block("quick", quick) + target_block("slow", slow)
    env.server_config = server_config


def open_streams(env, count, source, path=f"{BASE}/events"):
    streams = [EventStream(env, path, source=source, timeout=10) for _ in range(count)]
    return streams


def close_all(streams):
    for s in streams:
        s.close()


def assert_refused(stream, limit_word):
    assert stream.status == 503, (stream.status, stream.body)
    assert stream.headers.get("Retry-After", "").isdigit()
    body = json.loads(stream.body)
    assert body["error"] == "too_many_streams"
    assert limit_word in body["message"], body


def assert_other_routes_served(env):
    assert env.get("/static.txt").status == 200
    job = env.submit_ok("quick")
    assert env.wait_finished(job["id"])["state"] == "succeeded"


@pytest.mark.sanitize
def test_streams_past_either_limit_are_refused_while_other_routes_are_served(make_httpd):
    env = make_httpd(setup=lambda e: prepare(e, "DeployEventsMaxStreams 4\n"
                                                "DeployEventsMaxPerClient 2"),
                     name="stream-limits")
    slow = env.submit_ok("slow")
    env.wait_state(slow["id"], "running")
    streams = []
    try:
        streams += open_streams(env, 2, "127.0.0.1")
        assert [s.status for s in streams] == [200, 200]
        assert_refused(EventStream(env, f"{BASE}/events", source="127.0.0.1"), "this client")
        # Other clients still may, until the server's limit; both routes count.
        streams += open_streams(env, 1, "127.0.0.2")
        streams += open_streams(env, 1, "127.0.0.3", path=f"{BASE}/jobs/{slow['id']}/events")
        assert [s.status for s in streams] == [200] * 4
        assert_refused(EventStream(env, f"{BASE}/events", source="127.0.0.4"), "the server")
        assert_refused(EventStream(env, f"{BASE}/jobs/{slow['id']}/events", source="127.0.0.4"),
                       "the server")
        assert_other_routes_served(env)
    finally:
        close_all(streams)
        env.request("POST", f"{BASE}/jobs/{slow['id']}/cancel")

    # Closed streams give their places back (the server notices within ~1 s).
    def a_stream_opens():
        s = EventStream(env, f"{BASE}/events", source="127.0.0.4")
        s.close()
        return s.status == 200
    wait_for(a_stream_opens, 15, "a stream to open after the others closed")


def test_a_flood_of_streams_leaves_workers_for_everything_else(make_httpd):
    # 100 workers (4 children of 25 threads): by default a quarter of them
    # may stream, 8 per client address.
    env = make_httpd(setup=prepare, name="stream-flood")
    streams = []
    try:
        for n in range(130):
            streams.append(EventStream(env, f"{BASE}/events", source=f"127.0.1.{n % 40 + 1}",
                                       timeout=10))
        opened = [s for s in streams if s.status == 200]
        refused = [s for s in streams if s.status == 503]
        assert len(opened) == 25, f"{len(opened)} streams opened, 25 expected"
        assert len(opened) + len(refused) == 130
        for s in refused:
            assert json.loads(s.body)["error"] == "too_many_streams"
        # A static file and a submission at once, while 25 streams stay open.
        results = {}

        def fetch_static():
            results["static"] = env.get("/static.txt").status

        t = threading.Thread(target=fetch_static)
        t.start()
        assert_other_routes_served(env)
        t.join(30)
        assert results.get("static") == 200
    finally:
        close_all(streams)


def test_per_client_limit_defaults_to_eight(make_httpd):
    env = make_httpd(setup=prepare, name="stream-per-client")
    streams = open_streams(env, 8, "127.0.0.5")
    try:
        assert all(s.status == 200 for s in streams)
        assert_refused(EventStream(env, f"{BASE}/events", source="127.0.0.5"), "this client")
        other = EventStream(env, f"{BASE}/events", source="127.0.0.6")
        assert other.status == 200
        other.close()
    finally:
        close_all(streams)


def test_the_places_of_a_child_that_died_are_taken_back(make_httpd):
    env = make_httpd(setup=lambda e: prepare(e, "DeployEventsMaxStreams 3\n"
                                                "DeployEventsMaxPerClient 3"),
                     name="stream-dead-child")
    env.expect_error(r"exit signal Killed|AH00052")
    streams = open_streams(env, 3, "127.0.0.7")
    assert all(s.status == 200 for s in streams)
    assert_refused(EventStream(env, f"{BASE}/events", source="127.0.0.8"), "the server")
    # Kill every child that serves requests (they hold the listener; the
    # scheduler process does not): the kernel closes their streams, and no
    # child is left to give their places back.
    for pid in children_of(env.read_pid()):
        if holds_listener(pid, env.port):
            os.kill(pid, signal.SIGKILL)
    close_all(streams)

    def a_stream_opens():
        s = EventStream(env, f"{BASE}/events", source="127.0.0.8")
        s.close()
        return s.status == 200
    wait_for(a_stream_opens, 20, "a stream to open once the dead children's places were freed")
