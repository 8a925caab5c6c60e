"""A damaged DeployStateDir does not keep httpd from starting: a truncated
jobs.table, garbage over a record or over the header, a missing log. httpd
starts, warns naming the file, keeps every job that can still be read, and new
submissions work with ids that go on."""

import os
import re

import pytest

from harness.httpd_env import BASE, target_block

HEADER_SIZE = 65536
RECORD_SIZE = 4096
JOBS = 4


def prepare(env):
    script = env.write_script("quick.sh", '#!/bin/bash\necho "job $DEPLOY_JOB_ID"\n')
    env.fragment = target_block("quick", script)


def run_jobs(env, n):
    ids = [env.submit_ok("quick", {})["id"] for _ in range(n)]
    return [env.wait_finished(jid) for jid in ids]


def record_offset(env, table, job_id):
    with open(table, "rb") as f:
        f.seek(16)
        capacity = int.from_bytes(f.read(4), "little")
    assert capacity > JOBS
    return HEADER_SIZE + (job_id % capacity) * RECORD_SIZE


def overwrite(path, offset, size):
    garbage = (b"\xde\xad\xbe\xef garbage " * (size // 16 + 1))[:size]
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(garbage)


def truncate_in_a_record(env, table, ids):
    """Cuts the file in the middle of the last job's record."""
    os.truncate(table, record_offset(env, table, ids[-1]) + RECORD_SIZE // 2)
    return ids[:-1], r"job table .*jobs\.table is truncated"


def garbage_over_a_record(env, table, ids):
    victim = ids[1]
    overwrite(table, record_offset(env, table, victim) + 100, 300)
    return [j for j in ids if j != victim], r"job table .*jobs\.table: dropped 1 damaged record"


def garbage_over_the_header(env, table, ids):
    overwrite(table, 0, 4096)
    return ids, r"job table .*jobs\.table has an invalid header"


def header_cut_short(env, table, ids):
    """Nothing but part of the header is left: no job can be read."""
    os.truncate(table, 1000)
    return [], r"job table .*jobs\.table has an invalid header"


DAMAGES = [truncate_in_a_record, garbage_over_a_record, garbage_over_the_header,
           header_cut_short]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.__name__ for d in DAMAGES])
def test_damaged_table(make_httpd, damage):
    env = make_httpd(setup=prepare)
    before = {j["id"]: j for j in run_jobs(env, JOBS)}
    ids = sorted(before)
    assert env.stop() is None

    table = os.path.join(env.state_dir, "jobs.table")
    kept, warning = damage(env, table, ids)
    env.expect_error(warning)  # a warning, declared all the same

    rc, out = env.configtest(env.fragment, env.server_config)
    assert rc == 0, out
    log_offset = env.error_log_size()
    env.start()
    assert re.search(r"\[[\w:]*warn\] .*mod_deploy: " + warning, env.error_log_text(log_offset)), \
        f"no warning naming {table}:\n{env.error_log_tail()}"

    listed = env.jobs()
    assert [j["id"] for j in listed] == sorted(kept, reverse=True), listed
    for jid in kept:
        assert env.job(jid) == before[jid], "a readable job is kept as it was"
        assert env.log(jid).body == f"job {jid}\n".encode()
    for jid in set(ids) - set(kept):
        assert env.get(f"{BASE}/jobs/{jid}").status == 404

    # New submissions work, with ids after every id seen before (logs included).
    new = run_jobs(env, 2)
    assert all(j["state"] == "succeeded" for j in new), new
    assert min(j["id"] for j in new) > max(ids)
    for j in new:
        assert env.log(j["id"]).body == f"job {j['id']}\n".encode()

    # The repaired table is good for the next start: no more warnings.
    assert env.stop() is None
    log_offset = env.error_log_size()
    env.start()
    assert "mod_deploy: job table" not in env.error_log_text(log_offset)
    assert [j["id"] for j in env.jobs()] == sorted(kept + [j["id"] for j in new], reverse=True)


def test_missing_log_of_a_finished_job(make_httpd):
    env = make_httpd(setup=prepare)
    before = {j["id"]: j for j in run_jobs(env, 3)}
    ids = sorted(before)
    assert env.stop() is None
    os.unlink(os.path.join(env.state_dir, "logs", f"{ids[1]}.log"))

    rc, out = env.configtest(env.fragment, env.server_config)
    assert rc == 0, out
    env.start()

    assert [j["id"] for j in env.jobs()] == sorted(ids, reverse=True)
    assert env.job(ids[1]) == before[ids[1]]
    r = env.log(ids[1])
    assert r.status == 200, r
    assert r.headers.get("X-Log-Size") == "0"
    assert r.body == b""
    assert r.headers.get("X-More-Data") is None
    r = env.log(ids[1], offset=0)
    assert (r.status, r.body) == (200, b"")
    for jid in (ids[0], ids[2]):
        assert env.log(jid).body == f"job {jid}\n".encode()

    new = run_jobs(env, 1)[0]
    assert new["state"] == "succeeded" and new["id"] > max(ids)
