"""GET BASE/targets and GET BASE/jobs with ?target ?state ?limit ?before,
newest first."""

import pytest

from harness.httpd_env import BASE, target_block


def prepare(env):
    ok = env.write_script("ok.sh", "#!/bin/sh\nexit 0\n")
    fail = env.write_script("fail.sh", "#!/bin/sh\nexit 1\n")
    env.fragment = (target_block("alpha", ok, r"DeployParam version ^[0-9.]+$", "DeployTimeout 2mi")
                    + target_block("beta", fail))


@pytest.fixture(scope="module")
def env(make_module_httpd):
    env = make_module_httpd(setup=prepare)
    env.ids = {"alpha": [], "beta": []}
    for target in ("alpha", "beta", "alpha", "alpha", "beta"):
        jid = env.submit_ok(target, {"version": "1"} if target == "alpha" else None)["id"]
        env.ids[target].append(jid)
        env.wait_finished(jid)
    env.all_ids = sorted(env.ids["alpha"] + env.ids["beta"], reverse=True)
    return env


def find_target(targets, name):
    for t in targets:
        if t.get("name", t.get("target")) == name:
            return t
    raise AssertionError(f"target {name} not in {targets}")


def embedded_job_ids(value):
    """Ids of job objects nested anywhere in value."""
    found = []
    if isinstance(value, dict):
        if "id" in value and "state" in value:
            found.append(value["id"])
        for v in value.values():
            found += embedded_job_ids(v)
    elif isinstance(value, list):
        for v in value:
            found += embedded_job_ids(v)
    return found


@pytest.mark.sanitize
def test_targets_lists_each_target_with_its_latest_job(env):
    r = env.get(f"{BASE}/targets")
    assert r.status == 200
    assert r.headers.get("Content-Type", "").startswith("application/json")
    targets = r.json()
    assert isinstance(targets, list) and len(targets) == 2
    alpha = find_target(targets, "alpha")
    beta = find_target(targets, "beta")
    assert embedded_job_ids(alpha) == [env.ids["alpha"][-1]]
    assert embedded_job_ids(beta) == [env.ids["beta"][-1]]
    assert "version" in str(alpha), "alpha's settings (its DeployParam) are not shown"


@pytest.mark.sanitize
def test_jobs_are_listed_newest_first(env):
    r = env.get(f"{BASE}/jobs")
    assert r.status == 200
    assert r.headers.get("Content-Type", "").startswith("application/json")
    assert [j["id"] for j in r.json()] == env.all_ids


def test_jobs_filtered_by_target(env):
    assert [j["id"] for j in env.jobs("?target=alpha")] == sorted(env.ids["alpha"], reverse=True)


def test_jobs_filtered_by_state(env):
    assert [j["id"] for j in env.jobs("?state=failed")] == sorted(env.ids["beta"], reverse=True)
    assert [j["id"] for j in env.jobs("?state=succeeded")] == sorted(env.ids["alpha"], reverse=True)
    assert env.jobs("?state=running") == []


def test_jobs_limited(env):
    assert [j["id"] for j in env.jobs("?limit=2")] == env.all_ids[:2]
    assert [j["id"] for j in env.jobs("?limit=1&target=beta")] == [env.ids["beta"][-1]]


def test_jobs_before_an_id(env):
    pivot = env.all_ids[1]
    assert [j["id"] for j in env.jobs(f"?before={pivot}")] == env.all_ids[2:]
    assert [j["id"] for j in env.jobs(f"?before={pivot}&limit=1")] == env.all_ids[2:3]


def test_jobs_with_malformed_query_is_bad_request(env):
    for query in ("?limit=abc", "?state=sleeping", "?before=x"):
        r = env.get(f"{BASE}/jobs{query}")
        assert r.status == 400, query
        assert r.json()["error"] == "bad_request"
