"""The job's environment: exactly PATH, LANG, DEPLOY_* and DeployEnv; nothing of
httpd's own (SPEC "What the job sees")."""

import pytest

from harness.httpd_env import HTTPD_ENV_MARKER, target_block
from test_job_parameters_never_reach_a_shell import read_environ

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def prepare(env):
    script = env.write_script("env.sh", f"""#!/bin/bash
cat /proc/$$/environ > "{env.scratch}/job-$DEPLOY_JOB_ID.environ"
""")
    env.server_config = ("DeployEnv SHARED from-server\n"
                         "DeployEnv OVERRIDDEN server-value\n")
    env.fragment = (target_block("webapp", script, "DeployParam version ^[0-9.]+$",
                                 "DeployEnv OVERRIDDEN target-value",
                                 "DeployEnv ONLY_TARGET 'two words'")
                    + target_block("plain", script))


@pytest.mark.sanitize
def test_job_sees_exactly_the_documented_environment(make_httpd):
    env = make_httpd(setup=prepare)
    job = env.submit_ok("webapp", {"version": "1.2"})
    assert env.wait_finished(job["id"])["state"] == "succeeded"
    environ = read_environ(env.scratch_path(f"job-{job['id']}.environ"))
    assert HTTPD_ENV_MARKER[0] not in environ, "httpd's environment leaked into the job"
    assert environ == {
        "PATH": PATH,
        "LANG": "C.UTF-8",
        "DEPLOY_JOB_ID": str(job["id"]),
        "DEPLOY_TARGET": "webapp",
        "DEPLOY_REQUESTS": "1",
        "DEPLOY_SUBMITTED_BY": "",
        "DEPLOY_PARAM_VERSION": "1.2",
        "SHARED": "from-server",
        "OVERRIDDEN": "target-value",
        "ONLY_TARGET": "two words",
    }


def test_server_level_deploy_env_applies_to_every_target(make_httpd):
    env = make_httpd(setup=prepare)
    job = env.submit_ok("plain")
    assert env.wait_finished(job["id"])["state"] == "succeeded"
    environ = read_environ(env.scratch_path(f"job-{job['id']}.environ"))
    assert environ == {
        "PATH": PATH,
        "LANG": "C.UTF-8",
        "DEPLOY_JOB_ID": str(job["id"]),
        "DEPLOY_TARGET": "plain",
        "DEPLOY_REQUESTS": "1",
        "DEPLOY_SUBMITTED_BY": "",
        "SHARED": "from-server",
        "OVERRIDDEN": "server-value",
    }
