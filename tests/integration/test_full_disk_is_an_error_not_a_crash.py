"""A full disk is an error, never a crash (SPEC "Trust"): the job table is allocated
when it is created, so httpd refuses to start on a state dir too small for it; a
submission that cannot be stored answers 503 store_full; a job whose output could not
all be written ends with "log_complete": false and a last log line that says so.

The state dir is a small ext4 on a loop device: root only."""

import errno
import os

import pytest

from harness import httpd_env
from harness.httpd_env import HttpdError, target_block, wait_for
from harness.loop_image import NEEDS_ROOT, loop_image

pytestmark = pytest.mark.skipif(not httpd_env.RUNNING_AS_ROOT, reason=NEEDS_ROOT)

CRASH = "exit signal"


def state_dir_config(image, history=20):
    return (f'DeployStateDir "{os.path.join(image.mount_point, "state")}"\n'
            f"DeployHistory {history}\nDeployQueueLimit 10\n")


@pytest.fixture
def small_disk(make_httpd, tmp_path):
    """(make, image): make(size_mib) gives a mounted image; detached at the end."""
    images = []

    def make(size_mib):
        env = make_httpd(start=False, prepare_state_dir=False)
        cm = loop_image(str(tmp_path / f"disk{len(images)}.img"), env.path("disk"), size_mib)
        image = cm.__enter__()
        images.append((cm, env))
        return env, image
    try:
        yield make
    finally:
        for cm, env in images:
            # httpd and its jobs hold the mount: stop them first.
            env.stop(graceful=True)
            env.kill_leftovers()
            cm.__exit__(None, None, None)


def fill(path):
    """Writes a file until the file system is full (as root: every block)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
        os.fsync(fd)
    finally:
        os.close(fd)


def test_a_state_dir_too_small_for_the_table_fails_start_with_a_clear_message(small_disk):
    env, image = small_disk(4)
    env.server_config = state_dir_config(image, history=5000)  # a 10 MiB table
    env.expect_error(r"cannot allocate the job table .*No space left on device")
    env.expect_error(r"AH00016|Configuration Failed")
    with pytest.raises(HttpdError):
        env.start(timeout=5)
    text = env.error_log_text()
    assert "cannot allocate the job table" in text and "DeployStateDir needs" in text, text
    assert CRASH not in text and "scheduler process died" not in text, text
    # Nothing keeps trying: httpd is gone, no scheduler loops.
    wait_for(lambda: not env.leftover_processes(), 10, "every process of the failed httpd to end")
    # No half-made table is left taking the space.
    assert not os.path.exists(os.path.join(image.mount_point, "state", "jobs.table.new"))


def test_a_submission_on_a_full_disk_is_refused_as_store_full_and_works_again_later(small_disk):
    env, image = small_disk(16)
    env.server_config = state_dir_config(image)
    env.fragment = (target_block("web", "/bin/true")
                    + target_block("quiet", "/bin/true", "DeployWaitChangeNotification 1h"))
    env.start()
    first = env.submit_ok("web")
    assert env.wait_finished(first["id"])["state"] == "succeeded"
    waiting = env.submit_ok("quiet")
    env.expect_error(r"mod_deploy: submission for web refused: .* is full")
    filler = os.path.join(image.mount_point, "filler")
    fill(filler)
    for _ in range(3):
        r = env.submit("web")
        assert r.status == 503, (r.status, r.body)
        assert r.json()["error"] == "store_full", r.body
        assert r.headers.get("Retry-After"), r.headers
    # Joining a waiting job needs no space: the table is allocated.
    joined = env.submit_ok("quiet")
    assert joined["id"] == waiting["id"] and joined["coalesced"] is True
    assert CRASH not in env.error_log_text(), env.error_log_tail()
    os.unlink(filler)
    again = env.submit_ok("web")
    assert again["id"] > first["id"]
    assert env.wait_finished(again["id"])["state"] == "succeeded"
    assert CRASH not in env.error_log_text(), env.error_log_tail()


def test_a_job_whose_output_fills_the_disk_ends_with_an_incomplete_log(small_disk):
    env, image = small_disk(16)
    env.server_config = state_dir_config(image)
    script = env.write_script("flood.sh", "#!/bin/bash\necho start of output\n"
                              "yes 'a line of output that fills the disk' | head -c 64M\n"
                              "exit 0\n")
    env.fragment = target_block("flood", script, "DeployTimeout 120")
    env.start()
    parent = env.read_pid()
    children = httpd_env.children_of(parent)
    env.expect_error(r"deploy-runner\[job \d+\]: \[error\] cannot write the log .*: "
                     r"No space left on device")
    job = env.submit_ok("flood")
    assert job["log_complete"] is True
    done = env.wait_finished(job["id"], timeout=120)
    assert done["state"] == "succeeded", done
    assert done["log_complete"] is False, done
    log = env.log(job["id"])
    assert log.status == 200
    lines = log.text.rstrip("\n").splitlines()
    assert lines[0] == "start of output"
    assert lines[-1].startswith("deploy: output lost: the log could not be written "
                                "(No space left on device)"), lines[-1]
    assert int(log.headers["X-Log-Size"]) == len(log.body)
    text = env.error_log_text()
    assert "[error] cannot write the log" in text and CRASH not in text, env.error_log_tail()
    # Every httpd child lived through it, and the server still answers.
    assert all(httpd_env.process_alive(pid) for pid in children), children
    assert env.job(job["id"])["log_complete"] is False
