"""Idle event streams wait for a change of the job table instead of polling it:
httpd burns almost no CPU while streams are open and nothing happens, and every
stream still sees the next change at once (long before its 15 s heartbeat would)."""

import os
import time

from harness.event_stream import EventStream, is_final_job_event, is_job_event
from harness.httpd_env import APACHE2, BASE, Gate, all_pids, gated_job_script, target_block
from harness.processes import cpu_seconds

IDLE_SECONDS = 2.0
CPU_BOUND_SECONDS = 0.5
NOTICE_BOUND_SECONDS = 5.0


def httpd_pids(env):
    """The apache2 processes of this server: parent, children, scheduler."""
    exe = os.path.realpath(APACHE2)
    pids = []
    for pid in all_pids():
        try:
            if os.readlink(f"/proc/{pid}/exe") != exe:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if env.dir.encode() in f.read():
                    pids.append(pid)
        except OSError:
            pass
    return pids


def test_idle_streams_use_no_cpu_and_notice_the_next_change_at_once(make_httpd):
    def prepare(env):
        env.gate = Gate(env, "release")
        env.fragment = target_block("held", gated_job_script(env, "held.sh", env.gate))
    env = make_httpd(setup=prepare, name="idle-streams")
    jid = env.submit_ok("held")["id"]
    env.wait_state(jid, "running")

    streams = [EventStream(env, f"{BASE}/events") for _ in range(3)]
    streams += [EventStream(env, f"{BASE}/jobs/{jid}/events") for _ in range(2)]
    try:
        for s in streams[3:]:
            s.read_until(lambda e: is_job_event(e, jid, lambda j: j["state"] == "running"),
                         "the running job")
        pids = httpd_pids(env)
        assert len(pids) >= 2, f"httpd processes of {env.dir}: {pids}"
        before = cpu_seconds(pids)
        time.sleep(IDLE_SECONDS)  # the measured idle period, not a wait for a result
        after = cpu_seconds(pids)
        used = sum(after[p] - before[p] for p in after if p in before)
        assert used < CPU_BOUND_SECONDS, \
            f"httpd used {used:.2f} s of CPU in {IDLE_SECONDS} s with 5 idle streams"

        env.gate.open()
        released = time.monotonic()
        for s in streams:
            event = s.read_until(lambda e: is_final_job_event(e, jid), "the final state")[-1]
            assert event.received_at - released < NOTICE_BOUND_SECONDS, \
                f"{s.path} saw the change {event.received_at - released:.2f} s late"
    finally:
        for s in streams:
            s.close()
    assert env.job(jid)["state"] == "succeeded"
