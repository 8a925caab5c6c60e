"""Parameters reach the job verbatim as DEPLOY_PARAM_<NAME>; DeployCommand runs
directly. Nothing is ever interpreted by a shell."""

import os
import urllib.parse

import pytest

from harness.httpd_env import target_block

HOSTILE = {
    "subst": "$(touch {scratch}/pwned-subst)",
    "semi": ";touch {scratch}/pwned-semi;id",
    "tick": "`touch {scratch}/pwned-tick`",
    "amp": "x && touch {scratch}/pwned-amp | cat > {scratch}/pwned-pipe",
    "quotes": "it's \"quoted\" \\ $HOME ${{PATH}} * ?",
}


def read_environ(path):
    with open(path, "rb") as f:
        entries = [e for e in f.read().split(b"\0") if e]
    return dict(e.decode().split("=", 1) for e in entries)


def setup_recorder(env):
    # The job copies its own initial environment, argv, stdin and ids to files.
    script = env.write_script("record.sh", f"""#!/bin/bash
out="{env.scratch}/job-$DEPLOY_JOB_ID"
cat /proc/$$/environ > "$out.environ"
printf '%s\\0' "$@" > "$out.argv"
readlink /proc/$$/fd/0 > "$out.stdin"
cat /proc/$$/stat > "$out.stat"
exit 0
""")
    params = "".join(f"    DeployParam {name} .*\n" for name in HOSTILE)
    env.fragment = (f"<DeployTarget webapp>\n"
                    f"    DeployCommand {script} --env \"prod eu\" '$HOME' ;id `id`\n"
                    f"{params}"
                    f"    DeployParam Mixed_Case ^[a-z]+$\n"
                    f"</DeployTarget>\n")


def hostile_values(env):
    return {name: value.format(scratch=env.scratch) for name, value in HOSTILE.items()}


def assert_no_side_effect(env):
    pwned = [n for n in os.listdir(env.scratch) if n.startswith("pwned")]
    assert pwned == [], f"a shell ran a parameter: {pwned}"


@pytest.mark.sanitize
def test_json_params_reach_the_job_verbatim_as_environment(make_httpd):
    env = make_httpd(setup=setup_recorder)
    values = hostile_values(env)
    job = env.submit_ok("webapp", dict(values, Mixed_Case="abc"))
    assert job["params"] == dict(values, Mixed_Case="abc")
    assert env.wait_finished(job["id"])["state"] == "succeeded"

    environ = read_environ(env.scratch_path(f"job-{job['id']}.environ"))
    for name, value in values.items():
        assert environ[f"DEPLOY_PARAM_{name.upper()}"] == value
    assert environ["DEPLOY_PARAM_MIXED_CASE"] == "abc"
    assert_no_side_effect(env)


def test_form_params_reach_the_job_verbatim(make_httpd):
    env = make_httpd(setup=setup_recorder)
    values = hostile_values(env)
    body = urllib.parse.urlencode(values)
    r = env.request("POST", "/deploy/targets/webapp", body,
                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 202, r
    job = r.json()
    assert job["params"] == values
    assert env.wait_finished(job["id"])["state"] == "succeeded"
    environ = read_environ(env.scratch_path(f"job-{job['id']}.environ"))
    for name, value in values.items():
        assert environ[f"DEPLOY_PARAM_{name.upper()}"] == value
    assert_no_side_effect(env)


def test_command_words_are_argv_without_a_shell_stdin_null_own_session(make_httpd):
    env = make_httpd(setup=setup_recorder)
    job = env.submit_ok("webapp")
    assert env.wait_finished(job["id"])["state"] == "succeeded"
    base = env.scratch_path(f"job-{job['id']}")
    with open(base + ".argv", "rb") as f:
        argv = f.read().split(b"\0")[:-1]
    assert argv == [b"--env", b"prod eu", b"$HOME", b";id", b"`id`"]
    assert open(base + ".stdin").read().strip() == "/dev/null"

    stat = open(base + ".stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    pid = int(stat.split()[0])
    pgrp, session = int(fields[2]), int(fields[3])
    httpd_pid = env.read_pid()
    with open(f"/proc/{httpd_pid}/stat") as f:
        hstat = f.read()
    httpd_session = int(hstat[hstat.rindex(")") + 2:].split()[3])
    assert session != httpd_session, "job runs in httpd's session"
    assert pgrp == session, "job is not in its own session's process group"
    assert pid == pgrp, "job does not lead its own process group"
