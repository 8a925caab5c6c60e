"""scripts/deploy-wait-tcp HOST PORT TIMEOUT: 0 once the port accepts a
connection, 1 after TIMEOUT when it never does, 2 on a usage error.

No httpd here: the script is run directly against listeners of the test."""

import os
import socket
import subprocess
import threading
import time

import pytest

from harness.httpd_env import REPO_DIR, free_port

SCRIPT = os.path.join(REPO_DIR, "scripts", "deploy-wait-tcp")


def wait_tcp(*args, timeout=60):
    started = time.monotonic()
    result = subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=timeout,
                            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    return result, time.monotonic() - started


class LateListener:
    """Listens on 127.0.0.1:port from `delay` seconds after start() on."""

    def __init__(self, port, delay):
        self.port = port
        self.delay = delay
        self.opened_at = None
        self.server = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        time.sleep(self.delay)  # the point of the test: a port that opens late
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.opened_at = time.monotonic()

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.thread.join(timeout=10)
        if self.server:
            self.server.close()


def test_port_that_opens_late_is_waited_for_and_reported_open():
    port = free_port()
    listener = LateListener(port, delay=0.5).start()
    try:
        result, elapsed = wait_tcp("127.0.0.1", str(port), "20")
    finally:
        listener.close()
    assert result.returncode == 0, result
    assert listener.opened_at is not None
    assert f"127.0.0.1:{port} is open" in result.stdout
    # It kept polling until the port opened (~0.5 s), then returned well
    # before the timeout: the backoff is at most 2 s between attempts.
    assert 0.4 <= elapsed < 10, elapsed
    attempts = int(result.stdout.split("attempt ")[1].split(",")[0])
    assert attempts >= 2, result.stdout


def test_port_open_from_the_start_answers_at_the_first_attempt():
    with socket.create_server(("127.0.0.1", 0)) as server:
        result, elapsed = wait_tcp("127.0.0.1", str(server.getsockname()[1]), "10")
    assert result.returncode == 0, result
    assert "(attempt 1," in result.stdout
    assert elapsed < 5


def test_port_that_never_opens_times_out_after_about_timeout_seconds():
    # Bound but never listening: every connection is refused.
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        result, elapsed = wait_tcp("127.0.0.1", str(port), "2.5")
    assert result.returncode == 1, result
    assert 2.4 <= elapsed < 6, elapsed
    assert f"127.0.0.1:{port} did not accept a connection within 2.5 s" in result.stderr
    assert "Connection refused" in result.stderr
    # Exponential backoff: 0.1 + 0.2 + 0.4 + 0.8 + ~1 s of sleeps leaves 5 to 7
    # attempts in 2.5 s, not one every 100 ms.
    attempts = int(result.stderr.split("(")[1].split(" attempts")[0])
    assert 4 <= attempts <= 8, result.stderr


@pytest.mark.parametrize("args", [
    [],
    ["127.0.0.1"],
    ["127.0.0.1", "22"],
    ["127.0.0.1", "22", "5", "extra"],
    ["127.0.0.1", "0", "5"],
    ["127.0.0.1", "65536", "5"],
    ["127.0.0.1", "ssh", "5"],
    ["127.0.0.1", "22", "-1"],
    ["127.0.0.1", "22", "soon"],
    ["", "22", "5"],
], ids=lambda a: " ".join(a) or "no-arguments")
def test_usage_errors_exit_2_with_the_usage(args):
    result, elapsed = wait_tcp(*args)
    assert result.returncode == 2, result
    assert "usage: deploy-wait-tcp HOST PORT TIMEOUT" in result.stderr
    assert result.stdout == ""
    assert elapsed < 5
