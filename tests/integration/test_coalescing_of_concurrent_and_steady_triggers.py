"""Coalescing under load: triggers sent all at once from many clients make one
job; a steady stream of triggers is cut into several jobs, each started no
later than DeployMaxWaitChangeNotification after its first trigger; with the
max wait equal to the quiet window the window is fixed from the first trigger."""

import threading
import time

from harness.httpd_env import target_block
from test_job_json_fields import parse_time
from test_job_parameters_never_reach_a_shell import read_environ

SLACK = 1.0        # seconds a started job may lag its planned start on a busy machine
ROUNDING = 0.002   # times in the JSON have milliseconds


def prepare_target(*directives):
    def prepare(env):
        script = env.write_script("env.sh", f"""#!/bin/bash
cat /proc/$$/environ > "{env.scratch}/job-$DEPLOY_JOB_ID.environ"
""")
        env.fragment = target_block("webapp", script, "DeployParam version ^[0-9]+$",
                                    "DeployConcurrency 0", *directives)
    return prepare


def job_environ(env, job_id):
    return read_environ(env.scratch_path(f"job-{job_id}.environ"))


def send_steadily(env, interval, duration):
    """A trigger every interval seconds for duration seconds; the answers, in order."""
    answers = []
    t0 = time.monotonic()
    for i in range(int(duration / interval) + 1):
        delay = t0 + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # paces the triggers; nothing is awaited
        answers.append(env.submit_ok("webapp", {"version": str(i)}))
    return answers


def group_by_job(answers):
    jobs = {}
    for a in answers:
        jobs.setdefault(a["id"], []).append(a)
    return jobs


def check_jobs_of_a_stream(env, answers, wait, max_wait):
    """Every trigger counted once, the latest parameters, the cap held."""
    jobs = group_by_job(answers)
    assert len(jobs) > 1, f"a stream longer than the max wait makes several jobs: {list(jobs)}"
    assert sorted(jobs) == list(jobs), "the jobs follow one another"
    previous_not_before = None
    for jid, joined in jobs.items():
        assert [a["requests"] for a in joined] == list(range(1, len(joined) + 1))
        assert joined[0].get("coalesced") is None
        assert all(a.get("coalesced") is True for a in joined[1:])
        first = parse_time(joined[0]["submitted_at"])
        assert all(parse_time(a["submitted_at"]) == first for a in joined)
        if previous_not_before is not None:
            assert first >= previous_not_before - ROUNDING, \
                "a new job only once the previous one left waiting"
        for a in joined:
            not_before = parse_time(a["not_before"])
            assert first + wait - ROUNDING <= not_before <= first + max_wait + ROUNDING, a
        previous_not_before = parse_time(joined[-1]["not_before"])

        done = env.wait_finished(jid, timeout=30)
        assert done["state"] == "succeeded", done
        assert done["requests"] == len(joined)
        assert done["params"] == joined[-1]["params"], "the latest parameters win"
        started = parse_time(done["started_at"])
        assert started >= previous_not_before - ROUNDING
        assert started <= first + max_wait + SLACK, \
            f"job {jid} started {started - first:.3f} s after its first trigger"
        environ = job_environ(env, jid)
        assert environ["DEPLOY_REQUESTS"] == str(len(joined))
        assert environ["DEPLOY_PARAM_VERSION"] == joined[-1]["params"]["version"]
    assert sum(len(j) for j in jobs.values()) == len(answers)
    assert sorted(j["id"] for j in env.jobs()) == sorted(jobs), "no other job was made"
    return jobs


def test_triggers_sent_at_once_from_many_clients_make_one_job(make_httpd):
    env = make_httpd(setup=prepare_target("DeployWaitChangeNotification 1500ms"),
                     name="burst")
    clients = 10
    barrier = threading.Barrier(clients)
    answers = [None] * clients

    def client(i):
        barrier.wait(timeout=30)
        answers[i] = env.submit("webapp", {"version": str(i)})
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(a is not None and a.status == 202 for a in answers), answers
    joined = [a.json() for a in answers]
    assert len({a["id"] for a in joined}) == 1, "the burst made one job"
    assert sorted(a["requests"] for a in joined) == list(range(1, clients + 1)), \
        "each trigger counted once"
    assert [a.get("coalesced") for a in joined].count(True) == clients - 1
    latest = max(joined, key=lambda a: a["requests"])

    done = env.wait_finished(latest["id"], timeout=30)
    assert done["state"] == "succeeded"
    assert done["requests"] == clients
    assert done["params"] == latest["params"], "the parameters of the last trigger joined"
    environ = job_environ(env, done["id"])
    assert environ["DEPLOY_REQUESTS"] == str(clients)
    assert environ["DEPLOY_PARAM_VERSION"] == latest["params"]["version"]


def test_a_steady_stream_is_cut_at_the_max_wait(make_httpd):
    env = make_httpd(setup=prepare_target("DeployWaitChangeNotification 400ms",
                                          "DeployMaxWaitChangeNotification 1s"),
                     name="steady")
    answers = send_steadily(env, 0.15, 2.5)
    check_jobs_of_a_stream(env, answers, wait=0.4, max_wait=1.0)


def test_max_wait_equal_to_the_wait_is_a_fixed_window_from_the_first_trigger(make_httpd):
    env = make_httpd(setup=prepare_target("DeployWaitChangeNotification 600ms",
                                          "DeployMaxWaitChangeNotification 600ms"),
                     name="fixed-window")
    answers = send_steadily(env, 0.1, 1.5)
    jobs = check_jobs_of_a_stream(env, answers, wait=0.6, max_wait=0.6)
    for joined in jobs.values():
        first = parse_time(joined[0]["submitted_at"])
        assert all(abs(parse_time(a["not_before"]) - (first + 0.6)) <= ROUNDING for a in joined), \
            "later triggers do not move a fixed window"
