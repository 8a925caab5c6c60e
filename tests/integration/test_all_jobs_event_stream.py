"""GET BASE/events: an `event: job` for every job that changes, ids that only
grow, resume by Last-Event-ID or ?since=N (the header wins), and an end after
DeployEventsTimeout."""

import time

import pytest

from harness.event_stream import EventStream, is_final_job_event, is_job_event
from harness.httpd_env import BASE, FINAL_STATES, Gate, blocking_script_lines, target_block

LIFECYCLE = ("waiting", "queued", "running")


def prepare(env):
    held = env.write_script("held.sh", "#!/bin/bash\n" + blocking_script_lines(
        f"{env.scratch}/gate-$DEPLOY_JOB_ID", seconds=60))
    env.fragment = (target_block("ok", env.write_script("ok.sh", "#!/bin/sh\necho ok\n"))
                    + target_block("bad", env.write_script("bad.sh", "#!/bin/sh\nexit 4\n"))
                    + target_block("held", held)
                    + target_block("quiet", "/bin/true", "DeployWaitChangeNotification 1h",
                                   "DeployQueueTimeout 2h"))


def release(env, job_id):
    Gate(env, f"gate-{job_id}").open()


@pytest.fixture(scope="module")
def env(make_module_httpd):
    return make_module_httpd(setup=prepare, name="all-events")


def event_ids(events):
    ids = []
    for e in events:
        assert e.name == "job", f"only job events on BASE/events: {e}"
        assert e.id is not None and e.id.isdigit(), f"id is not an integer: {e}"
        ids.append(int(e.id))
    assert ids == sorted(set(ids)), f"ids only grow: {ids}"
    return ids


def read_until_final(stream, job_ids):
    pending = set(job_ids)

    def done(e):
        if is_final_job_event(e) and e.json()["id"] in pending:
            pending.discard(e.json()["id"])
        return not pending
    return stream.read_until(done, f"final states of jobs {sorted(job_ids)}")


def assert_states_in_order(events, job_id, final):
    states = [e.json()["state"] for e in events if is_job_event(e, job_id)]
    assert states, f"no event of job {job_id}"
    assert states[-1] == final, states
    rank = [LIFECYCLE.index(s) if s in LIFECYCLE else len(LIFECYCLE) for s in states]
    assert rank == sorted(rank) and states.count(final) <= 2, states


@pytest.mark.sanitize
def test_every_changing_job_is_sent_with_growing_ids(env):
    with EventStream(env, f"{BASE}/events") as stream:
        assert stream.status == 200
        assert stream.headers.get("Content-Type", "").startswith("text/event-stream")
        assert stream.headers.get("Cache-Control") == "no-store"
        ok = env.submit_ok("ok")["id"]
        bad = env.submit_ok("bad")["id"]
        events = read_until_final(stream, [ok, bad])
    event_ids(events)
    assert {e.json()["id"] for e in events} == {ok, bad}, \
        "a stream opened now sends only later changes"
    assert_states_in_order(events, ok, "succeeded")
    assert_states_in_order(events, bad, "failed")
    assert [e for e in events if is_job_event(e, bad)][-1].json() == env.job(bad)


@pytest.mark.sanitize
@pytest.mark.parametrize("how", ["last-event-id", "since"])
def test_resume_sends_each_job_changed_after_the_id_once_then_follows(env, how):
    with EventStream(env, f"{BASE}/events") as stream:
        held = env.submit_ok("held")["id"]
        seen = stream.read_until(lambda e: is_job_event(e, held, lambda j: j["state"] == "running"),
                                 f"job {held} running")
        first_id = event_ids(seen)[-1]
        # Both jobs change after first_id: one is held until now, one is new.
        bad = env.submit_ok("bad")["id"]
        release(env, held)
        read_until_final(stream, [held, bad])

    path, headers = f"{BASE}/events", {}
    if how == "since":
        path += f"?since={first_id}"
    else:
        headers["Last-Event-ID"] = str(first_id)
    with EventStream(env, path, headers) as resumed:
        replay = [resumed.next_event(), resumed.next_event()]
        # A job submitted now is the next event: nothing else was replayed.
        later = env.submit_ok("ok")["id"]
        follow = resumed.read_until(lambda e: is_final_job_event(e, later), f"job {later} final")
    ids = event_ids(replay + follow)
    assert all(i > first_id for i in ids)
    assert sorted((e.json()["id"], e.json()["state"]) for e in replay) == \
        [(held, "succeeded"), (bad, "failed")], replay
    assert {e.json()["id"] for e in follow} == {later}, follow


