"""GET BASE/jobs/ID/events: the output in order as `log` events, a `job` event at
every change of state, progress or stage (after the output that caused it),
an id on every event, Last-Event-ID resumes without repeating anything, and
the stream ends after the final state or after DeployEventsTimeout."""

import json

import pytest

from harness.event_stream import EventStream, is_job_event
from harness.httpd_env import BASE, Gate, blocking_script_lines, target_block

# The job stops at each gate until the test has seen the change before it:
# every change is then observable, whatever the speed of the machine.
STEPS = 3


def gate(env, job_id, step):
    return Gate(env, f"gate-{job_id}-{step}")


def write_stepped_job(env):
    def wait(step):
        return blocking_script_lines(f"{env.scratch}/gate-$DEPLOY_JOB_ID-{step}", seconds=60)
    return env.write_script("stepped.sh", "#!/bin/bash\n"
                            'echo "start $DEPLOY_JOB_ID"\n'
                            'echo "::progress 10 Fetching"\n'
                            + wait(1) +
                            'echo "compiling"\n'
                            'echo "::stage Building"\n'
                            + wait(2) +
                            'echo "::progress 60"\n'
                            'echo "  indented, trailing spaces  "\n'
                            'echo ""\n'
                            "printf 'caf\\303\\251 <b>&amp;</b>\\n'\n"
                            + wait(3) +
                            "printf 'last line without newline'\n"
                            "exit 0\n")


def prepare(env):
    stepped = write_stepped_job(env)
    env.fragment = target_block("stepped", stepped, "DeployTimeout 2mi")


@pytest.fixture(scope="module")
def env(make_module_httpd):
    return make_module_httpd(setup=prepare, name="job-events")


def split_id(event):
    """CHANGE.OFFSET of a job stream's event id, as two integers."""
    assert event.id is not None, f"event without id: {event}"
    change, dot, offset = event.id.partition(".")
    assert dot and change.isdigit() and offset.isdigit(), f"id is not CHANGE.OFFSET: {event.id!r}"
    return int(change), int(offset)


def log_bytes(events):
    """The output the log events carry (SSE drops each event's last newline)."""
    return b"".join(e.data.encode() + b"\n" for e in events if e.name == "log")


def assert_ids_follow_the_stream(events, start_change=0, start_offset=0):
    """Each id's OFFSET is the log bytes sent so far; CHANGE that of the last job event."""
    change, offset = start_change, start_offset
    partial_line_sent = False
    for e in events:
        assert e.name in ("job", "log"), f"unexpected event {e}"
        event_change, event_offset = split_id(e)
        if e.name == "log":
            assert not partial_line_sent, f"log event {e.id} after a line without newline"
            offset += len(e.data.encode()) + 1
            # The id tells whether the last line had its newline (SSE cannot).
            if event_offset == offset - 1:
                partial_line_sent = True
                offset -= 1
            assert event_change == change, f"log event {e.id} after job change {change}"
        else:
            assert event_change > change, f"job event {e.id} does not follow change {change}"
            change = event_change
        assert event_offset == offset, f"event {e.id}: {offset} log bytes sent so far"
    return change, offset


def state_of(job):
    return job["state"], job["progress"], job["stage"]


def full_log(env, job_id):
    r = env.log(job_id)
    assert r.status == 200, r
    return r.body


def rebuilt(log):
    """The log as the log events carry it: a last line without newline gets one."""
    return log if log.endswith(b"\n") else log + b"\n"


@pytest.mark.sanitize
def test_events_carry_output_then_each_change_and_end_after_the_final_state(env):
    jid = env.submit_ok("stepped")["id"]
    with EventStream(env, f"{BASE}/jobs/{jid}/events") as stream:
        assert stream.status == 200
        assert stream.headers.get("Content-Type", "").startswith("text/event-stream")
        assert stream.headers.get("Cache-Control") == "no-store"
        assert stream.headers.get("Content-Length") is None

        # Per step: the output up to the line that changes the job, then what
        # the job writes after it (separate writes, which may come after the
        # job event).
        expected = [("running", 10, "Fetching", b"start %d\n::progress 10 Fetching\n" % jid, b""),
                    ("running", 10, "Building", b"compiling\n::stage Building\n", b""),
                    ("running", 60, "Building", b"::progress 60\n",
                     "  indented, trailing spaces  \n\ncaf\u00e9 <b>&amp;</b>\n".encode())]
        log_so_far = b""
        for step, (state, progress, stage, cause, after) in enumerate(expected, 1):
            stream.read_until(lambda e: is_job_event(e, jid, lambda j: state_of(j)
                                                     == (state, progress, stage)),
                              f"job {jid} to be {state} {progress} {stage}")
            assert log_bytes(stream.events).startswith(log_so_far + cause), \
                "the output that caused a change is sent before its job event"
            log_so_far += cause + after
            if log_bytes(stream.events) != log_so_far:
                stream.read_until(lambda e: log_bytes(stream.events) == log_so_far,
                                  f"the rest of step {step}'s output")
            assert log_bytes(stream.events) == log_so_far
            gate(env, jid, step).open()
        rest = stream.read_to_end()
        assert stream.ended_at is not None
        assert rest, "no event after the last gate"

    events = stream.events
    assert all(e.id is not None for e in events), "every event has an id"
    last = events[-1]
    assert last.name == "job" and last.json()["state"] == "succeeded", \
        f"the final job event is the last event: {events[-3:]}"
    assert_ids_follow_the_stream(events)

    log = full_log(env, jid)
    assert log.endswith(b"last line without newline")
    assert log_bytes(events) == rebuilt(log), "log events carry the whole output, in order, once"
    last_log = [e for e in events if e.name == "log"][-1]
    assert last_log.data.endswith("last line without newline")

    # A job event at every change: collapse repeats, then read the story.
    story = []
    for e in events:
        if e.name == "job":
            seen = state_of(e.json())
            if not story or story[-1] != seen:
                story.append(seen)
    assert story[-4:] == [("running", 10, "Fetching"), ("running", 10, "Building"),
                          ("running", 60, "Building"), ("succeeded", 60, "Building")], story
    assert all(s in (("queued", None, None), ("running", None, None)) for s in story[:-4]), story
    final = last.json()
    assert final["exit_code"] == 0 and final["finished_at"] is not None
    assert final == env.job(jid)


