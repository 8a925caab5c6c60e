"""Event streams over HTTP/2 (mod_http2, h2c with prior knowledge): a stream
stays open while nothing changes and carries the events of a job. An HTTP/2
stream runs on a secondary connection whose socket is a dummy of mod_http2's;
a stream that took that socket for its client's would end within a second."""

import os
import subprocess
import time

import pytest

from harness.httpd_env import BASE, target_block

HTTP2_MODULE = "/usr/lib/apache2/modules/mod_http2.so"
OPEN_FOR = 4  # seconds the client holds the stream, well past the 1 s checks


@pytest.mark.sanitize
@pytest.mark.skipif(not os.path.exists(HTTP2_MODULE), reason="mod_http2 is not installed")
@pytest.mark.parametrize("route", ["events", "jobs/ID/events"])
def test_a_stream_over_http2_stays_open_and_carries_events(make_httpd, route):
    def prepare(env):
        env.server_config = f"LoadModule http2_module {HTTP2_MODULE}\nProtocols h2c http/1.1"
        env.fragment = (target_block("ok", env.write_script("ok.sh", "#!/bin/sh\necho done\n"))
                        + target_block("held", env.write_script(
                            "held.sh", "#!/bin/sh\nexec sleep 60\n")))
    env = make_httpd(setup=prepare, name="http2-streams")
    path = f"{BASE}/events"
    if route != "events":
        held = env.submit_ok("held")["id"]
        env.wait_state(held, "running")
        path = f"{BASE}/jobs/{held}/events"
    out = os.path.join(env.scratch, "stream.txt")
    started = time.monotonic()
    curl = subprocess.Popen(
        ["curl", "-sS", "-N", "--http2-prior-knowledge", "--max-time", str(OPEN_FOR),
         "-o", out, "-w", "%{http_version} %{http_code}", f"{env.origin}{path}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # past the first look at the connection: nothing changed so far
        if route == "events":
            jid = env.submit_ok("ok")["id"]
            env.wait_finished(jid)
        else:
            assert env.request("POST", f"{BASE}/jobs/{held}/cancel").status == 202
            env.wait_finished(held)
        stdout, stderr = curl.communicate(timeout=OPEN_FOR + 10)
    finally:
        if curl.poll() is None:
            curl.kill()
            curl.wait()
    lived = time.monotonic() - started
    with open(out) as f:
        events = f.read()
    assert stdout == "2 200", (stdout, stderr)
    if route == "events":
        # The global stream is open until the client's time runs out.
        assert curl.returncode == 28 and lived >= OPEN_FOR - 0.5, (curl.returncode, lived, stderr)
        assert f'"id":{jid},' in events and '"state":"succeeded"' in events, events
    else:
        # The job's stream ends after its final state, not before.
        assert curl.returncode == 0, (curl.returncode, stderr)
        assert '"state":"canceled"' in events and lived >= 1.5, (lived, events)
