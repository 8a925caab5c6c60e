"""scripts/example-deploy, the VM pipeline, run in stub mode through a real
httpd configured by conf.d/deploy.conf, as scripts/demo runs it: it reaches
succeeded through its stages in order, and a failing step fails the job with
the step named in the log."""

import os
import shutil

import pytest

from harness.httpd_env import REPO_DIR, target_block, wait_for

STAGES = ["Creating VM", "Provisioning", "Changing network", "Rebooting", "Verifying SSH",
          "Running playbooks", "Done"]
PLAYBOOKS = ["base.yml", "app.yml", "monitoring.yml"]


def install_scripts(env):
    """example-deploy, deploy-wait-tcp and the stubs, where DEPLOY_SCRIPTS points
    (as scripts/demo copies them), readable by the httpd user."""
    bin_dir = env.path("jobs")
    for name in ("example-deploy", "deploy-wait-tcp"):
        shutil.copy2(os.path.join(REPO_DIR, "scripts", name), os.path.join(bin_dir, name))
    shutil.copytree(os.path.join(REPO_DIR, "scripts", "stubs"), os.path.join(bin_dir, "stubs"))
    os.chmod(os.path.join(bin_dir, "stubs"), 0o755)


def broken_target(name, *env_lines):
    return target_block(name, "${DEPLOY_SCRIPTS}/example-deploy",
                        "DeployParam vm ^[a-z0-9-]+$", "DeployEnv DEPLOY_STUBS 1", *env_lines)


@pytest.fixture(scope="module")
def env(make_module_httpd):
    def fragment(e):
        return "\n".join([
            f"Define DEPLOY_STATE_DIR {e.state_dir}",
            f"Define DEPLOY_SCRIPTS {e.path('jobs')}",
            f'Include "{os.path.join(REPO_DIR, "conf.d", "deploy.conf")}"',
            # The simulated VMs live in the server's directory, so that the
            # harness finds any that outlives its job.
            f"DeployEnv TMPDIR {e.scratch}",
            broken_target("provision-fails", "DeployEnv DEPLOY_STUB_FAIL provision"),
            broken_target("vm-never-boots", "DeployEnv DEPLOY_STUB_FAIL boot",
                          "DeployEnv DEPLOY_STUB_PACE 0.3", "DeployEnv DEPLOY_SSH_TIMEOUT 2"),
        ])

    def setup(e):
        install_scripts(e)
        e.fragment = fragment(e)
    return make_module_httpd(location=False, setup=setup, name="pipeline")


def log_text(env, job_id):
    r = env.log(job_id)
    assert r.status == 200, r
    return r.text


def main_stage(stage):
    """"Running playbooks: app.yml (2/3)" -> "Running playbooks"."""
    return None if stage is None else stage.split(":")[0]


def test_pipeline_succeeds_through_its_stages_in_order(env):
    job = env.submit_ok("demo-vm", {"vm": "web-01", "version": "1.4.2"})
    seen = []  # (progress, stage) at each change, polled

    def finished():
        j = env.job(job["id"])
        point = (j["progress"], j["stage"])
        if j["state"] == "running" and (not seen or seen[-1] != point):
            seen.append(point)
        return j if j["state"] in ("succeeded", "failed", "timed_out", "canceled", "lost") else None

    final = wait_for(finished, 90, f"job {job['id']} to finish", interval=0.05)
    log = log_text(env, job["id"])
    assert final["state"] == "succeeded", f"{final}\n{log}"
    assert final["exit_code"] == 0
    assert (final["progress"], final["stage"]) == (100, "Done")

    # Every stage was seen while running (each lasts a second or more), in order,
    # with progress never going back.
    observed = []
    for _, stage in seen:
        if stage is not None and main_stage(stage) not in observed:
            observed.append(main_stage(stage))
    assert observed == STAGES[:-1] or observed == STAGES, f"stages seen: {seen}"
    progresses = [p for p, _ in seen if p is not None]
    assert progresses == sorted(progresses), seen
    # A playbook's stage may be seen twice: with the progress its start set,
    # and with the one its end set, when the two lines are read apart.
    playbooks = []
    for _, stage in seen:
        if stage and stage.startswith("Running playbooks: "):
            name = stage.split(": ")[1].split(" ")[0]
            if not playbooks or playbooks[-1] != name:
                playbooks.append(name)
    assert playbooks == PLAYBOOKS, seen

    # The log holds each stage line, in order, and the tools' output.
    positions = [log.index(f" {stage}\n") for stage in STAGES]
    assert positions == sorted(positions), log
    for line in ("::progress 5 Creating VM", "::progress 100 Done",
                 "Cloning /DC0/vm/debian-12-template to web-01...OK",
                 "PLAY RECAP", "is open (attempt", "Linux web-01 ",
                 "version 1.4.2 is live on web-01"):
        assert line in log, f"{line!r} missing from the log:\n{log}"
    for playbook in PLAYBOOKS:
        assert f"::stage Running playbooks: {playbook}" in log


def test_failing_provisioning_fails_the_job_and_says_so_in_the_log(env):
    job = env.submit_ok("provision-fails", {"vm": "web-02"})
    final = env.wait_finished(job["id"], timeout=60)
    log = log_text(env, job["id"])
    assert final["state"] == "failed", f"{final}\n{log}"
    assert final["exit_code"] == 2, final  # ansible-playbook's status for a failed host
    assert final["stage"] == "Provisioning"
    assert "fatal: [127.0.0.1]: FAILED!" in log
    assert "example-deploy: Provisioning failed: 'ansible-playbook " in log
    assert "exited with status 2" in log
    assert "Changing network" not in log, log


def test_vm_that_never_answers_ssh_fails_after_the_ssh_timeout(env):
    job = env.submit_ok("vm-never-boots", {"vm": "web-03"})
    final = env.wait_finished(job["id"], timeout=60)
    log = log_text(env, job["id"])
    assert final["state"] == "failed", f"{final}\n{log}"
    assert final["exit_code"] == 1
    assert final["stage"] == "Verifying SSH"
    assert "did not accept a connection within 2 s" in log, log
    assert "example-deploy: Verifying SSH failed: " in log
    assert "Running playbooks" not in log