@pytest.mark.sanitize
def test_since_zero_sends_every_job_held_and_the_header_wins_over_since(env):
    jid = env.submit_ok("ok")["id"]
    env.wait_finished(jid)
    held = {j["id"]: j for j in env.jobs("?limit=1000")}
    with EventStream(env, f"{BASE}/events?since=0") as stream:
        replay = [stream.next_event() for _ in held]
    event_ids(replay)
    assert {e.json()["id"] for e in replay} == set(held)
    assert all(e.json() == held[e.json()["id"]] for e in replay)

    newest = max(int(e.id) for e in replay)
    with EventStream(env, f"{BASE}/events?since=0", {"Last-Event-ID": str(newest)}) as stream:
        later = env.submit_ok("ok")["id"]
        follow = stream.read_until(lambda e: is_final_job_event(e, later), f"job {later} final")
    assert {e.json()["id"] for e in follow} == {later}, "?since=0 was used despite Last-Event-ID"
    assert all(int(i) > newest for i in event_ids(follow))


BATCH_WINDOW = 0.1  # docs/api.md: a stream sends at most one batch per 100 ms under a burst


@pytest.mark.sanitize
def test_a_burst_of_changes_is_sent_in_batches_that_end_with_the_latest_state(env):
    """Every POST to a target inside its quiet window changes the waiting job
    (its `requests`): a watcher gets a few batches, not one event per POST,
    and the last event it gets is the job as it is at the end."""
    posts = 100
    with EventStream(env, f"{BASE}/events") as stream:
        started = time.monotonic()
        first = env.submit_ok("quiet")
        for _ in range(posts - 1):
            time.sleep(0.005)  # spreads the burst over several batch windows
            assert env.submit_ok("quiet")["id"] == first["id"], "the burst was not coalesced"
        burst = time.monotonic() - started
        events = stream.read_until(
            lambda e: is_job_event(e, first["id"], lambda j: j["requests"] == posts),
            f"job {first['id']} with {posts} requests")
    try:
        event_ids(events)
        mine = [e for e in events if is_job_event(e, first["id"])]
        counts = [e.json()["requests"] for e in mine]
        assert counts == sorted(counts), counts
        batches = 2 + burst / BATCH_WINDOW
        assert len(mine) <= batches, \
            f"{len(mine)} events for {posts} changes in {burst:.2f} s: {counts}"
        assert mine[-1].json() == env.job(first["id"])
    finally:
        assert env.request("POST", f"{BASE}/jobs/{first['id']}/cancel").status == 202


def test_events_timeout_ends_the_stream(make_httpd):
    def prepare_short(env):
        prepare(env)
        env.server_config = "DeployEventsTimeout 1"
    short = make_httpd(setup=prepare_short, name="all-events-timeout")
    held = short.submit_ok("held")["id"]
    with EventStream(short, f"{BASE}/events?since=0") as stream:
        events = stream.read_to_end()
        lifetime = stream.ended_at - stream.opened_at
    assert 0.9 <= lifetime <= 10, f"a 1 s stream lived {lifetime:.2f} s"
    assert any(is_job_event(e, held) for e in events)
    assert short.job(held)["state"] not in FINAL_STATES
    release(short, held)
    assert short.wait_finished(held)["state"] == "succeeded"


def test_open_streams_end_when_httpd_reloads_or_stops(make_httpd):
    env = make_httpd(setup=prepare, name="all-events-stop")
    with EventStream(env, f"{BASE}/events") as stream:
        env.graceful()
        reloaded = time.monotonic()
        stream.read_to_end()
        assert stream.ended_at - reloaded < 10, "a stream holds the old generation"
    with EventStream(env, f"{BASE}/events?since=0") as stream:
        jid = env.submit_ok("ok")["id"]
        stream.read_until(lambda e: is_final_job_event(e, jid), "a job after the reload")
        stopping = time.monotonic()
        assert env.stop() is None, "httpd had to be killed"
        assert time.monotonic() - stopping < 6, "a stream delayed the stop of httpd"
        stream.read_to_end()
