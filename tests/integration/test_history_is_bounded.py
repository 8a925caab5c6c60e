"""DeployHistory N: only the N newest finished jobs are kept, and the logs of
dropped jobs are emptied (kept as spares for later jobs); a change of N between
restarts keeps what fits."""

import os

from harness.httpd_env import target_block, wait_for


def prepare(env, history=3):
    script = env.write_script("quick.sh", '#!/bin/bash\necho "job $DEPLOY_JOB_ID"\n')
    env.fragment = target_block("quick", script)
    env.server_config = f"DeployHistory {history}"


def logged_ids(env):
    names = os.listdir(os.path.join(env.state_dir, "logs"))
    return sorted(int(n[:-4]) for n in names if n.endswith(".log"))


def listed_ids(env):
    return [j["id"] for j in env.jobs()]


def run_jobs(env, n):
    ids = [env.submit_ok("quick")["id"] for _ in range(n)]
    for jid in ids:
        assert env.wait_finished(jid, timeout=30)["state"] == "succeeded"
    return ids


def wait_history(env, ids, what):
    """Waits until GET /jobs lists exactly ids (newest first) and only their logs remain."""
    want = sorted(ids, reverse=True)
    wait_for(lambda: listed_ids(env) == want and logged_ids(env) == sorted(ids), 15,
             f"{what}: jobs {want} listed and logged (listed {listed_ids(env)}, "
             f"logs {logged_ids(env)})")


def test_only_the_newest_jobs_and_their_logs_are_kept(make_httpd):
    env = make_httpd(setup=prepare)
    ids = run_jobs(env, 6)
    wait_history(env, ids[-3:], "DeployHistory 3")
    for jid in ids[:3]:
        assert env.get(f"/deploy/jobs/{jid}").status == 404
        assert env.get(f"/deploy/jobs/{jid}/log").status == 404
    for jid in ids[-3:]:
        assert env.log(jid).body == f"job {jid}\n".encode()
    # Nothing a dropped job wrote stays on disk.
    logs = os.path.join(env.state_dir, "logs")
    spares = [n for n in os.listdir(logs) if n.startswith(".spare-")]
    assert spares, "the dropped jobs' logs are kept, emptied, for later jobs"
    assert all(os.path.getsize(os.path.join(logs, n)) == 0 for n in spares)


def test_changing_the_history_between_restarts(make_httpd):
    env = make_httpd(setup=prepare)
    ids = run_jobs(env, 6)
    wait_history(env, ids[-3:], "DeployHistory 3")

    # 3 -> 10 at a graceful restart: what was there stays, and more is kept.
    env.server_config = "DeployHistory 10"
    env.graceful()
    wait_history(env, ids[-3:], "DeployHistory 3 -> 10")
    ids += run_jobs(env, 2)
    wait_history(env, ids[-5:], "DeployHistory 10 after two more jobs")

    # 10 -> 2 across stop and start: the newest two stay, and jobs still run.
    assert env.stop() is None
    env.server_config = "DeployHistory 2"
    env.start()
    wait_history(env, ids[-2:], "DeployHistory 10 -> 2")
    ids += run_jobs(env, 1)
    wait_history(env, ids[-2:], "DeployHistory 2 after one more job")
    assert ids == sorted(ids)
    for jid in ids[-2:]:
        assert env.log(jid).body == f"job {jid}\n".encode()

    # And back up again with a graceful restart: nothing comes back, nothing is lost.
    env.server_config = "DeployHistory 3"
    env.graceful()
    wait_history(env, ids[-2:], "DeployHistory 2 -> 3")
    ids += run_jobs(env, 2)
    wait_history(env, ids[-3:], "DeployHistory 3 after two more jobs")
