"""scripts/loadtest at reduced size: 1000 submissions per burst over 16 keep-alive
connections while 20 clients read job status, listings and event streams.

The script starts and stops its own httpd (the config of httpd_env.HttpdEnv) and
checks by itself: every 202 job recorded and final, the jobs recorded equal to the
202 answers and to the ?auto counters, Retry-After on every 503, no zombie and no
leftover process, httpd's memory flat over the second burst, error_log clean. Here
it must exit 0 within the time limit it is given (and which the test enforces too).
"""

import os
import subprocess

from harness import httpd_env
from harness.processes import run_bounded

SCRIPT = os.path.join(httpd_env.REPO_DIR, "scripts", "loadtest")


def test_reduced_load_test_passes_its_checks(tmp_path):
    if not httpd_env.module_available():
        raise AssertionError(f"{httpd_env.BUILD_DIR}/mod_deploy.so is missing; build first")
    figures = tmp_path / "loadtest.json"
    # One malloc arena: the memory check then tells a leak from what glibc's
    # per-thread arenas keep, which varies with how many threads served.
    cmd = ["/usr/bin/python3", SCRIPT, "--submissions", "1000", "--connections", "16",
           "--watchers", "20", "--time-limit", "80", "--json", str(figures),
           "--glibc-tunables", "glibc.malloc.arena_max=1"]
    try:
        result = run_bounded(cmd, timeout=100)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"scripts/loadtest did not finish in 100 s:\n{e.stdout}{e.stderr}")
    assert result.returncode == 0, (f"scripts/loadtest exited {result.returncode}:\n"
                                    f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}")
    assert "checks:" in result.stdout and " 0 failed" in result.stdout, result.stdout[-3000:]
    assert figures.exists()
