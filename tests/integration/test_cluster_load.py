"""A cluster under load (SPEC "Several httpd nodes, one PostgreSQL"):
submissions spread over three nodes by concurrent clients; every 202 reaches a
final state, every id is unique, no job runs twice (each job appends its id to
a file), none is lost or left running, and the cluster's counters agree.

The reduced form runs in scripts/test; DEPLOY_CLUSTER_LOAD=20000 runs the full
20,000 submissions."""

import collections
import os
import shutil
import tempfile
import threading
import time

import pytest

from harness.client import Client
from harness.httpd_env import BASE, FINAL_STATES, target_block, wait_for
from harness.postgres import ThrowawayPostgres, make_cluster, postgres_available

pytestmark = pytest.mark.skipif(not postgres_available(), reason="no PostgreSQL server here")

SUBMISSIONS = int(os.environ.get("DEPLOY_CLUSTER_LOAD", "600"))
CLIENTS_PER_NODE = 4


def test_every_accepted_job_of_a_loaded_cluster_runs_exactly_once(make_httpd):
    shared = tempfile.mkdtemp(prefix="mod_deploy-cluster-load-", dir="/tmp")
    os.chmod(shared, 0o777)
    ran = os.path.join(shared, "ran")

    def setup(env):
        script = env.write_script("append.sh", f'#!/bin/sh\necho "$DEPLOY_JOB_ID" >> {ran}\n')
        env.fragment = target_block("load", script, "DeployConcurrency 0")
        env.server_config = ("DeployMaxRunning 8\nDeployQueueLimit 100000\n"
                             f"DeployHistory {SUBMISSIONS + 100}")

    try:
        with ThrowawayPostgres() as pg:
            nodes = make_cluster(make_httpd, pg, 3, setup=setup, lease=10)
            accepted, refused, lock = [], collections.Counter(), threading.Lock()
            todo = iter(range(SUBMISSIONS))

            def client(node):
                c = Client(node.port, timeout=60, keep_alive=True)
                while True:
                    with lock:
                        if next(todo, None) is None:
                            return
                    while True:
                        r = c.request("POST", f"{BASE}/targets/load", b"",
                                      {"Content-Length": "0"})
                        if r.status == 202:
                            with lock:
                                accepted.append(r.json()["id"])
                            break
                        with lock:
                            refused[r.status] += 1
                        assert r.status == 503, r
                        time.sleep(0.05)

            threads = [threading.Thread(target=client, args=(n,)) for n in nodes
                       for _ in range(CLIENTS_PER_NODE)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=1200)
            assert not any(t.is_alive() for t in threads), "clients still submitting"
            assert len(accepted) == SUBMISSIONS and len(set(accepted)) == SUBMISSIONS

            reader = Client(nodes[1].port, timeout=60)

            def all_final():
                states = reader.jobs_above(0)
                left = [j for j in accepted if states.get(j) not in FINAL_STATES]
                return states if not left else None
            states = wait_for(all_final, 60 + SUBMISSIONS / 20, "every accepted job to finish")
            counts = collections.Counter(states[j] for j in accepted)
            assert counts == {"succeeded": SUBMISSIONS}, counts
            with open(ran) as f:
                runs = collections.Counter(int(line) for line in f.read().split())
            assert set(runs) == set(accepted), "a job that never ran, or a run of no job"
            twice = [j for j, n in runs.items() if n > 1]
            assert not twice, f"jobs run twice: {twice[:10]}"
            # The counters are the cluster's, the same on every node.
            autos = [Client(n.port).auto() for n in nodes]
            for auto in autos:
                assert auto["SubmissionsAccepted"] == SUBMISSIONS, auto
                assert auto["Running"] == 0 and auto["Queued"] == 0, auto
            # Every node ran some of them.
            by_node = collections.Counter(
                reader.get(f"{BASE}/jobs/{j}").json()["node"]
                for j in accepted[:: max(1, SUBMISSIONS // 60)])
            assert len(by_node) >= 2, by_node
    finally:
        shutil.rmtree(shared, ignore_errors=True)
