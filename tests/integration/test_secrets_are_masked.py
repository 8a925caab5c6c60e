"""DeploySecretEnv NAME file:PATH|env:VAR: the job has the secret in its
environment as NAME, and every occurrence of a secret's value in its output is
`***` wherever the output goes (log, both event streams, stage, dashboard,
deployctl), also when the job writes it in two pieces. Secrets are read at
start and at every restart; a secret shorter than 4 bytes or a file that
cannot be read fails configtest."""

import hashlib
import os
import subprocess

import pytest

from harness.event_stream import EventStream, is_job_event
from harness.httpd_env import BASE, BUILD_DIR, Gate, blocking_script_lines, target_block

TOKEN = "hunter2-alpha-7f3k"          # API_TOKEN, from a file
SHORT = "pfx-secret"                   # SHORT_ONE, from httpd's environment
LONG = "pfx-secret-longer-9"           # LONG_ONE, from a file: SHORT is its prefix
NEW_TOKEN = "rotated-token-55aa"       # API_TOKEN after the file changed
SECRET_VALUES = (TOKEN, SHORT, LONG, NEW_TOKEN)

DEPLOYCTL = os.path.join(BUILD_DIR, "deployctl")


def write_secret(env, name, value, newline=True):
    """A secret file as docs/directives.md recommends: root's, mode 0600."""
    return env.write_file(os.path.join("conf", name), value + ("\n" if newline else ""), 0o600)


def prepare(env):
    env.token_file = write_secret(env, "api-token", TOKEN)
    long_file = write_secret(env, "long-one", LONG, newline=False)
    env.extra_environment["MASKING_TEST_SHORT"] = SHORT
    env.gate = Gate(env, "gate-$DEPLOY_JOB_ID")
    script = env.write_script(
        "secrets.sh", "#!/bin/bash\n"
        f'printf "%s" "$API_TOKEN" | sha256sum | cut -d" " -f1 '
        f'> "{env.scratch}/sha-$DEPLOY_JOB_ID"\n'
        'echo "whole: $API_TOKEN"\n'
        # Two writes, 0.2 s apart: two reads of the runner.
        'printf "split: %s" "${API_TOKEN:0:9}"\n'
        "sleep 0.2\n"
        'printf "%s end\\n" "${API_TOKEN:9}"\n'
        'echo "twice: $API_TOKEN and $API_TOKEN"\n'
        'echo "short: $SHORT_ONE long: $LONG_ONE"\n'
        'echo "::progress 30 progress $API_TOKEN"\n'
        + blocking_script_lines(env.gate.path) +
        'echo "::stage deploying with $API_TOKEN"\n'
        # The last line, without newline: held back by the masker until the end.
        'printf "::stage done with %s" "$API_TOKEN"\n')
    env.fragment = (
        "DeploySecretEnv SHORT_ONE env:MASKING_TEST_SHORT\n"
        + target_block("masked", script, f"DeploySecretEnv API_TOKEN file:{env.token_file}",
                       f"DeploySecretEnv LONG_ONE file:{long_file}"))


def assert_masked(text, what):
    for value in SECRET_VALUES:
        assert value not in text, f"{what} shows the secret {value!r}: {text!r}"
    assert "***" in text, f"{what} does not show *** where the secret was: {text!r}"


def gate_path(env, job_id):
    return env.gate.path.replace("$DEPLOY_JOB_ID", str(job_id))


def open_gate(env, job_id):
    with open(gate_path(env, job_id), "w"):
        pass


