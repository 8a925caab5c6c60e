"""Webhook deliveries as GitHub, Gitea and GitLab document them, headers and
payloads, against targets configured as docs/api.md ("Webhooks from GitHub,
Gitea and GitLab") shows: a push to main deploys its commit, a ping and a push
to another branch are answered 200 ignored and record nothing but a counter, a
wrong signature or token is refused, and a user httpd authenticated may leave
the signature out where DeployUnsignedUsers allows it (never send a wrong one).

The payloads follow the services' documentation of a push event (GitHub:
"Webhook events and payloads"; Gitea: "Webhooks"; GitLab: "Webhook events",
Push events), shortened to the fields a deployment reads and some around them."""

import copy
import json
import re
import uuid

import pytest

from harness.httpd_env import BASE, basic_auth_location, basic_credentials, hub_signature, \
            sha_htpasswd_line, target_block

GITHUB_KEY = b"It's a Secret to Everybody"
GITEA_KEY = b"gitea-hook-secret"
GITLAB_TOKEN = "glpat-hook-token-8sKq"
# The second base: the same routes behind a password, for people.
PEOPLE = "/people"
USER, PASSWORD = "alice", "alice-pw"
COMMIT = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"
OTHER_COMMIT = "bffeb74224043ba2feb48d137756c8a9331c449a"

GITHUB_PUSH = {
    "ref": "refs/heads/main",
    "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    "after": COMMIT,
    "repository": {
        "id": 186853002, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=", "name": "webapp",
        "full_name": "acme/webapp", "private": True,
        "owner": {"name": "acme", "login": "acme", "id": 21031067, "type": "Organization"},
        "html_url": "https://github.com/acme/webapp", "default_branch": "main",
        "topics": [], "size": 42,
    },
    "pusher": {"name": "alice", "email": "alice@example.com"},
    "sender": {"login": "alice", "id": 583231, "type": "User", "site_admin": False},
    "created": False, "deleted": False, "forced": False, "base_ref": None,
    "compare": "https://github.com/acme/webapp/compare/6113728f27ae...59b20b8d5c6f",
    "commits": [{
        "id": COMMIT, "tree_id": "f9d2a07e9488b91af2641b26b9407fe22a451433", "distinct": True,
        "message": "Fix the login page", "timestamp": "2026-11-30T10:12:45+01:00",
        "url": f"https://github.com/acme/webapp/commit/{COMMIT}",
        "author": {"name": "Alice", "email": "alice@example.com", "username": "alice"},
        "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
        "added": [], "removed": [], "modified": ["login.html"],
    }],
    "head_commit": {"id": COMMIT, "message": "Fix the login page"},
}

GITHUB_PING = {
    "zen": "Keep it logically awesome.",
    "hook_id": 30,
    "hook": {"type": "Repository", "id": 30, "name": "web", "active": True, "events": ["push"],
             "config": {"content_type": "json", "insecure_ssl": "0",
                        "url": "https://ci.example/deploy/targets/github"}},
    "repository": GITHUB_PUSH["repository"],
    "sender": GITHUB_PUSH["sender"],
}

GITEA_PUSH = {
    "ref": "refs/heads/main",
    "before": "28e1879d029cb852e4844d9c718537df08844e03",
    "after": OTHER_COMMIT,
    "compare_url": "http://gitea.example/acme/site/compare/28e1879d029c...bffeb7422404",
    "commits": [{
        "id": OTHER_COMMIT, "message": "Webhooks Yay!",
        "url": f"http://gitea.example/acme/site/commit/{OTHER_COMMIT}",
        "author": {"name": "Gitea", "email": "someone@gitea.io", "username": "gitea"},
        "committer": {"name": "Gitea", "email": "someone@gitea.io", "username": "gitea"},
        "timestamp": "2017-03-13T13:52:11-04:00",
    }],
    "repository": {"id": 140, "name": "site", "full_name": "acme/site", "private": False,
                   "owner": {"id": 1, "login": "acme", "username": "acme"},
                   "default_branch": "main"},
    "pusher": {"id": 1, "login": "gitea", "username": "gitea"},
    "sender": {"id": 1, "login": "gitea", "username": "gitea"},
}

