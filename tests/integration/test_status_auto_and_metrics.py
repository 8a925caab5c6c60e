"""GET BASE/?auto and GET BASE/metrics tell the facts of the jobs run: gauges
of the jobs held now, totals of final states, submissions by result and
reason, and a well-formed Prometheus exposition."""

import math
import re
import shutil
import subprocess
import time

import pytest

from harness import httpd_env
from harness.httpd_env import (BASE, REPO_DIR, Gate, basic_credentials, gated_job_script, sha_htpasswd_line,
                               target_block, wait_for)
from harness.status import parse_auto
from test_job_json_fields import parse_time

TARGETS = ("blocker", "good", "bad", "quiet")
FINAL = ("succeeded", "failed", "timed_out", "canceled", "expired", "lost")
REASONS = ("not_found", "method_not_allowed", "bad_request", "invalid_param",
           "unsupported_media_type", "too_large", "bad_signature", "cross_origin", "queue_full",
           "internal", "store_full", "busy")
BUCKETS = ("1", "5", "10", "30", "60", "120", "300", "600", "1800", "3600", "+Inf")


def prepare(env):
    env.gate = Gate(env, "release")
    env.server_config = "DeployMaxRunning 1\nDeployQueueLimit 2"
    env.fragment = (target_block("blocker", gated_job_script(env, "blocker.sh", env.gate))
                    + target_block("good", env.write_script("good.sh", "#!/bin/sh\nexit 0\n"),
                                   "DeployParam version ^[0-9]+$")
                    + target_block("bad", env.write_script("bad.sh", "#!/bin/sh\nexit 1\n"))
                    + target_block("quiet", "/bin/true", "DeployWaitChangeNotification 1mi"))


# ----- parsers -----

def auto_status(env):
    r = env.get(f"{BASE}/?auto")
    assert r.status == 200, r
    assert r.headers.get("Content-Type", "").startswith("text/plain")
    return parse_auto(r.text)  # fails on a line that is not `Key: N`, a key twice


NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
SAMPLE = re.compile(rf"({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? (\S+)")
FAMILY_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


def parse_value(text):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf"))
    assert re.fullmatch(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", text), f"bad sample value {text!r}"
    return float(text)


def parse_labels(text):
    return dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"', text or ""))


def metrics(env):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}, checked strictly."""
    r = env.get(f"{BASE}/metrics")
    assert r.status == 200, r
    assert r.headers.get("Content-Type", "").startswith("text/plain; version=0.0.4")
    text = r.text
    assert text.endswith("\n"), "the exposition ends with a newline"
    promtool_check_metrics(text)
    families, current, seen_samples = {}, None, set()
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            m = re.fullmatch(rf"# (HELP|TYPE) ({NAME}) (.+)", line)
            assert m, f"bad comment line: {line!r}"
            kind, name, rest = m.groups()
            family = families.setdefault(name, {"samples": []})
            assert not family["samples"], f"# {kind} of {name} after its samples"
            assert kind.lower() not in family, f"# {kind} of {name} twice"
            if kind == "TYPE":
                assert rest in FAMILY_SUFFIXES, f"type of {name}: {rest}"
            family[kind.lower()] = rest
            current = name
            continue
        m = SAMPLE.fullmatch(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.group(1), parse_labels(m.group(2)), parse_value(m.group(3))
        assert current and "type" in families[current] and "help" in families[current], \
            f"sample before # HELP and # TYPE: {line!r}"
        suffixes = FAMILY_SUFFIXES[families[current]["type"]]
        assert any(name == current + s for s in suffixes), \
            f"sample {name} inside family {current} ({families[current]['type']})"
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen_samples, f"sample {line!r} twice"
        seen_samples.add(key)
        families[current]["samples"].append((name, labels, value))
    for name, family in families.items():
        if family["type"] == "histogram":
            check_histogram(name, family["samples"])
    return families


def promtool(*args, stdin=None):
    """Runs Prometheus' promtool (Debian package prometheus)."""
    path = shutil.which("promtool")
    assert path, "promtool is missing: scripts/install-deps installs prometheus"
    return subprocess.run([path, *args], input=stdin, capture_output=True, text=True, timeout=120)


def promtool_check_metrics(text):
    """Prometheus' own linter finds nothing to say."""
    result = promtool("check", "metrics", stdin=text)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), \
        f"promtool check metrics: {result.stdout}{result.stderr}"


def check_histogram(name, samples):
    series = {}
    for sample_name, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sample_name.endswith("_bucket"):
            s["buckets"].append((labels["le"], value))
        elif sample_name.endswith("_sum"):
            s["sum"] = value
        else:
            s["count"] = value
    for rest, s in series.items():
        les = [le for le, _ in s["buckets"]]
        assert les and les[-1] == "+Inf", f"{name}{rest}: buckets end at +Inf: {les}"
        bounds = [parse_value(le) for le in les]
        assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), les
        counts = [c for _, c in s["buckets"]]
        assert counts == sorted(counts), f"{name}{rest}: buckets are cumulative: {counts}"
        assert s["count"] == counts[-1], f"{name}{rest}: _count {s['count']} != +Inf {counts[-1]}"
        assert s["sum"] is not None and s["sum"] >= 0 and not math.isnan(s["sum"])