def test_last_event_id_resumes_without_repeating_output_or_job_events(env):
    jid = env.submit_ok("stepped")["id"]
    fetching = lambda j: state_of(j) == ("running", 10, "Fetching")  # noqa: E731
    building = lambda j: state_of(j) == ("running", 10, "Building")  # noqa: E731

    with EventStream(env, f"{BASE}/jobs/{jid}/events") as first:
        first.read_until(lambda e: is_job_event(e, jid, fetching), "progress 10")
    resume_id = first.events[-1].id
    change, offset = assert_ids_follow_the_stream(first.events)
    assert (change, offset) == split_id(first.events[-1])

    # Nothing new yet when it connects: all the resumed stream sends is what follows.
    with EventStream(env, f"{BASE}/jobs/{jid}/events", {"Last-Event-ID": resume_id}) as second:
        assert second.status == 200
        gate(env, jid, 1).open()
        second.read_until(lambda e: is_job_event(e, jid, building), "stage Building")
    assert log_bytes(second.events) == b"compiling\n::stage Building\n", \
        "the resumed stream sends the output from the offset of Last-Event-ID on, only"
    assert all(split_id(e)[0] > change for e in second.events if e.name == "job"), \
        f"the resumed stream repeated a job event older than {resume_id}: {second.events}"
    change, offset = assert_ids_follow_the_stream(second.events, change, offset)

    gate(env, jid, 2).open()
    gate(env, jid, 3).open()
    env.wait_finished(jid)
    with EventStream(env, f"{BASE}/jobs/{jid}/events",
                     {"Last-Event-ID": second.events[-1].id}) as third:
        third.read_to_end()
    assert third.events and third.events[-1].json()["state"] == "succeeded"
    assert_ids_follow_the_stream(third.events, change, offset)
    assert log_bytes(first.events + second.events + third.events) == rebuilt(full_log(env, jid))

    # Resuming at the final event: nothing to send, and the stream ends.
    with EventStream(env, f"{BASE}/jobs/{jid}/events",
                     {"Last-Event-ID": third.events[-1].id}) as after_end:
        assert after_end.read_to_end() == []


def test_a_finished_job_streams_its_whole_log_then_its_final_state(env):
    jid = env.submit_ok("stepped")["id"]
    for step in range(1, STEPS + 1):
        gate(env, jid, step).open()
    env.wait_finished(jid, timeout=30)
    with EventStream(env, f"{BASE}/jobs/{jid}/events") as stream:
        events = stream.read_to_end()
    assert [e.name for e in events][-1] == "job"
    assert [e.name for e in events].count("job") == 1, events
    assert events[-1].json() == env.job(jid)
    assert log_bytes(events) == rebuilt(full_log(env, jid))
    assert_ids_follow_the_stream(events)


def test_events_of_an_unknown_job_are_not_found_json(env):
    with EventStream(env, f"{BASE}/jobs/987654/events") as stream:
        assert stream.status == 404
        assert stream.headers.get("Content-Type", "").startswith("application/json")
        assert json.loads(stream.body)["error"] == "not_found"


def test_events_timeout_ends_the_stream_of_a_job_that_runs_longer(make_httpd):
    def prepare_short(env):
        prepare(env)
        env.server_config = "DeployEventsTimeout 1"
    short = make_httpd(setup=prepare_short, name="job-events-timeout")
    jid = short.submit_ok("stepped")["id"]
    short.wait_state(jid, "running")
    with EventStream(short, f"{BASE}/jobs/{jid}/events") as stream:
        stream.read_until(lambda e: is_job_event(e, jid, lambda j: j["progress"] == 10),
                          "progress 10")
        stream.read_to_end()
        lifetime = stream.ended_at - stream.opened_at
    assert 0.9 <= lifetime <= 10, f"a 1 s stream lived {lifetime:.2f} s"
    assert short.job(jid)["state"] == "running", "the stream ended on its time limit"
    for step in range(1, STEPS + 1):
        gate(short, jid, step).open()
    assert short.wait_finished(jid, timeout=30)["state"] == "succeeded"
