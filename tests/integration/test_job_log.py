"""GET BASE/jobs/ID/log: text/plain output of stdout and stderr, ?offset=N,
X-Log-Size, and X-More-Data: true only while the job can still write."""

import pytest

from harness.httpd_env import BASE, Gate, gated_job_script, target_block


def prepare(env):
    env.gate = Gate(env, "release")
    script = gated_job_script(env, "log.sh", env.gate,
                              before='echo "line one"\necho "to stderr" >&2\n',
                              after='printf "line two\\n"\n')
    env.fragment = target_block("webapp", script)


@pytest.mark.sanitize
def test_log_is_served_with_offset_size_and_more_data(make_httpd):
    env = make_httpd(setup=prepare)
    jid = env.submit_ok("webapp")["id"]
    env.wait_job(jid, lambda j: b"to stderr\n" in env.log(jid).body, 15, "output in the log")

    r = env.log(jid)
    assert r.status == 200
    assert r.headers.get("Content-Type", "").startswith("text/plain")
    assert r.body == b"line one\nto stderr\n"
    assert r.headers.get("X-Log-Size") == str(len(r.body))
    assert r.headers.get("X-More-Data") == "true"

    r = env.log(jid, offset=5)
    assert r.status == 200
    assert r.body == b"one\nto stderr\n"
    assert r.headers.get("X-Log-Size") == str(len(b"line one\nto stderr\n"))

    env.gate.open()
    env.wait_finished(jid)
    r = env.log(jid)
    full = b"line one\nto stderr\nline two\n"
    assert r.status == 200
    assert r.body == full
    assert r.headers.get("X-Log-Size") == str(len(full))
    assert r.headers.get("X-More-Data") is None, "X-More-Data after the job finished"

    r = env.log(jid, offset=len(b"line one\nto stderr\n"))
    assert r.body == b"line two\n"
    assert r.headers.get("X-Log-Size") == str(len(full))
    assert env.log(jid, offset=len(full)).body == b""


def test_log_of_unknown_job_is_not_found_and_bad_offset_is_bad_request(make_httpd):
    env = make_httpd(setup=prepare)
    r = env.get(f"{BASE}/jobs/4242/log")
    assert r.status == 404 and r.json()["error"] == "not_found"
    env.gate.open()
    jid = env.submit_ok("webapp")["id"]
    env.wait_finished(jid)
    r = env.get(f"{BASE}/jobs/{jid}/log?offset=abc")
    assert r.status == 400 and r.json()["error"] == "bad_request"