GITLAB_PUSH = {
    "object_kind": "push",
    "event_name": "push",
    "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
    "after": COMMIT,
    "ref": "refs/heads/main",
    "ref_protected": True,
    "checkout_sha": COMMIT,
    "user_id": 4, "user_name": "John Smith", "user_username": "jsmith",
    "user_email": "john@example.com",
    "project_id": 15,
    "project": {"id": 15, "name": "Diaspora", "path_with_namespace": "mike/diaspora",
                "default_branch": "main", "visibility_level": 0,
                "web_url": "http://gitlab.example/mike/diaspora"},
    "commits": [{"id": COMMIT, "message": "Update Catalan translation to e38cb41.",
                 "title": "Update Catalan translation to e38cb41.",
                 "timestamp": "2011-12-12T14:27:31+02:00",
                 "author": {"name": "Jordi Mallach", "email": "jordi@softcatala.org"},
                 "added": ["CHANGELOG"], "modified": ["app/controller/application.rb"],
                 "removed": []}],
    "total_commits_count": 1,
    "repository": {"name": "Diaspora", "url": "git@gitlab.example:mike/diaspora.git",
                   "homepage": "http://gitlab.example/mike/diaspora", "visibility_level": 0},
}


def webhook_target(name, proof, event_filter, commit_from="json:/after", *more):
    return target_block(
        name, "{script}", proof, "DeployParam commit ^[0-9a-f]{40}$",
        f"DeployParamFrom commit {commit_from}", event_filter,
        "DeployFilter json:/ref ^refs/heads/main$", *more)


@pytest.fixture(scope="module")
def env(make_module_httpd):
    def setup(env):
        script = env.write_script("deploy.sh", '#!/bin/sh\necho "deploying ${DEPLOY_PARAM_COMMIT:-nothing}"\n')
        github_key = env.write_file("conf/github.key", GITHUB_KEY + b"\n")
        gitea_key = env.write_file("conf/gitea.key", GITEA_KEY)
        gitlab_token = env.write_file("conf/gitlab.token", GITLAB_TOKEN + "\n")
        htpasswd = env.write_file("conf/htpasswd", sha_htpasswd_line(USER, PASSWORD))
        env.fragment = (
            webhook_target("github", f"DeploySecret file:{github_key}",
                           "DeployFilter header:X-GitHub-Event ^push$", "json:/after",
                           "DeployUnsignedUsers On", "DeployIdempotencyHeader X-GitHub-Delivery")
            + webhook_target("gitea", f"DeploySecret file:{gitea_key}",
                             "DeployFilter header:X-Gitea-Event ^push$", "json:/after",
                             "DeployIdempotencyHeader X-Gitea-Delivery")
            + webhook_target("gitlab", f"DeployToken file:{gitlab_token}",
                             'DeployFilter header:X-Gitlab-Event "^Push Hook$"',
                             "json:/checkout_sha", "DeployUnsignedUsers On")
            + target_block("signed_people", "{script}", f"DeploySecret file:{github_key}",
                           "DeployUnsignedUsers On")
            + target_block("signed_only", "{script}", f"DeploySecret file:{github_key}")
            + target_block("by_query", "{script}", "DeployParam commit ^[0-9a-f]{40}$",
                           "DeployParamFrom commit query:sha")
            + f"<Location {PEOPLE}>\n    SetHandler deploy\n</Location>\n"
            + basic_auth_location(PEOPLE, htpasswd)).replace("{script}", script)
    return make_module_httpd(setup=setup, name="webhooks")


def post(env, path, payload, headers, base=BASE):
    body = payload if isinstance(payload, bytes) else json.dumps(payload, indent=2).encode()
    h = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    h.update(headers)
    return env.request("POST", f"{base}/targets/{path}", body, h)


