"""DeployNodeName, DeployLease and DeployStore (SPEC "Several httpd nodes, one
PostgreSQL"): `node` in the job JSON (null before the job starts, the
configured name once it runs, and after), the DeployNode… lines of ?auto and
the `node` label in /metrics; configtest refuses bad values and never repeats
a DeployStore connection string."""

import pytest

from harness.httpd_env import BASE, Gate, gated_job_script, target_block
from harness.status import auto_status
from test_status_auto_and_metrics import metrics, sample

NODE = "web-1.example_a"
SECRET = "password=hunter2-xyzzy"


def prepare(env):
    env.gate = Gate(env, "release")
    env.server_config = f"DeployMaxRunning 1\nDeployNodeName {NODE}\nDeployLease 30s"
    env.fragment = target_block("blocker", gated_job_script(env, "blocker.sh", env.gate),
                                "DeployConcurrency 0")


def test_a_job_names_its_node_once_it_runs_and_the_status_pages_mark_the_node(make_httpd):
    env = make_httpd(setup=prepare, name="node")
    first = env.submit_ok("blocker")
    assert first["node"] is None
    env.wait_state(first["id"], "running")
    second = env.submit_ok("blocker")["id"]
    assert env.job(second)["state"] == "queued"
    assert env.job(second)["node"] is None, "a queued job has no node"
    assert env.job(first["id"])["node"] == NODE
    listed = {j["id"]: j for j in env.jobs()}
    assert listed[first["id"]]["node"] == NODE and listed[second]["node"] is None

    auto = auto_status(env)
    assert auto["DeployNodeName"] == NODE
    assert auto["DeployNodeRunning"] == 1 and auto["Running"] == 1
    m = metrics(env)
    assert sample(m, "deploy_node_jobs_running", node=NODE) == 1
    assert sample(m, "deploy_max_running", node=NODE) == 1
    assert m["deploy_node_jobs_running"]["type"] == "gauge"

    env.gate.open()
    for jid in (first["id"], second):
        done = env.wait_finished(jid)
        assert done["state"] == "succeeded" and done["node"] == NODE, done
    auto = auto_status(env)
    assert auto["DeployNodeRunning"] == 0
    assert sample(metrics(env), "deploy_node_jobs_running", node=NODE) == 0


@pytest.fixture(scope="module")
def configtest_env(make_module_httpd):
    return make_module_httpd(start=False, name="node-configtest")


BAD = [
    # (id, server-level config, words the message must name)
    ("node name with a slash", "DeployNodeName web/1", ["DeployNodeName", "web/1"]),
    ("node name starting with a dot", "DeployNodeName .web", ["DeployNodeName", ".web"]),
    ("node name too long", "DeployNodeName " + "n" * 65, ["DeployNodeName", "n" * 65]),
    ("lease zero", "DeployLease 0", ["DeployLease", "'0'", "1s to 1h"]),
    ("lease too long", "DeployLease 2h", ["DeployLease", "2h"]),
    ("lease not a duration", "DeployLease soon", ["DeployLease", "soon"]),
    ("unknown store", "DeployStore redis", ["DeployStore", "redis"]),
    ("postgresql without conninfo", "DeployStore postgresql", ["DeployStore", "connection string"]),
    ("file with an argument", "DeployStore file /tmp/x", ["DeployStore file"]),
]


@pytest.mark.parametrize("config,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_configtest_refuses_bad_cluster_values(configtest_env, config, words):
    rc, out = configtest_env.configtest(target_block("webapp", "/bin/true"), config)
    assert rc != 0, out
    for word in words:
        assert word in out, f"{word!r} not in:\n{out}"


def test_configtest_accepts_the_cluster_directives_without_connecting(configtest_env):
    # Port 1 on 127.0.0.1: nothing listens; configtest must not try.
    conninfo = f"host=127.0.0.1 port=1 dbname=deploy connect_timeout=1 {SECRET}"
    rc, out = configtest_env.configtest(
        target_block("webapp", "/bin/true"),
        f"DeployStore postgresql \"{conninfo}\"\nDeployNodeName node-2\nDeployLease 1")
    assert rc == 0 and "Syntax OK" in out, out
    assert SECRET not in out
    rc, out = configtest_env.configtest(target_block("webapp", "/bin/true"),
                                        "DeployStore file\nDeployLease 1h")
    assert rc == 0, out


def test_a_bad_conninfo_is_refused_without_being_shown(configtest_env):
    rc, out = configtest_env.configtest(target_block("webapp", "/bin/true"),
                                        f"DeployStore postgresql \"{SECRET}\x01\"")
    assert rc != 0 and "DeployStore" in out, out
    assert "hunter2" not in out


def test_an_unreachable_database_is_store_unavailable_and_the_conninfo_never_shows(make_httpd):
    """httpd starts although nothing answers at the conninfo; every answer is
    503 store_unavailable, and neither the answers, the status pages nor the
    error_log repeat the conninfo (its password above all)."""
    def setup(env):
        env.server_config = f"DeployStore postgresql \"host=127.0.0.1 port=1 {SECRET}\""
        env.fragment = target_block("webapp", "/bin/true")
    env = make_httpd(setup=setup, name="node-pg")
    env.expect_error(r"PostgreSQL|store_unavailable|connect")
    answers = [env.submit("webapp"), env.get(f"{BASE}/jobs/1"), env.get(f"{BASE}/jobs"),
               env.get(f"{BASE}/?auto"), env.get(f"{BASE}/metrics")]
    for r in answers[:3]:
        assert r.status == 503 and r.json()["error"] == "store_unavailable", r
        assert r.headers.get("Retry-After")
    for r in answers:
        assert b"hunter2" not in r.body and b"port=1" not in r.body, r
    assert "hunter2" not in env.error_log_text()
