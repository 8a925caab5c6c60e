"""`::progress N [stage]` and `::stage TEXT` lines set the job's progress and
stage while it runs, and stay in the log."""

import pytest

from harness.httpd_env import Gate, blocking_script_lines, target_block


def prepare(env):
    env.gates = [Gate(env, f"step{i}") for i in range(3)]
    g = [blocking_script_lines(gate.path) for gate in env.gates]
    script = env.write_script("progress.sh", "#!/bin/bash\n"
                              'echo "::progress 40 Provisioning"\n' + g[0] +
                              'echo "::stage Rebooting the VM"\n'
                              'echo "::progress 150"\n'
                              'echo "::progress abc"\n'
                              'echo "  ::progress 5 indented"\n'
                              'echo "::stage-like but not a stage"\n' + g[1] +
                              'echo "::progress 70"\n' + g[2] +
                              'echo "::progress 100 Done"\n')
    env.fragment = target_block("webapp", script)


@pytest.mark.sanitize
def test_progress_and_stage_are_visible_while_the_job_runs(make_httpd):
    env = make_httpd(setup=prepare)
    jid = env.submit_ok("webapp")["id"]

    job = env.wait_job(jid, lambda j: j["progress"] == 40, 15, "progress 40")
    assert job["state"] == "running"
    assert job["stage"] == "Provisioning"
    assert isinstance(job["progress"], int)

    env.gates[0].open()
    job = env.wait_job(jid, lambda j: j["stage"] != "Provisioning", 15, "stage change")
    assert job["stage"] == "Rebooting the VM"
    assert job["progress"] == 40

    env.gates[1].open()
    job = env.wait_job(jid, lambda j: j["progress"] != 40, 15, "progress 70")
    assert job["progress"] == 70, "out-of-range, malformed or indented lines changed progress"
    assert job["stage"] == "Rebooting the VM", "::progress without text changed the stage"

    env.gates[2].open()
    done = env.wait_finished(jid)
    assert done["state"] == "succeeded"
    assert done["progress"] == 100 and done["stage"] == "Done"
    log = env.log(jid).text
    assert "::progress 40 Provisioning\n" in log
    assert "::stage Rebooting the VM\n" in log