def github_headers(event, body, key=GITHUB_KEY):
    return {"User-Agent": "GitHub-Hookshot/044aadd", "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()), "X-GitHub-Hook-ID": "30",
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-Hub-Signature-256": hub_signature(key, body)}


def github(env, event, payload, key=GITHUB_KEY, base=BASE, headers=None):
    body = json.dumps(payload, indent=2).encode()
    h = github_headers(event, body, key)
    h.update(headers or {})
    return post(env, "github", body, {k: v for k, v in h.items() if v is not None}, base)


def gitea(env, payload, key=GITEA_KEY, delivery=None):
    body = json.dumps(payload).encode()
    delivery = delivery or str(uuid.uuid4())
    digest = hub_signature(key, body).removeprefix("sha256=")
    return post(env, "gitea", body, {
        "User-Agent": "Go-http-client/1.1",
        "X-GitHub-Delivery": delivery, "X-GitHub-Event": "push", "X-GitHub-Event-Type": "push",
        "X-Gitea-Delivery": delivery, "X-Gitea-Event": "push", "X-Gitea-Event-Type": "push",
        "X-Gitea-Signature": digest, "X-Gogs-Event": "push", "X-Gogs-Signature": digest,
        "X-Hub-Signature": hub_signature(key, body).replace("sha256=", "sha1="),
        "X-Hub-Signature-256": "sha256=" + digest})


def gitlab(env, payload, token=GITLAB_TOKEN, event="Push Hook", key=None):
    body = json.dumps(payload).encode()
    # GitLab 17.4 and later send Idempotency-Key, the same on every retry.
    headers = {"User-Agent": "GitLab/17.6.0", "X-Gitlab-Event": event,
               "Idempotency-Key": key or str(uuid.uuid4()),
               "X-Gitlab-Event-UUID": str(uuid.uuid4()),
               "X-Gitlab-Webhook-UUID": "8a5c1b2e-2d0b-4e6a-9b62-2b3b5b9f0c11",
               "X-Gitlab-Instance": "https://gitlab.example"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return post(env, "gitlab", body, headers)


def counters(env):
    r = env.get(f"{BASE}/?auto")
    assert r.status == 200, r
    return {k: int(v) for k, v in re.findall(r"^(\w+): (\d+)$", r.text, re.M)}


def ignored_metric(env):
    r = env.get(f"{BASE}/metrics")
    found = re.findall(r'^deploy_submissions_total\{result="ignored",reason=""\} (\d+)$', r.text,
                       re.M)
    assert len(found) == 1, r.text
    return int(found[0])


class RecordsNothing:
    """Asserts that what happens inside creates and joins no job and counts
    `ignored` ignored submissions."""

    def __init__(self, env, ignored=0):
        self.env, self.ignored = env, ignored

    def __enter__(self):
        self.jobs = self.env.jobs()
        self.before = counters(self.env)
        self.metric = ignored_metric(self.env)
        return self

    def __exit__(self, kind, *_):
        if kind:
            return False
        after = counters(self.env)
        assert self.env.jobs() == self.jobs, "no job was created or changed"
        assert after["SubmissionsAccepted"] == self.before["SubmissionsAccepted"]
        assert after["SubmissionsCoalesced"] == self.before["SubmissionsCoalesced"]
        assert after["SubmissionsIgnored"] == self.before["SubmissionsIgnored"] + self.ignored
        assert ignored_metric(self.env) == self.metric + self.ignored
        return False


def deployed(env, r, commit):
    assert r.status == 202, r
    job = env.wait_finished(r.json()["id"], timeout=60)
    assert job["state"] == "succeeded", job
    assert job["params"] == {"commit": commit}, job
    assert env.log(job["id"]).text == f"deploying {commit}\n"
    return job


def assert_ignored(r, mentions):
    assert r.status == 200, r
    answer = r.json()
    assert answer["ignored"] is True and mentions in answer["message"], answer
    assert set(answer) == {"ignored", "message"}, answer


def assert_refused(r, status, code):
    assert r.status == status, r
    assert r.json()["error"] == code, r


# ----- GitHub -----

def test_a_github_push_to_main_deploys_its_after_commit(env):
    deployed(env, github(env, "push", GITHUB_PUSH), COMMIT)


def test_a_redelivery_returns_the_same_job_and_deploys_nothing_more(env):
    # GitHub's "Redeliver" sends the same X-GitHub-Delivery, body and signature.
    body = json.dumps(GITHUB_PUSH, indent=2).encode()
    headers = github_headers("push", body)
    first = post(env, "github", body, headers)
    job = deployed(env, first, COMMIT)
    again = post(env, "github", body, headers)
    assert again.status == 200, again
    assert again.json()["id"] == job["id"] and again.json()["duplicate"] is True
    assert again.json()["state"] == "succeeded"
    delivery = str(uuid.uuid4())
    tea = deployed(env, gitea(env, GITEA_PUSH, delivery=delivery), OTHER_COMMIT)
    tea_again = gitea(env, GITEA_PUSH, delivery=delivery)
    assert (tea_again.status, tea_again.json()["id"]) == (200, tea["id"])
    key = str(uuid.uuid4())
    lab = gitlab(env, GITLAB_PUSH, key=key)
    assert lab.status == 202, lab
    lab_again = gitlab(env, GITLAB_PUSH, key=key)
    assert (lab_again.status, lab_again.json()["id"]) == (200, lab.json()["id"])
    assert lab_again.json()["duplicate"] is True
    # Nothing left running for the next test of the shared server to see change.
    assert env.wait_finished(lab.json()["id"], timeout=60)["state"] == "succeeded"


def test_a_github_ping_is_answered_ignored_and_records_nothing(env):
    with RecordsNothing(env, ignored=1):
        assert_ignored(github(env, "ping", GITHUB_PING), "X-GitHub-Event")


def test_a_github_push_to_another_branch_is_ignored(env):
    push = dict(GITHUB_PUSH, ref="refs/heads/feature/login")
    with RecordsNothing(env, ignored=1):
        assert_ignored(github(env, "push", push), "json:/ref")
    # The filter matches the whole value: a branch whose name starts with main is another.
    with RecordsNothing(env, ignored=1):
        assert_ignored(github(env, "push", dict(GITHUB_PUSH, ref="refs/heads/main-old")),
                       "json:/ref")


def test_a_github_push_with_a_wrong_or_no_signature_is_refused(env):
    with RecordsNothing(env):
        assert_refused(github(env, "push", GITHUB_PUSH, key=b"another key"), 403, "bad_signature")
        assert_refused(github(env, "push", GITHUB_PUSH, headers={"X-Hub-Signature-256": None}),
                       403, "bad_signature")
        # Even a delivery the filters would ignore must be signed.
        assert_refused(github(env, "ping", GITHUB_PING, key=b"another key"), 403, "bad_signature")


def test_a_push_whose_commit_fails_its_pattern_is_invalid_param(env):
    with RecordsNothing(env):
        assert_refused(github(env, "push", dict(GITHUB_PUSH, after="main; reboot")), 400,
                       "invalid_param")
        push = copy.deepcopy(GITHUB_PUSH)
        push["after"] = {"sha": COMMIT}
        assert_refused(github(env, "push", push), 400, "invalid_param")


def test_a_payload_nested_too_deep_or_with_a_duplicate_key_is_bad_request(env):
    with RecordsNothing(env):
        deep = json.dumps(GITHUB_PUSH)[:-1] + ', "x": ' + "[" * 64 + "]" * 64 + "}"
        assert_refused(github_raw(env, deep.encode()), 400, "bad_request")
        duplicate = json.dumps(GITHUB_PUSH)[:-1] + f', "after": "{OTHER_COMMIT}"}}'
        assert_refused(github_raw(env, duplicate.encode()), 400, "bad_request")
    # 63 arrays inside the payload's object: 64 levels, accepted.
    ok = json.dumps(GITHUB_PUSH)[:-1] + ', "x": ' + "[" * 63 + "]" * 63 + "}"
    deployed(env, github_raw(env, ok.encode()), COMMIT)


def github_raw(env, body):
    return post(env, "github", body, github_headers("push", body))


def test_a_query_string_is_refused_unless_a_query_source_reads_it(env):
    body = json.dumps(GITHUB_PUSH).encode()
    with RecordsNothing(env):
        r = env.request("POST", f"{BASE}/targets/github?commit={OTHER_COMMIT}", body,
                        dict(github_headers("push", body), **{"Content-Type": "application/json"}))
        assert_refused(r, 400, "bad_request")
        assert "query string" in r.json()["message"]
    r = env.request("POST", f"{BASE}/targets/by_query?sha={OTHER_COMMIT}", b"",
                    {"Content-Length": "0"})
    deployed(env, r, OTHER_COMMIT)


# ----- Gitea -----

def test_a_gitea_push_to_main_deploys_its_after_commit(env):
    deployed(env, gitea(env, GITEA_PUSH), OTHER_COMMIT)


def test_a_gitea_push_to_another_branch_is_ignored_and_a_wrong_signature_refused(env):
    with RecordsNothing(env, ignored=1):
        assert_ignored(gitea(env, dict(GITEA_PUSH, ref="refs/heads/develop")), "json:/ref")
    with RecordsNothing(env):
        assert_refused(gitea(env, GITEA_PUSH, key=GITHUB_KEY), 403, "bad_signature")


# ----- GitLab -----

def test_a_gitlab_push_with_its_token_deploys_its_checkout_sha(env):
    deployed(env, gitlab(env, GITLAB_PUSH), COMMIT)


def test_a_gitlab_push_with_a_wrong_or_no_token_is_refused(env):
    with RecordsNothing(env):
        for token in (GITLAB_TOKEN + "x", GITLAB_TOKEN[:-1], "", GITLAB_TOKEN.upper(), None):
            assert_refused(gitlab(env, GITLAB_PUSH, token=token), 403, "bad_signature")
        # A signature is not the token.
        body = json.dumps(GITLAB_PUSH).encode()
        r = post(env, "gitlab", body, {"X-Gitlab-Event": "Push Hook",
                                       "X-Hub-Signature-256": hub_signature(GITHUB_KEY, body)})
        assert_refused(r, 403, "bad_signature")


def test_gitlab_tag_pushes_and_other_branches_are_ignored(env):
    with RecordsNothing(env, ignored=2):
        tag = dict(GITLAB_PUSH, object_kind="tag_push", event_name="tag_push",
                   ref="refs/tags/v1.0.0")
        assert_ignored(gitlab(env, tag, event="Tag Push Hook"), "X-Gitlab-Event")
        assert_ignored(gitlab(env, dict(GITLAB_PUSH, ref="refs/heads/develop")), "json:/ref")


def test_a_cancel_of_a_gitlab_job_needs_the_token_too(env):
    job = deployed(env, gitlab(env, GITLAB_PUSH), COMMIT)
    cancel = f"{BASE}/jobs/{job['id']}/cancel"
    r = env.request("POST", cancel, b"", {"Content-Length": "0"})
    assert_refused(r, 403, "bad_signature")
    r = env.request("POST", cancel, b"", {"Content-Length": "0", "X-Gitlab-Token": "wrong"})
    assert_refused(r, 403, "bad_signature")
    # With the token the cancel gets past authorization: the job has finished.
    r = env.request("POST", cancel, b"", {"Content-Length": "0", "X-Gitlab-Token": GITLAB_TOKEN})
    assert_refused(r, 409, "conflict")
    # A user httpd authenticated, with DeployUnsignedUsers On, needs no token.
    r = env.request("POST", f"{PEOPLE}/jobs/{job['id']}/cancel", b"",
                    dict(basic_credentials(USER, PASSWORD), **{"Content-Length": "0"}))
    assert_refused(r, 409, "conflict")


# ----- people: DeployUnsignedUsers -----

def test_an_authenticated_user_may_leave_the_signature_out_but_not_send_a_wrong_one(env):
    alice = basic_credentials(USER, PASSWORD)
    r = github(env, "push", GITHUB_PUSH, base=PEOPLE,
               headers=dict(alice, **{"X-Hub-Signature-256": None}))
    job = deployed(env, r, COMMIT)
    assert job["submitted_by"] == USER
    with RecordsNothing(env):
        r = github(env, "push", GITHUB_PUSH, key=b"wrong", base=PEOPLE, headers=alice)
        assert_refused(r, 403, "bad_signature")
        # Anonymous, through the base without a password: the signature is needed.
        r = github(env, "push", GITHUB_PUSH, headers={"X-Hub-Signature-256": None})
        assert_refused(r, 403, "bad_signature")
        # A signed target without DeployUnsignedUsers: even alice must sign.
        r = env.request("POST", f"{PEOPLE}/targets/signed_only", b"",
                        dict(alice, **{"Content-Length": "0"}))
        assert_refused(r, 403, "bad_signature")
    r = env.request("POST", f"{PEOPLE}/targets/signed_people", b"",
                    dict(alice, **{"Content-Length": "0"}))
    assert r.status == 202, r
    assert env.wait_finished(r.json()["id"], timeout=60)["state"] == "succeeded"


def test_the_targets_listing_marks_signed_targets(env):
    signed = {t["name"]: t["signed"] for t in env.get(f"{BASE}/targets").json()}
    assert signed == {"github": True, "gitea": True, "gitlab": True, "signed_people": True,
                      "signed_only": True, "by_query": False}


def dashboard_rows(env, base, headers=None):
    r = env.get(f"{base}/", headers)
    assert r.status == 200, r
    rows = {}
    for row in re.findall(r'<tr data-target="[^"]+".*?</tr>', r.text, re.S):
        name = re.match(r'<tr data-target="([^"]+)"', row).group(1)
        rows[name] = {"signed": 'data-signed="true"' in row,
                      "form": 'class="deploy"' in row}
    return rows


def test_the_dashboard_offers_a_deploy_form_only_where_it_can_succeed(env):
    anonymous = dashboard_rows(env, BASE)
    alice = dashboard_rows(env, PEOPLE, basic_credentials(USER, PASSWORD))
    for rows in (anonymous, alice):
        assert {n for n, row in rows.items() if row["signed"]} == {
            "github", "gitea", "gitlab", "signed_people", "signed_only"}
    # Filtered targets take only the forges' deliveries; a browser cannot sign.
    assert {n for n, row in anonymous.items() if row["form"]} == {"by_query"}
    assert {n for n, row in alice.items() if row["form"]} == {"by_query", "signed_people"}
