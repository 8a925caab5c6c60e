"""With mod_status loaded, /server-status has a mod_deploy section (jobs
waiting, queued and running, each running job with its target, progress and
stage, everything from outside escaped), and /server-status?auto the lines
DeployWaiting, DeployQueued, DeployRunning, DeployAccepted, DeploySucceeded and
DeployFailed, through mod_status' status hook."""

import pytest

from harness.httpd_env import DEBIAN_MODULES_DIR, Gate, gated_job_script, target_block

HOSTILE_STAGE = "<script>alert(1)</script> & co"


def prepare(env):
    gate = Gate(env, "gate")
    env.gate = gate
    held = gated_job_script(env, "held.sh", gate,
                            before=f"echo '::progress 40 {HOSTILE_STAGE}'\n")
    quick = env.write_script("quick.sh", "#!/bin/sh\necho ok\n")
    failing = env.write_script("failing.sh", "#!/bin/sh\nexit 3\n")
    env.fragment = (target_block("held", held, "DeployConcurrency 1", "DeployTimeout 2mi")
                    + target_block("quick", quick) + target_block("failing", failing)
                    + target_block("quiet", quick, "DeployWaitChangeNotification 10mi")
                    + f"LoadModule status_module {DEBIAN_MODULES_DIR}/mod_status.so\n"
                    "<Location /server-status>\n    SetHandler server-status\n</Location>\n")


def auto_lines(env):
    r = env.get("/server-status?auto")
    assert r.status == 200, r
    values = {}
    for line in r.text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.startswith("Deploy"):
            values[key] = int(value)
    return values


@pytest.mark.sanitize
def test_server_status_shows_the_jobs_and_auto_has_the_deploy_lines(make_httpd):
    env = make_httpd(setup=prepare, name="server-status")
    assert env.wait_finished(env.submit_ok("quick")["id"])["state"] == "succeeded"
    assert env.wait_finished(env.submit_ok("failing")["id"])["state"] == "failed"
    running = env.submit_ok("held")["id"]
    queued = env.submit_ok("held")["id"]
    env.submit_ok("quiet")
    env.wait_job(running, lambda j: j["progress"] == 40, 15, "the held job to report progress")
    env.wait_state(queued, "queued")

    assert auto_lines(env) == {"DeployWaiting": 1, "DeployQueued": 1, "DeployRunning": 1,
                               "DeployAccepted": 5, "DeploySucceeded": 1, "DeployFailed": 1}

    page = env.get("/server-status").text
    assert "mod_deploy" in page
    assert "Jobs waiting: 1, queued: 1, running: 1" in page
    assert f"<td>{running}</td><td>held</td><td>40%</td>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "<script>" not in page, "a stage is shown as text, never as markup"

    env.gate.open()
    env.wait_finished(running, timeout=30)
    env.wait_finished(queued, timeout=30)
    lines = auto_lines(env)
    assert lines["DeployRunning"] == 0 and lines["DeploySucceeded"] == 3, lines


def test_without_mod_status_nothing_changes(make_httpd):
    def plain(env):
        env.fragment = target_block("quick", env.write_script("quick.sh", "#!/bin/sh\n"))
    env = make_httpd(setup=plain, name="no-status")
    assert env.get("/server-status").status == 404
    assert env.wait_finished(env.submit_ok("quick")["id"])["state"] == "succeeded"
