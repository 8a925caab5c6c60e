"""Every row of SPEC "Bad input": the status, a JSON {"error", "message"} body,
and nothing recorded (the job list is unchanged after the rejection)."""

import http.client
import json

import pytest

from harness.httpd_env import BASE, Gate, Response, gated_job_script, hub_signature, target_block

SECRET = b"hunter2-key"
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def prepare(env):
    ok = env.write_script("ok.sh", "#!/bin/sh\nexit 0\n")
    secret_file = env.write_file("conf/secret", SECRET + b"\n", 0o600)
    env.server_config = "DeployMaxBody 1k"
    env.fragment = (target_block("web", ok, r"DeployParam version ^[0-9]+(\.[0-9]+)*$")
                    + target_block("signed", ok, f"DeploySecret file:{secret_file}"))


@pytest.fixture(scope="module")
def env(make_module_httpd):
    env = make_module_httpd(setup=prepare, name="bad-input")
    env.existing = env.submit_ok("web", {"version": "1"})["id"]
    env.wait_finished(env.existing)
    return env


def job_list(env):
    return [(j["id"], j["state"]) for j in env.jobs("?limit=1000")]


def assert_error(r, status, code):
    assert r.status == status, f"expected {status} {code}, got {r.status}: {r.body[:300]!r}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), \
        f"error Content-Type: {r.headers.get('Content-Type')}"
    body = r.json()
    assert isinstance(body, dict) and set(body) >= {"error", "message"}, body
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    return body


def rejected(env, method, path, status, code, body=None, headers=None):
    before = job_list(env)
    r = env.request(method, path, body, headers)
    answer = assert_error(r, status, code)
    assert job_list(env) == before, "a rejected request recorded something"
    return r, answer


NOT_FOUND = [
    ("POST", "/targets/nosuch"),
    ("POST", "/targets/bad$name"),
    ("GET", "/jobs/987654"),
    ("GET", "/jobs/abc"),
    ("GET", "/jobs/0"),
    ("GET", "/jobs/-1"),
    ("GET", "/jobs/1x"),
    ("GET", "/jobs/987654/log"),
    ("POST", "/jobs/987654/cancel"),
    ("GET", "/nothing-here"),
    ("GET", "/targets/web/extra"),
    ("GET", "/jobs/1/unknown"),
]


@pytest.mark.sanitize
@pytest.mark.parametrize("method,path", NOT_FOUND, ids=[f"{m} {p}" for m, p in NOT_FOUND])
def test_not_found(env, method, path):
    headers = {"Content-Length": "0"} if method == "POST" else None
    rejected(env, method, BASE + path, 404, "not_found", b"" if method == "POST" else None, headers)


METHOD_NOT_ALLOWED = [
    ("GET", "/targets/web", "POST"),
    ("PUT", "/targets/web", "POST"),
    ("DELETE", "/jobs/{existing}", "GET"),
    ("POST", "/jobs/{existing}", "GET"),
    ("POST", "/jobs", "GET"),
    ("POST", "/targets", "GET"),
    ("GET", "/jobs/{existing}/cancel", "POST"),
    ("POST", "/jobs/{existing}/log", "GET"),
]


@pytest.mark.parametrize("method,path,allowed", METHOD_NOT_ALLOWED,
                         ids=[f"{m} {p}" for m, p, _ in METHOD_NOT_ALLOWED])
def test_method_not_allowed_lists_allowed_methods(env, method, path, allowed):
    headers = {"Content-Length": "0"} if method in ("POST", "PUT") else None
    r, _ = rejected(env, method, BASE + path.format(existing=env.existing), 405,
                    "method_not_allowed", b"" if headers else None, headers)
    allow = [m.strip() for m in (r.headers.get("Allow") or "").split(",")]
    assert allowed in allow, f"Allow: {r.headers.get('Allow')}"
    assert method not in allow


BAD_REQUEST = [
    ("invalid json", JSON, b'{"params": {'),
    ("not an object", JSON, b'["version", "1"]'),
    ("a string", JSON, b'"version=1"'),
    ("params an array", JSON, b'{"params": ["1"]}'),
    ("params a string", JSON, b'{"params": "version=1"}'),
    ("param a number", JSON, b'{"params": {"version": 1}}'),
    ("param null", JSON, b'{"params": {"version": null}}'),
    ("param an object", JSON, b'{"params": {"version": {"v": "1"}}}'),
    ("duplicate param", JSON, b'{"params": {"version": "1", "version": "2"}}'),
    ("duplicate key", JSON, b'{"params": {"version": "1"}, "params": {}}'),
    ("bad percent encoding", FORM, b"version=%zz"),
    ("truncated percent encoding", FORM, b"version=1%2"),
]


@pytest.mark.sanitize
@pytest.mark.parametrize("case,headers,body", BAD_REQUEST, ids=[c for c, _, _ in BAD_REQUEST])
def test_bad_request(env, case, headers, body):
    rejected(env, "POST", f"{BASE}/targets/web", 400, "bad_request", body, headers)


