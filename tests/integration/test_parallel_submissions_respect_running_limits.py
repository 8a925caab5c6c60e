"""Submissions from many clients at once, served by different httpd processes
and threads, never run more than DeployMaxRunning jobs in total nor more than
DeployConcurrency of one target; ready jobs start oldest first, passing over
those whose target is full.

Each job records when it starts and ends; the jobs that get a slot first stay
blocked on a gate, so the limits are reached for certain, then every job runs."""

import os
import threading

import pytest

from harness.httpd_env import Gate, blocking_script_lines, target_block, wait_for

CLIENTS = 16


def timed_script(env, gate_path):
    return env.write_script("timed.sh", f"""#!/bin/bash
date +%s%N >> "{env.scratch}/$DEPLOY_JOB_ID.start"
""" + blocking_script_lines(gate_path, seconds=90) + f"""
date +%s%N >> "{env.scratch}/$DEPLOY_JOB_ID.end"
""")


def with_pid_log(fragment):
    """Logs the pid of the httpd process that served each request."""
    return fragment + ('LogFormat "%P %m %U %>s" servedby\n'
                       'CustomLog "logs/served_by" servedby\n')


def serving_pids(env, method="POST"):
    with open(env.path("logs", "served_by")) as f:
        return {line.split()[0] for line in f if line.split()[1] == method}


def submit_all_at_once(env, targets):
    """One thread and one connection per submission, released together;
    returns {job id: target}."""
    barrier = threading.Barrier(len(targets))
    answers = [None] * len(targets)

    def client(i):
        barrier.wait(timeout=30)
        answers[i] = env.submit(targets[i])
    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(a is not None and a.status == 202 for a in answers), answers
    jobs = {a.json()["id"]: t for a, t in zip(answers, targets)}
    assert len(jobs) == len(targets), "each submission made its own job"
    return jobs


def first_to_start(jobs, max_running, concurrency):
    """The jobs that get a slot while none ends: oldest first, full targets passed over."""
    running = []
    for jid in sorted(jobs):
        limit = concurrency[jobs[jid]]
        same_target = sum(1 for r in running if jobs[r] == jobs[jid])
        if len(running) < max_running and (limit == 0 or same_target < limit):
            running.append(jid)
    return running


def running_ids(env):
    return sorted(j["id"] for j in env.jobs("?state=running&limit=1000"))


def recorded(env, jid, what):
    """The time job jid recorded at its start or end; fails when it ran twice."""
    with open(env.scratch_path(f"{jid}.{what}")) as f:
        lines = f.read().split()
    assert len(lines) == 1, f"job {jid} recorded its {what} {len(lines)} times: it ran twice"
    return int(lines[0])


def intervals(env, ids):
    return {j: (recorded(env, j, "start"), recorded(env, j, "end")) for j in sorted(ids)}


def peak_overlap(env, ids):
    """Most jobs of ids running at one instant, from their recorded start and end."""
    events = []
    for jid in ids:
        events += [(recorded(env, jid, "start"), 1), (recorded(env, jid, "end"), -1)]
    running = peak = 0
    for _, delta in sorted(events):  # an end sorts before a start at the same instant
        running += delta
        peak = max(peak, running)
    return peak


def run_parallel(make_httpd, mpm, max_running, concurrency, name):
    def prepare(env):
        env.gate = Gate(env, "release")
        script = timed_script(env, env.gate.path)
        env.server_config = f"DeployMaxRunning {max_running}"
        env.fragment = with_pid_log("".join(
            target_block(t, script, f"DeployConcurrency {c}") for t, c in concurrency.items()))
        if mpm == "prefork":  # enough idle children to take the clients together
            env.fragment += "StartServers 4\nMinSpareServers 4\nMaxSpareServers 8\n"
    env = make_httpd(setup=prepare, mpm=mpm, name=name)
    names = sorted(concurrency)
    jobs = submit_all_at_once(env, [names[i % len(names)] for i in range(CLIENTS)])

    expected = first_to_start(jobs, max_running, concurrency)
    wait_for(lambda: running_ids(env) == expected, 30,
             f"jobs {expected} (oldest first, full targets passed over) to run")
    wait_for(lambda: all(os.path.exists(env.scratch_path(f"{j}.start")) for j in expected), 30,
             "the running jobs to record their start")
    env.gate.open()
    for jid in jobs:
        assert env.wait_finished(jid, timeout=60)["state"] == "succeeded"

    assert peak_overlap(env, jobs) == max_running, \
        f"DeployMaxRunning {max_running} exceeded or never reached: {intervals(env, jobs)}"
    for target, limit in concurrency.items():
        ids = [j for j, t in jobs.items() if t == target]
        if limit:
            assert peak_overlap(env, ids) <= limit, f"DeployConcurrency {limit} of {target}"
    return env, jobs, expected


@pytest.mark.parametrize("mpm", ["prefork", "event"])
def test_parallel_clients_never_exceed_max_running_or_target_concurrency(make_httpd, mpm):
    env, _, _ = run_parallel(make_httpd, mpm, 3, {"a": 2, "b": 1, "c": 0}, "parallel")
    if mpm == "prefork":
        assert len(serving_pids(env)) >= 2, "the submissions were served by several children"


@pytest.mark.parametrize("mpm", ["prefork", "event"])
def test_concurrency_zero_leaves_only_the_global_limit(make_httpd, mpm):
    env, jobs, first = run_parallel(make_httpd, mpm, 4, {"x": 0, "y": 0}, "unlimited")
    assert first == sorted(jobs)[:4], "without a per-target limit the four oldest run"
    assert max(sum(1 for j in first if jobs[j] == t) for t in ("x", "y")) >= 2


def test_a_freed_slot_goes_to_the_oldest_job_whose_target_has_room(make_httpd):
    def prepare(env):
        script = timed_script(env, f"{env.scratch}/gate-$DEPLOY_TARGET")
        env.server_config = "DeployMaxRunning 2"
        env.fragment = "".join(target_block(t, script) for t in ("A", "B", "C"))
    env = make_httpd(setup=prepare, name="oldest-first")
    a1 = env.submit_ok("A")["id"]
    b1 = env.submit_ok("B")["id"]
    wait_for(lambda: running_ids(env) == [a1, b1], 30, "A#1 and B#1 running")
    a2 = env.submit_ok("A")["id"]
    b2 = env.submit_ok("B")["id"]
    c1 = env.submit_ok("C")["id"]
    assert {env.job(j)["state"] for j in (a2, b2, c1)} == {"queued"}

    Gate(env, "gate-B").open()
    env.wait_state(c1, "running", timeout=30)
    assert env.job(a2)["state"] == "queued", "A is full: A#2 waits for A#1"
    assert env.job(b2)["state"] == "succeeded"
    Gate(env, "gate-A").open()
    Gate(env, "gate-C").open()
    for jid in (a1, a2, b1, b2, c1):
        assert env.wait_finished(jid, timeout=30)["state"] == "succeeded"

    assert recorded(env, b1, "end") <= recorded(env, b2, "start"), "B#2 after B#1"
    assert recorded(env, b2, "end") <= recorded(env, c1, "start"), \
        "the freed slot went to B#2, older than C#1, passing over A#2"
    assert recorded(env, b2, "start") < recorded(env, a2, "start")
    assert recorded(env, a1, "end") <= recorded(env, a2, "start"), "DeployConcurrency 1 of A"
    assert peak_overlap(env, [a1, a2, b1, b2, c1]) <= 2