def sample(families, name, family=None, **labels):
    found = [v for n, ls, v in families[family or name]["samples"] if n == name and ls == labels]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def by_target(families, name):
    return {ls["target"]: v for n, ls, v in families[name]["samples"]}


# ----- the test -----

def test_auto_and_metrics_count_the_jobs_run_and_the_submissions(make_httpd):
    env = make_httpd(setup=prepare, name="status")
    started = time.monotonic()
    auto = auto_status(env)
    assert auto["Targets"] == 4 and auto["MaxRunning"] == 1 and auto["QueueLimit"] == 2
    assert 0 <= auto["Uptime"] <= time.monotonic() - started + 30

    blocker = env.submit_ok("blocker")["id"]
    env.wait_state(blocker, "running")
    good = env.submit_ok("good", {"version": "1"})["id"]
    quiet = env.submit_ok("quiet")["id"]
    assert env.job(good)["state"] == "queued" and env.job(quiet)["state"] == "waiting"
    joined = env.submit_ok("quiet")
    assert joined["id"] == quiet and joined.get("coalesced") is True
    assert env.submit("good", {"version": "2"}).json()["error"] == "queue_full"
    assert env.submit("good", {"nope": "1"}).json()["error"] == "invalid_param"

    auto = auto_status(env)
    assert {k: auto[k] for k in ("Running", "Waiting", "Queued")} == \
        {"Running": 1, "Waiting": 1, "Queued": 1}
    assert {k: auto[k] for k in auto if k.startswith("Submissions")} == \
        {"SubmissionsAccepted": 3, "SubmissionsCoalesced": 1, "SubmissionsIgnored": 0,
         "SubmissionsRejected": 2}
    assert all(auto["Total" + s.title().replace("_", "")] == 0 for s in FINAL)

    m = metrics(env)
    assert by_target(m, "deploy_jobs_running") == {"blocker": 1, "good": 0, "bad": 0, "quiet": 0}
    assert by_target(m, "deploy_jobs_queued") == {"blocker": 0, "good": 1, "bad": 0, "quiet": 0}
    assert by_target(m, "deploy_jobs_waiting") == {"blocker": 0, "good": 0, "bad": 0, "quiet": 1}
    assert sample(m, "deploy_queue_limit") == 2
    assert sample(m, "deploy_max_running", node=auto["DeployNodeName"]) == 1
    assert all(m[f]["type"] == "gauge" for f in ("deploy_jobs_running", "deploy_jobs_waiting",
                                                 "deploy_jobs_queued", "deploy_queue_limit",
                                                 "deploy_max_running"))
    assert_submissions(m, accepted=3, coalesced=1, queue_full=1, invalid_param=1)
    assert m["deploy_last_success_timestamp_seconds"]["type"] == "gauge"
    assert by_target(m, "deploy_last_success_timestamp_seconds") == {}, \
        "no target has finished a job yet"

    # Now let everything end: one canceled, three that ran.
    assert env.request("POST", f"{BASE}/jobs/{quiet}/cancel", b"",
                       {"Content-Length": "0"}).status == 202
    env.gate.open()
    bad = env.submit_ok("bad")["id"]
    ran = {j: env.wait_finished(j) for j in (blocker, good, bad)}
    assert [ran[j]["state"] for j in (blocker, good, bad)] == ["succeeded", "succeeded", "failed"]

    auto = auto_status(env)
    assert {k: auto[k] for k in ("Running", "Waiting", "Queued")} == \
        {"Running": 0, "Waiting": 0, "Queued": 0}
    assert {k: auto[k] for k in auto if k.startswith("Total")} == {
        "TotalSucceeded": 2, "TotalFailed": 1, "TotalTimedOut": 0, "TotalCanceled": 1,
        "TotalExpired": 0, "TotalLost": 0}
    assert {k: auto[k] for k in auto if k.startswith("Submissions")} == \
        {"SubmissionsAccepted": 4, "SubmissionsCoalesced": 1, "SubmissionsIgnored": 0,
         "SubmissionsRejected": 2}

    m = metrics(env)
    assert m["deploy_jobs_finished_total"]["type"] == "counter"
    finished = {(ls["target"], ls["state"]): v
                for _, ls, v in m["deploy_jobs_finished_total"]["samples"]}
    expected = {(t, s): 0 for t in TARGETS for s in FINAL}
    expected.update({("blocker", "succeeded"): 1, ("good", "succeeded"): 1,
                     ("bad", "failed"): 1, ("quiet", "canceled"): 1})
    assert finished == expected
    assert all(v == 0 for f in ("deploy_jobs_running", "deploy_jobs_waiting", "deploy_jobs_queued")
               for v in by_target(m, f).values())

    hist = m["deploy_job_duration_seconds"]
    assert hist["type"] == "histogram"
    counts = {ls["target"]: v for n, ls, v in hist["samples"] if n.endswith("_count")}
    assert counts == {"blocker": 1, "good": 1, "bad": 1, "quiet": 0}, \
        "the histogram counts the jobs that ran, per target that finished a job"
    for target in ("blocker", "good", "bad", "quiet"):
        les = [ls["le"] for n, ls, _ in hist["samples"]
               if n.endswith("_bucket") and ls["target"] == target]
        assert tuple(les) == BUCKETS, les
    sums = {ls["target"]: v for n, ls, v in hist["samples"] if n.endswith("_sum")}
    for jid, job in ran.items():
        took = parse_time(job["finished_at"]) - parse_time(job["started_at"])
        assert abs(sums[job["target"]] - took) < 0.1, (job["target"], sums, took)
    assert_submissions(m, accepted=4, coalesced=1, queue_full=1, invalid_param=1)
    # The finish time of each target's newest success; 0 for a target whose
    # finished jobs all failed or were canceled.
    assert by_target(m, "deploy_last_success_timestamp_seconds") == pytest.approx({
        "blocker": parse_time(ran[blocker]["finished_at"]),
        "good": parse_time(ran[good]["finished_at"]), "bad": 0, "quiet": 0}, abs=0.002)

    uptime = auto["Uptime"]
    wait_for(lambda: auto_status(env)["Uptime"] > uptime, 10, "Uptime to grow")