@pytest.mark.parametrize("query", ["version=2", "x"], ids=["a parameter", "a word"])
def test_a_query_string_on_a_submission_is_bad_request_without_a_query_source(env, query):
    # Nothing is silently dropped: the query string is refused, not ignored.
    _, answer = rejected(env, "POST", f"{BASE}/targets/web?{query}", 400, "bad_request",
                         b'{"params": {"version": "1"}}', JSON)
    assert "query string" in answer["message"]


INVALID_PARAM = [
    ("undeclared", JSON, b'{"params": {"branch": "main"}}', "branch"),
    ("pattern mismatch", JSON, b'{"params": {"version": "1.x"}}', "version"),
    ("partial match", JSON, b'{"params": {"version": "1.2\\n"}}', "version"),
    ("form undeclared", FORM, b"colour=red", "colour"),
    ("form mismatch", FORM, b"version=abc", "version"),
]


@pytest.mark.parametrize("case,headers,body,name", INVALID_PARAM, ids=[c[0] for c in INVALID_PARAM])
def test_invalid_param_names_the_parameter(env, case, headers, body, name):
    _, answer = rejected(env, "POST", f"{BASE}/targets/web", 400, "invalid_param", body, headers)
    assert name in answer["message"]


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_unsupported_media_type(env, ctype):
    rejected(env, "POST", f"{BASE}/targets/web", 415, "unsupported_media_type",
             b"version=1", {"Content-Type": ctype})


def test_body_larger_than_max_body_is_too_large(env):
    body = json.dumps({"params": {"version": "1" * 2000}}).encode()
    rejected(env, "POST", f"{BASE}/targets/web", 413, "too_large", body, JSON)


def test_chunked_body_larger_than_max_body_is_too_large(env):
    before = job_list(env)
    conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=10)
    try:
        chunks = [b'{"params": {"version": "'] + [b"1" * 500] * 4 + [b'"}}']
        conn.request("POST", f"{BASE}/targets/web", body=iter(chunks), headers=JSON,
                     encode_chunked=True)
        resp = conn.getresponse()
        r = Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()
    assert_error(r, 413, "too_large")
    assert job_list(env) == before


def test_missing_signature_is_rejected(env):
    body = b'{"params": {}}'
    rejected(env, "POST", f"{BASE}/targets/signed", 403, "bad_signature", body, JSON)


def test_wrong_signature_is_rejected(env):
    body = b'{"params": {}}'
    for signature in (hub_signature(b"other-key", body), "sha256=" + "0" * 64, "sha1=abc",
                      hub_signature(SECRET + b"\n", body)):
        rejected(env, "POST", f"{BASE}/targets/signed", 403, "bad_signature", body,
                 dict(JSON, **{"X-Hub-Signature-256": signature}))


@pytest.mark.sanitize
def test_right_signature_is_accepted(env):
    body = b'{"params": {}}'
    r = env.request("POST", f"{BASE}/targets/signed", body,
                    dict(JSON, **{"X-Hub-Signature-256": hub_signature(SECRET, body)}))
    assert r.status == 202, r
    assert env.wait_finished(r.json()["id"])["state"] == "succeeded"


def test_cross_origin_post_is_rejected(env):
    for origin in ("http://evil.example", f"http://127.0.0.1:{env.port + 1}",
                   f"https://127.0.0.1:{env.port}", "null"):
        rejected(env, "POST", f"{BASE}/targets/web", 403, "cross_origin",
                 b'{"params": {"version": "1"}}', dict(JSON, Origin=origin))


def test_same_origin_post_is_accepted(env):
    r = env.request("POST", f"{BASE}/targets/web", b'{"params": {"version": "2"}}',
                    dict(JSON, Origin=env.origin))
    assert r.status == 202, r
    env.wait_finished(r.json()["id"])


def test_cancel_of_a_finished_job_is_a_conflict(env):
    rejected(env, "POST", f"{BASE}/jobs/{env.existing}/cancel", 409, "conflict", b"",
             {"Content-Length": "0"})


@pytest.mark.sanitize
def test_full_queue_is_service_unavailable_with_retry_after(make_httpd):
    def setup_queue(env):
        env.gate = Gate(env, "release")
        env.server_config = "DeployMaxRunning 1\nDeployQueueLimit 1"
        env.fragment = target_block("web", gated_job_script(env, "block.sh", env.gate))
    env = make_httpd(setup=setup_queue)
    running = env.submit_ok("web")["id"]
    env.wait_state(running, "running")
    queued = env.submit_ok("web")["id"]
    assert env.job(queued)["state"] == "queued"

    r, _ = rejected(env, "POST", f"{BASE}/targets/web", 503, "queue_full", b"",
                    {"Content-Length": "0"})
    retry_after = r.headers.get("Retry-After")
    assert retry_after is not None and retry_after.strip().isdigit(), f"Retry-After: {retry_after}"

    env.gate.open()
    assert env.wait_finished(running)["state"] == "succeeded"
    assert env.wait_finished(queued)["state"] == "succeeded"
    after = env.submit_ok("web")["id"]
    assert env.wait_finished(after)["state"] == "succeeded"
