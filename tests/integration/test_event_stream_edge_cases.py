"""What an event stream promises at its edges: a malformed Last-Event-ID
(negative, overflowing, garbage, or newer than anything the server sent) is
as if none had been sent, so the stream still carries everything and ends
with the final state; and a line of output longer than 64 KiB reaches the
job's stream whole, in one event that rebuilds it exactly."""

import pytest

from harness.event_stream import EventStream, is_job_event
from harness.httpd_env import BASE, target_block

LONG_LINE = 200 * 1024


def prepare(env):
    quick = env.write_script("quick.sh", "#!/bin/sh\necho one\necho '::progress 50 Half'\n"
                                         "echo two\n")
    # A 200 KiB line in pieces (as a tool writing slowly would), then more lines.
    long = env.write_script("long.sh", "#!/usr/bin/python3\n"
                                       "import sys, time\n"
                                       "print('before', flush=True)\n"
                                       f"line = ''.join(chr(97 + i % 26) for i in range({LONG_LINE}))\n"
                                       "for i in range(0, len(line), 50000):\n"
                                       "    sys.stdout.write(line[i:i + 50000]); sys.stdout.flush()\n"
                                       "    time.sleep(0.05)\n"
                                       "print(flush=True)\n"
                                       "print('after', flush=True)\n")
    env.fragment = target_block("quick", quick) + target_block("long", long)


@pytest.fixture(scope="module")
def env(make_module_httpd):
    return make_module_httpd(setup=prepare, name="stream-edges")


def log_bytes(events):
    return b"".join(e.data.encode() + b"\n" for e in events if e.name == "log")


@pytest.mark.sanitize
@pytest.mark.parametrize("bad_id", ["-1.-1", "-1", "garbage", "18446744073709551616.0",
                                    "1.18446744073709551616", "999999999.0", "", "1.2.3"])
def test_a_malformed_last_event_id_is_treated_as_absent(env, bad_id):
    jid = env.submit_ok("quick")["id"]
    env.wait_finished(jid)
    with EventStream(env, f"{BASE}/jobs/{jid}/events") as plain:
        expected = plain.read_to_end()
    with EventStream(env, f"{BASE}/jobs/{jid}/events", {"Last-Event-ID": bad_id}) as resumed:
        events = resumed.read_to_end()
    assert events, f"Last-Event-ID {bad_id!r}: an empty stream"
    assert events[-1].name == "job" and events[-1].json()["state"] == "succeeded"
    assert [(e.name, e.id, e.data) for e in events] == \
        [(e.name, e.id, e.data) for e in expected]


@pytest.mark.sanitize
@pytest.mark.parametrize("bad_id", ["-1", "garbage", "99999999999999999999", "999999999"])
def test_the_all_jobs_stream_ignores_a_malformed_last_event_id(env, bad_id):
    with EventStream(env, f"{BASE}/events", {"Last-Event-ID": bad_id}) as stream:
        assert stream.status == 200
        jid = env.submit_ok("quick")["id"]
        stream.read_until(lambda e: is_job_event(e, jid, lambda j: j["state"] == "succeeded"),
                          f"job {jid} to succeed after Last-Event-ID {bad_id!r}")


@pytest.mark.sanitize
def test_a_line_longer_than_64_kib_reaches_the_job_stream_whole(env):
    jid = env.submit_ok("long")["id"]
    with EventStream(env, f"{BASE}/jobs/{jid}/events", timeout=30) as stream:
        events = stream.read_to_end()
    log = env.log(jid).body
    long_line = "".join(chr(97 + i % 26) for i in range(LONG_LINE))
    assert log == f"before\n{long_line}\nafter\n".encode()
    assert log_bytes(events) == log, "the log events rebuild the log exactly"
    carrying = [e for e in events if e.name == "log" and long_line in e.data.split("\n")]
    assert len(carrying) == 1, "one event carries the long line, in one data: line"
    assert events[-1].name == "job" and events[-1].json()["state"] == "succeeded"