def assert_submissions(m, accepted, coalesced, ignored=0, **rejected):
    family = m["deploy_submissions_total"]
    assert family["type"] == "counter"
    assert sample(m, "deploy_submissions_total", result="accepted", reason="") == accepted
    assert sample(m, "deploy_submissions_total", result="coalesced", reason="") == coalesced
    assert sample(m, "deploy_submissions_total", result="ignored", reason="") == ignored
    got = {ls["reason"]: v for _, ls, v in family["samples"] if ls["result"] == "rejected"}
    assert set(got) <= set(REASONS), got
    assert {r: v for r, v in got.items() if v} == rejected
    assert {ls["result"] for _, ls, _ in family["samples"]} == {"accepted", "coalesced",
                                                              "ignored", "rejected"}


# ----- scraping (docs/monitoring.md) -----

ALERT_RULES = f"{REPO_DIR}/conf.d/prometheus/deploy-alerts.yml"
ALERT_TESTS = f"{REPO_DIR}/tests/integration/deploy-alerts.test.yml"


def prepare_scraped(env):
    """docs/monitoring.md's two ways: BASE/metrics open to one address (its own
    <Location> with its own Require), BASE behind Basic authentication."""
    htpasswd = env.write_file("conf/htpasswd", sha_htpasswd_line("alice", "s3cret")
                              + sha_htpasswd_line("prometheus", "scrape"))
    load = ("" if "mod_authz_host.c" in httpd_env.compiled_in_modules() else
            f"LoadModule authz_host_module {httpd_env.DEBIAN_MODULES_DIR}/mod_authz_host.so\n")
    env.location = False
    env.fragment = (load + target_block("good", env.write_script("good.sh", "#!/bin/sh\nexit 0\n"))
                    + f"""<Location {BASE}>
    SetHandler deploy
    AuthType Basic
    AuthName "deployments"
    AuthUserFile "{htpasswd}"
    Require valid-user
</Location>
<Location {BASE}/metrics>
    Require ip {env.scrape_from}
</Location>
""")


def test_metrics_scraped_through_a_location_of_its_own(make_httpd):
    def prepare(env):
        env.scrape_from = "127.0.0.1"
        prepare_scraped(env)
    env = make_httpd(setup=prepare, name="scraped")
    assert env.get(f"{BASE}/jobs").status == 401, "the rest keeps its authentication"
    assert env.get(f"{BASE}/jobs", basic_credentials("prometheus", "scrape")).status == 200
    r = env.get(f"{BASE}/metrics")
    assert r.status == 200 and "deploy_last_success_timestamp_seconds" in r.text, r
    promtool_check_metrics(r.text)


def test_metrics_from_another_address_are_refused_without_asking_for_a_password(make_httpd):
    def prepare(env):
        env.scrape_from = "192.0.2.7"
        prepare_scraped(env)
    env = make_httpd(setup=prepare, name="scraped")
    env.expect_error(r"AH01630: client denied by server configuration")
    assert env.get(f"{BASE}/metrics").status == 403
    assert env.get(f"{BASE}/metrics", basic_credentials("prometheus", "scrape")).status == 403


def test_the_example_alert_rules_are_valid_and_fire_as_documented():
    for args in (["check", "rules", ALERT_RULES], ["test", "rules", ALERT_TESTS]):
        result = promtool(*args)
        assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"
