"""`stages` and `outputs` (SPEC "Watching a deployment": Stages, Outputs) of a
job that prints stage and output lines, against a real httpd in both store
engines: in the job JSON while it runs and once it ended, in GET BASE/jobs,
in both event streams, and in `deployctl status`. The hostile and capped cases
are in the unit tests (test_job_details, test_runner) and the page's in
test_job_page."""

import os
import subprocess
from datetime import datetime

import pytest

from harness import httpd_env
from harness.event_stream import EventStream
from harness.httpd_env import BASE, Gate, blocking_script_lines, target_block
from harness.postgres import ThrowawayPostgres, make_cluster, postgres_available

DEPLOYCTL = os.path.join(httpd_env.BUILD_DIR, "deployctl")


def prepare(env):
    env.gate = Gate(env, "ansible")
    script = env.write_script("stages.sh", "#!/bin/bash\n"
                              'echo "::stage Create VM"\n'
                              'echo "::progress 20 Create VM"\n'  # the same stage again
                              "sleep 0.3\n"
                              'echo "::output address 10.0.0.7"\n'
                              'echo "::progress 50 Ansible"\n'
                              'echo "::output url https://vm.example/?a=1 b"\n'
                              + blocking_script_lines(env.gate.path) +
                              'echo "::output address 10.0.0.8"\n'
                              'echo "::stage Playbooks"\n')
    env.fragment = target_block("vm", script)


def millis(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def is_job_event(event, jid, predicate):
    return event.name == "job" and event.json()["id"] == jid and predicate(event.json())


def at_ansible(job):
    return len(job["stages"]) == 2 and "url" in job["outputs"]


@pytest.fixture(params=["file", "postgresql"])
def node(request, make_httpd):
    if request.param == "file":
        return make_httpd(setup=prepare)
    if not postgres_available():
        pytest.skip("no PostgreSQL server here")
    server = ThrowawayPostgres()
    server.start()
    request.addfinalizer(server.stop)
    return make_cluster(make_httpd, server, 1, setup=prepare)[0]


def test_stages_and_outputs_in_the_json_the_listing_both_streams_and_deployctl(node, tmp_path):
    env = node
    with EventStream(env, f"{BASE}/events") as all_jobs:
        jid = env.submit_ok("vm")["id"]
        with EventStream(env, f"{BASE}/jobs/{jid}/events") as one_job:
            one_job.read_until(lambda e: is_job_event(e, jid, at_ansible), "the job at Ansible")
        all_jobs.read_until(lambda e: is_job_event(e, jid, at_ansible), "the job at Ansible")
    job = env.job(jid)
    assert job["state"] == "running"
    assert [s["name"] for s in job["stages"]] == ["Create VM", "Ansible"], job["stages"]
    first, second = job["stages"]
    assert first["finished_at"] == second["started_at"]
    assert millis(first["finished_at"]) - millis(first["started_at"]) >= 250
    assert millis(first["started_at"]) >= millis(job["started_at"])
    assert second["finished_at"] is None
    assert job["outputs"] == {"address": "10.0.0.7", "url": "https://vm.example/?a=1 b"}
    assert list(job).index("stages") == list(job).index("stage") + 1
    assert list(job).index("outputs") == list(job).index("params") + 1
    listed = [j for j in env.jobs() if j["id"] == jid]
    assert listed and listed[0]["stages"] == job["stages"] and listed[0]["outputs"] == job["outputs"]

    home = tmp_path / "home"
    home.mkdir()
    status = subprocess.run([DEPLOYCTL, "--url", env.origin + BASE, "status", str(jid)],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"})
    assert status.returncode == 0, status
    lines = status.stdout.splitlines()
    assert any(line.split() == ["outputs", "address=10.0.0.7"] for line in lines), status.stdout
    assert any(line.split()[:3] == ["stages", "Create", "VM"] for line in lines), status.stdout
    assert any(line.split()[:1] == ["Ansible"] and line.endswith("so far") for line in lines), \
        status.stdout

    env.gate.open()
    done = env.wait_finished(jid)
    assert done["state"] == "succeeded"
    assert [s["name"] for s in done["stages"]] == ["Create VM", "Ansible", "Playbooks"]
    assert done["stages"][1]["finished_at"] == done["stages"][2]["started_at"]
    # The last stage ends with the job.
    assert done["stages"][2]["finished_at"] == done["finished_at"]
    assert done["outputs"] == {"address": "10.0.0.8", "url": "https://vm.example/?a=1 b"}
    assert "::output address 10.0.0.8\n" in env.log(jid).text


def test_a_job_that_sets_none_has_empty_ones(make_httpd):
    env = make_httpd(setup=lambda e: setattr(e, "fragment", target_block("quick", "/bin/echo hi")))
    done = env.wait_finished(env.submit_ok("quick")["id"])
    assert done["stages"] == [] and done["outputs"] == {}
