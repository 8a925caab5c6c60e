"""Job ids are unique and increasing, also across restarts of httpd (SPEC, "A
job"): across stop/start, and even when jobs.table is lost, ids go on after the
highest id of a log in DeployStateDir/logs."""

import os

from harness.httpd_env import target_block


def prepare(env):
    script = env.write_script("quick.sh", '#!/bin/bash\necho "job $DEPLOY_JOB_ID"\n')
    env.fragment = target_block("quick", script)


def run_one(env):
    jid = env.submit_ok("quick")["id"]
    assert env.wait_finished(jid)["state"] == "succeeded"
    return jid


def test_ids_increase_across_stop_and_start(make_httpd):
    env = make_httpd(setup=prepare)
    ids = [run_one(env), run_one(env)]
    for _ in range(2):
        assert env.stop() is None
        env.start()
        ids.append(run_one(env))
    assert ids == sorted(set(ids)), ids
    assert [j["id"] for j in env.jobs()] == sorted(ids, reverse=True), "history survives"


def test_ids_go_on_after_the_highest_log_when_the_table_is_lost(make_httpd):
    env = make_httpd(setup=prepare)
    ids = [run_one(env) for _ in range(3)]
    table = os.path.join(env.state_dir, "jobs.table")

    assert env.stop() is None
    os.unlink(table)
    env.start()
    after_loss = run_one(env)
    assert after_loss > max(ids), f"id {after_loss} after losing the table; logs had {ids}"
    assert env.log(after_loss).body == f"job {after_loss}\n".encode(), "a fresh log, not appended"

    # Only the highest log counts: older logs removed as well change nothing.
    assert env.stop() is None
    os.unlink(table)
    for jid in ids:
        os.unlink(os.path.join(env.state_dir, "logs", f"{jid}.log"))
    env.start()
    again = run_one(env)
    assert again > after_loss
    assert env.log(again).body == f"job {again}\n".encode()
