"""apachectl graceful, restart and stop do not stop running jobs; their outcome
is recorded once httpd runs again, and ids keep increasing."""

import pytest

from httpd_env import Gate, gated_job_script, target_block


def prepare(env):
    env.gates = {}
    for name in ("graceful", "restart", "stop"):
        env.gates[name] = Gate(env, f"release-{name}")
    env.fragment = "".join(
        target_block(name, gated_job_script(env, f"{name}.sh", gate,
                                            before='echo "before"\n', after='echo "after"\n'))
        for name, gate in env.gates.items())


@pytest.mark.sanitize
@pytest.mark.parametrize("how", ["graceful", "restart"])
def test_running_job_survives_a_reload(make_httpd, how):
    env = make_httpd(setup=prepare)
    jid = env.submit_ok(how)["id"]
    env.wait_state(jid, "running")
    getattr(env, how)()
    assert env.job(jid)["state"] == "running"
    env.gates[how].open()
    done = env.wait_finished(jid)
    assert done["state"] == "succeeded", done
    assert done["exit_code"] == 0
    assert env.log(jid).body == b"before\nafter\n"
    later = env.submit_ok(how)["id"]
    assert later > jid, "ids increase across a reload"
    assert env.wait_finished(later)["state"] == "succeeded"


def test_job_running_through_stop_is_recorded_when_httpd_runs_again(make_httpd):
    env = make_httpd(setup=prepare)
    jid = env.submit_ok("stop")["id"]
    env.wait_state(jid, "running")
    assert env.stop() is None
    env.gates["stop"].open()
    env.start()
    done = env.wait_finished(jid, timeout=20)
    assert done["state"] == "succeeded", done
    assert env.log(jid).body == b"before\nafter\n"
    later = env.submit_ok("stop")["id"]
    assert later > jid, "ids increase across a stop"
    assert env.wait_finished(later)["state"] == "succeeded"
