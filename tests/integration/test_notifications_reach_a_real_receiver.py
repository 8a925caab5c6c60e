"""Completion notifications (SPEC "Notifications.", issue 17) against real HTTP
receivers on 127.0.0.1, in both store engines: one that answers 500 then 200
(delivered on the retry, with the same X-Deploy-Delivery, a valid
X-Hub-Signature-256 and the job's JSON), one over https:// with a self-signed
certificate that DeployNotifyCAFile trusts, one that never answers (the attempt
fails after the 10 s answer limit and is retried), one that is down (six
attempts, then `failed`); a target without DeployNotify shows []. Pending
notifications survive a stop and start of httpd, and a delivered one is never
sent again.

The retry delays are divided by DEPLOY_TEST_NOTIFICATION_DIVISOR (the tests'
hook, docs/architecture.md); the real schedule and the answer limit are
checked in tests/unit/test_notification.cc, and the answer limit here too."""

import hashlib
import hmac
import http.server
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from harness.httpd_env import free_port, target_block, wait_for
from harness.postgres import ThrowawayPostgres, cluster_server_config, postgres_available
from harness.processes import cpu_seconds, the_scheduler

KEY = b"notify-key-for-the-test"


class Receiver:
    """An HTTP(S) server on 127.0.0.1 that records every request it gets and
    answers per path: /ok 200, /flaky 500 first then 200, /silent never (it
    holds the connection until stopped)."""

    def __init__(self, certificate=None, port=0):
        self.requests = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    seen = [r for r in receiver.requests if r["path"] == self.path]
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "body": body, "at": time.monotonic()})
                if self.path == "/silent":
                    receiver.released.wait(60)
                    return
                status = 500 if self.path == "/flaky" and not seen else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        if certificate:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.scheme = "https" if certificate else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def seen(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def stop(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def files():
    """A directory httpd's User can read: the key and the certificate."""
    path = tempfile.mkdtemp(prefix="mod_deploy-notify-", dir="/tmp")
    os.chmod(path, 0o755)
    key_file = os.path.join(path, "notify.key")
    with open(key_file, "wb") as f:
        f.write(KEY + b"\n")
    cert, private = os.path.join(path, "cert.pem"), os.path.join(path, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", private, "-out", cert], check=True, capture_output=True, timeout=60)
    for name in os.listdir(path):
        os.chmod(os.path.join(path, name), 0o644)
    yield {"key": key_file, "cert": cert, "private": private}
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module", params=["file", "postgresql"])
def engine(request):
    """The server config of the store engine: "" for file, a throwaway
    PostgreSQL server for postgresql."""
    if request.param == "file":
        yield ""
        return
    if not postgres_available():
        pytest.skip("no PostgreSQL server here")
    with ThrowawayPostgres() as server:
        yield cluster_server_config(server.conninfo, "node-1")


@pytest.fixture
def receivers(files):
    plain, tls = Receiver(), Receiver((files["cert"], files["private"]))
    yield plain, tls
    plain.stop()
    tls.stop()


def notified_httpd(make_httpd, engine, files, targets, divisor):
    def setup(env):
        script = env.write_script("ok.sh", "#!/bin/sh\necho deployed\n")
        env.fragment = "".join(target_block(name, script, *lines) for name, lines in targets)
        env.server_config = "\n".join(
            [engine, f"DeployNotifyCAFile {files['cert']}",
             f"DeployNotifySecret file:{files['key']}"])
        if divisor:
            env.extra_environment["DEPLOY_TEST_NOTIFICATION_DIVISOR"] = str(divisor)
        env.expect_error(r"mod_deploy: notification \d+-\d+")
    return make_httpd(setup=setup)


def notifications_settle(env, job_id, predicate, timeout, what):
    return env.wait_job(job_id, lambda j: predicate(j["notifications"]), timeout, what)


def test_notifications_are_retried_signed_and_shown_without_their_urls(
        make_httpd, engine, files, receivers):
    plain, tls = receivers
    down = f"http://127.0.0.1:{free_port()}/hook"
    env = notified_httpd(make_httpd, engine, files, [
        ("flaky", [f"DeployNotify {plain.url('/flaky')}", f"DeployNotify {tls.url('/ok')}"]),
        ("silent", [f"DeployNotify {plain.url('/silent')}"]),
        ("down", [f"DeployNotify {down}"]),
        ("quiet", []),
    ], divisor=1000)
    silent = env.submit_ok("silent")
    flaky = env.submit_ok("flaky")
    gone = env.submit_ok("down")
    quiet = env.submit_ok("quiet")
    assert flaky["notifications"] == [{"state": "pending", "attempts": 0, "status": None}] * 2
    assert quiet["notifications"] == []

    # 500, then 200 on the retry; the https:// receiver at once.
    done = notifications_settle(env, flaky["id"], lambda n: all(
        x["state"] != "pending" for x in n), 15, "both notifications delivered")
    assert done["state"] == "succeeded"
    assert done["notifications"] == [{"state": "delivered", "attempts": 2, "status": 200},
                                     {"state": "delivered", "attempts": 1, "status": 200}]
    first, second = plain.seen("/flaky")
    assert len(tls.seen("/ok")) == 1
    for request, index in ((first, 1), (second, 1), (tls.seen("/ok")[0], 2)):
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["content-type"] == "application/json"
        assert headers["x-deploy-event"] == "job.finished"
        assert headers["x-deploy-delivery"] == f"{flaky['id']}-{index}"
        expected = "sha256=" + hmac.new(KEY, request["body"], hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == expected
        body = json.loads(request["body"])
        assert body["id"] == flaky["id"] and body["state"] == "succeeded"
        assert "127.0.0.1" not in request["body"].decode()  # never a URL
    assert "127.0.0.1" not in json.dumps(env.job(flaky["id"]))

    # Down: six attempts without an answer, then failed.
    failed = notifications_settle(env, gone["id"], lambda n: n[0]["state"] == "failed", 20,
                                  "given up")
    assert failed["notifications"] == [{"state": "failed", "attempts": 6, "status": None}]

    # Never answers: the attempt fails after the 10 s limit, and is retried
    # with the same delivery id.
    wait_for(lambda: plain.seen("/silent"), 10, "the silent receiver's first request")
    asked_at = plain.seen("/silent")[0]["at"]
    after = notifications_settle(env, silent["id"], lambda n: n[0]["attempts"] >= 1, 20,
                                 "the first attempt recorded")
    assert time.monotonic() - asked_at >= 9.5
    assert after["notifications"][0]["status"] is None
    assert after["notifications"][0]["state"] == "pending"
    wait_for(lambda: len(plain.seen("/silent")) >= 2, 10, "the retry")
    ids = {r["headers"]["X-Deploy-Delivery"] for r in plain.seen("/silent")}
    assert ids == {f"{silent['id']}-1"}
    assert env.job(quiet["id"])["notifications"] == []
    # Delivered ones were not sent again meanwhile.
    assert len(plain.seen("/flaky")) == 2 and len(tls.seen("/ok")) == 1


def test_pending_notifications_survive_a_restart_and_are_sent_once(
        make_httpd, engine, files):
    port = free_port()
    env = notified_httpd(make_httpd, engine, files, [
        ("later", [f"DeployNotify http://127.0.0.1:{port}/ok"])], divisor=None)
    job = env.submit_ok("later")
    # The receiver is down: the first attempt fails, the next is due in 5 s.
    notifications_settle(env, job["id"], lambda n: n[0]["attempts"] == 1, 15, "attempt 1")
    env.stop()
    receiver = Receiver(port=port)
    try:
        env.start()
        done = notifications_settle(env, job["id"], lambda n: n[0]["state"] == "delivered", 20,
                                    "delivered after the restart")
        assert done["notifications"] == [{"state": "delivered", "attempts": 2, "status": 200}]
        assert len(receiver.seen("/ok")) == 1
        env.stop()
        env.start()
        # Once a later job's notification came, the deliverer of the new
        # httpd has looked at every due one: the delivered one is not.
        later = env.submit_ok("later")
        notifications_settle(env, later["id"], lambda n: n[0]["state"] == "delivered", 20,
                             "the later job's notification delivered")
        ids = [r["headers"]["X-Deploy-Delivery"] for r in receiver.seen("/ok")]
        assert ids == [f"{job['id']}-1", f"{later['id']}-1"], ids
    finally:
        receiver.stop()


def test_in_a_cluster_each_delivery_is_made_by_one_node(make_httpd, files):
    """Two nodes on one database, both with their deliverer running: every job's
    notification reaches the receiver once, whichever node ran the job."""
    if not postgres_available():
        pytest.skip("no PostgreSQL server here")
    receiver = Receiver()
    try:
        with ThrowawayPostgres() as server:
            nodes = []
            for name in ("node-1", "node-2"):
                def setup(env, name=name):
                    script = env.write_script("ok.sh", "#!/bin/sh\necho deployed\n")
                    env.fragment = target_block("web", script, "DeployConcurrency 0",
                                                f"DeployNotify {receiver.url('/ok')}")
                    env.server_config = cluster_server_config(server.conninfo, name)
                nodes.append(make_httpd(setup=setup))
            ids = [nodes[i % 2].submit_ok("web")["id"] for i in range(12)]
            for job_id in ids:
                notifications_settle(nodes[0], job_id,
                                     lambda n: n and n[0]["state"] == "delivered", 30,
                                     f"job {job_id}'s notification to be delivered")
            time.sleep(1)  # a second delivery would come now
            deliveries = [r["headers"]["X-Deploy-Delivery"] for r in receiver.seen("/ok")]
            assert len(deliveries) == len(set(deliveries)) == len(ids), deliveries
    finally:
        receiver.stop()


def test_changes_faster_than_the_scans_leave_the_deliverer_asleep(make_httpd, engine, files,
                                                                  receivers):
    """The deliverer scans the store at most every 200 ms; a change that comes sooner is
    slept past, not waited for (the wait would return at once, again and again until
    then). With a join every 50 ms for 3 s, its process, the scheduler, stays far from
    a busy CPU."""
    plain, _ = receivers
    env = notified_httpd(make_httpd, engine, files, [
        ("storm", ["DeployWaitChangeNotification 1h", f"DeployNotify {plain.url('/ok')}"])], 0)
    env.submit_ok("storm")
    scheduler = the_scheduler(env)
    before = cpu_seconds([scheduler])[scheduler]
    started = time.monotonic()
    while time.monotonic() - started < 3:
        assert env.submit("storm").status in (200, 202)
        time.sleep(0.05)
    used = cpu_seconds([scheduler])[scheduler] - before
    assert used < 1.0, f"the scheduler used {used:.2f} s of CPU in 3 s of joins"
