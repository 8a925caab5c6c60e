"""The harness itself, proven against a plain httpd (no mod_deploy): it starts
each MPM, answers, reloads, stops by pid, and its checks can fail."""

import os

import pytest

from harness import httpd_env
from harness.httpd_env import HttpdEnv, MPMS

pytestmark = [pytest.mark.harness, pytest.mark.sanitize]


@pytest.mark.parametrize("mpm", MPMS)
def test_plain_httpd_starts_answers_reloads_and_stops(make_httpd, mpm):
    env = make_httpd(load_deploy=False, mpm=mpm)
    pid = env.read_pid()
    assert httpd_env.process_alive(pid)
    assert env.get("/nothing-here").status == 404
    env.graceful()
    assert env.read_pid() == pid
    assert env.get("/nothing-here").status == 404
    env.restart()
    assert env.get("/nothing-here").status == 404
    assert env.stop() is None
    assert not httpd_env.process_alive(pid)
    assert not env.port_answers()


def test_error_log_check_reports_unexpected_errors_only():
    env = HttpdEnv(load_deploy=False)
    try:
        with open(env.error_log, "w") as f:
            f.write("[Sat Nov 21 10:00:00.000000 2026] [core:notice] [pid 1] all fine\n"
                    "[Sat Nov 21 10:00:00.000000 2026] [deploy:error] [pid 1] boom\n"
                    "[Sat Nov 21 10:00:00.000000 2026] [core:error] [pid 1] expected one\n"
                    "==12==ERROR: AddressSanitizer: heap-use-after-free\n"
                    "x.cc:3:5: runtime error: signed integer overflow\n"
                    "[Sat Nov 21 10:00:00.000000 2026] [core:notice] [pid 1] AH00052: child pid 7 "
                    "exit signal Segmentation fault (11)\n")
        env.expect_error(r"expected one")
        problems = env.check_error_log()
        assert len(problems) == 4, problems
        assert "boom" in problems[0]
        assert env.check_error_log() == [], "lines are checked once"
    finally:
        env.cleanup()


def test_configtest_reports_a_bad_directive():
    env = HttpdEnv(load_deploy=False)
    try:
        rc, out = env.configtest("NoSuchDirective 1")
        assert rc != 0
        assert "NoSuchDirective" in out
        rc, out = env.configtest("")
        assert rc == 0, out
        assert "Syntax OK" in out
    finally:
        env.cleanup()


def test_server_directory_is_traversable_by_the_httpd_user(make_httpd):
    env = make_httpd(load_deploy=False, start=False)
    script = env.write_script("probe", "#!/bin/sh\necho ok > \"$1\"\n")
    assert os.stat(env.dir).st_mode & 0o755 == 0o755
    assert os.stat(script).st_mode & 0o777 == 0o755
    if httpd_env.RUNNING_AS_ROOT:
        import subprocess
        out = env.scratch_path("probe.out")
        subprocess.run(["setpriv", "--reuid=www-data", "--regid=www-data", "--clear-groups",
                        script, out], check=True, timeout=10)
        assert open(out).read() == "ok\n"


def test_httpd_runs_with_the_preloaded_sanitizer_runtime(make_httpd):
    preload = os.environ.get("DEPLOY_LD_PRELOAD")
    if not preload:
        pytest.skip("DEPLOY_LD_PRELOAD is not set (not the sanitizer pass)")
    env = make_httpd(load_deploy=False)
    with open(f"/proc/{env.read_pid()}/maps") as f:
        maps = f.read()
    assert os.path.realpath(preload) in maps or preload in maps, "httpd runs without the preload"