def deployctl_log(env, job_id, home):
    result = subprocess.run([DEPLOYCTL, "--url", env.origin + BASE, "log", str(job_id)],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                            env={"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_secrets_are_in_the_environment_and_masked_everywhere(make_httpd, tmp_path):
    env = make_httpd(setup=prepare, name="masking")
    with EventStream(env, f"{BASE}/events") as all_jobs:
        jid = env.submit_ok("masked")["id"]
        running = env.wait_job(jid, lambda j: j["progress"] == 30, 20, "progress 30")
        # A stage from a ::progress line while the job runs, on the dashboard too.
        assert running["stage"] == "progress ***"
        dashboard = env.get(f"{BASE}/")
        assert dashboard.status == 200
        assert "progress ***" in dashboard.text
        assert_masked(dashboard.text, "the dashboard")

        with EventStream(env, f"{BASE}/jobs/{jid}/events") as job_stream:
            open_gate(env, jid)
            job_events = job_stream.read_to_end()
        all_events = all_jobs.read_until(
            lambda e: is_job_event(e, jid, lambda j: j["state"] == "succeeded"), "job succeeded")

    done = env.wait_finished(jid)
    assert done["state"] == "succeeded", env.log(jid).text
    # The last line, flushed by the masker before it was parsed.
    assert done["stage"] == "done with ***"
    assert_masked(str(done), "the job JSON")

    log = env.log(jid).text
    assert_masked(log, "the log")
    for line in ("whole: ***\n", "split: *** end\n", "twice: *** and ***\n",
                 "short: *** long: ***\n", "::progress 30 progress ***\n",
                 "::stage deploying with ***\n"):
        assert line in log, f"{line!r} missing from the log: {log!r}"
    assert log.endswith("::stage done with ***")

    job_text = "\n".join(e.data for e in job_events)
    assert "split: *** end" in job_text
    assert_masked(job_text, "the job's event stream")
    all_text = "\n".join(e.data for e in all_events)
    assert "done with ***" in all_text
    assert_masked(all_text, "the all-jobs event stream")

    dashboard = env.get(f"{BASE}/").text
    assert "done with ***" in dashboard
    assert_masked(dashboard, "the dashboard")
    home = tmp_path / "home"
    home.mkdir()
    assert_masked(deployctl_log(env, jid, str(home)), "deployctl log")

    # The job had the secret itself in its environment.
    with open(os.path.join(env.scratch, f"sha-{jid}")) as f:
        assert f.read().strip() == hashlib.sha256(TOKEN.encode()).hexdigest()


def test_a_graceful_restart_reads_the_changed_secret(make_httpd):
    env = make_httpd(setup=prepare, name="masking-restart")
    write_secret(env, "api-token", NEW_TOKEN)
    env.graceful()
    jid = env.submit_ok("masked")["id"]
    open_gate(env, jid)
    done = env.wait_finished(jid, timeout=30)
    assert done["state"] == "succeeded"
    log = env.log(jid).text
    assert_masked(log, "the log after the restart")
    assert "whole: ***\n" in log
    with open(os.path.join(env.scratch, f"sha-{jid}")) as f:
        assert f.read().strip() == hashlib.sha256(NEW_TOKEN.encode()).hexdigest()


@pytest.mark.parametrize("directive, message", [
    ("DeploySecretEnv API_TOKEN file:conf/three", "shorter than 4 bytes"),
    ("DeploySecretEnv API_TOKEN file:conf/missing", "cannot read 'file:conf/missing'"),
    ("DeploySecretEnv API_TOKEN env:MASKING_TEST_UNSET", "the variable is not set"),
    ("DeploySecretEnv DEPLOY_TOKEN file:conf/four", "DEPLOY_* names are set by mod_deploy"),
    ("DeploySecretEnv A=B file:conf/four", "invalid variable name 'A=B'"),
    ("DeploySecretEnv API_TOKEN file:conf/four\n    DeployEnv API_TOKEN plain",
     "DeploySecretEnv API_TOKEN and DeployEnv API_TOKEN set the same variable"),
])
def test_configtest_refuses_bad_secrets(make_httpd, directive, message):
    env = make_httpd(start=False, name="masking-configtest")
    write_secret(env, "three", "x9q")
    write_secret(env, "four", "abcd")
    rc, out = env.configtest(target_block("masked", "/bin/true", directive))
    assert rc != 0 and message in out, out
    assert "x9q" not in out, "the message shows the secret"
    # The same target with a secret of 4 bytes is fine.
    rc, out = env.configtest(target_block("masked", "/bin/true",
                                          "DeploySecretEnv API_TOKEN file:conf/four"))
    assert rc == 0, out
