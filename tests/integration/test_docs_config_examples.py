"""Every httpd configuration example of docs/*.md that holds a <Location> or
a <DeployTarget> section runs in a real httpd: it passes configtest, httpd
starts with it, and it answers requests as the page says (401 without a
password when the example asks for one, the example's targets with it). So
the docs cannot drift from the module's directives again.

Only what names this machine's files is changed: the programs, password and
key files, and the state directory become the test's own; `LoadModule
deploy_module` and `DeployStateDir` are the harness's. Examples that only
refine the previous one on their page (a <Location> under /deploy without
SetHandler) are run together with it. examples/django-portal's apache conf,
shown whole in django-migration.md, runs in test_django_portal.py."""

import glob
import os
import re

import pytest

from harness import httpd_env
from harness.httpd_env import BASE, REPO_DIR, basic_credentials, sha_htpasswd_line
from test_django_portal import indented_blocks

USER, PASSWORD = "alice", "s3cret"
# Directives of the examples that need a module the harness does not load.
MODULES_FOR = {r"Require\s+group|AuthGroupFile": "authz_groupfile", r"Require\s+ip": "authz_host",
               r"SetEnv\b": "env"}

def config_examples():
    """(page:line, text) of every configuration example with a section of
    mod_deploy's, the refining ones joined to the one before them."""
    examples = []
    for page in sorted(glob.glob(os.path.join(REPO_DIR, "docs", "*.md"))):
        markdown = open(page).read()
        previous = None
        for block in indented_blocks(markdown):
            if not re.search(r"^\s*</(Location|DeployTarget)>", block, re.M):
                continue
            if block.startswith("# examples/django-portal/"):
                continue
            line = markdown[:markdown.index(block.split("\n")[0])].count("\n") + 1
            name = f"{os.path.basename(page)}:{line}"
            refines = (previous is not None and "SetHandler deploy" not in block
                       and "<DeployTarget" not in block
                       and all(p.startswith(BASE) for p in re.findall(r"<Location\s+(\S+?)>", block)))
            if refines:
                examples[-1] = (f"{examples[-1][0]}+{line}", examples[-1][1] + "\n" + block)
            else:
                examples.append((name, block))
            previous = block
    return examples

EXAMPLES = config_examples()

def localized(env, text):
    """The example with this machine's paths replaced by the test's own."""
    program = env.write_script("deploy.sh", "#!/bin/sh\necho \"deploying $DEPLOY_PARAM_VERSION\"\n")
    htpasswd = env.write_file("conf/htpasswd", sha_htpasswd_line(USER, PASSWORD))
    groups = env.write_file("conf/groups", f"ops: {USER}\n")
    key = env.write_file("conf/deploy.key", "k3y\n", 0o644)
    secret = env.write_file("conf/deploy.secret", "s3cret-value\n", 0o600)
    lines = []
    for line in text.split("\n"):
        words = line.split()
        if words[:2] == ["LoadModule", "deploy_module"] or words[:1] == ["DeployStateDir"]:
            continue
        if words[:1] == ["LoadModule"] and (
                words[1].removesuffix("_module") in httpd_env.SUPPORT_MODULES
                or f"mod_{words[1].removesuffix('_module')}.c" in httpd_env.compiled_in_modules()):
            continue
        line = re.sub(r"(DeployCommand\s+)/\S+", rf"\g<1>{program}", line)
        line = re.sub(r"(AuthUserFile\s+)\S+", rf'\g<1>"{htpasswd}"', line)
        line = re.sub(r"(Deploy(?:Secret|Token|NotifySecret)\s+file:)\S+", rf"\g<1>{key}", line)
        line = re.sub(r"(DeploySecretEnv\s+\S+\s+file:)\S+", rf"\g<1>{secret}", line)
        # A user every Debian machine has (the examples' users need not exist).
        line = re.sub(r"^(\s*DeployUser\s+)\S+(\s+\S+)?", r"\g<1>nobody nogroup", line)
        lines.append(line)
    text = "\n".join(lines)
    if re.search(r"Require\s+group", text) and "AuthGroupFile" not in text:
        text = re.sub(r"(?m)^(\s*)(Require\s+group.*)$", rf'\1AuthGroupFile "{groups}"\n\1\2', text)
    loads = ""
    for pattern, module in MODULES_FOR.items():
        if (re.search(pattern, text) and f"{module}_module" not in text
                and f"mod_{module}.c" not in httpd_env.compiled_in_modules()):
            loads += f"LoadModule {module}_module {httpd_env.DEBIAN_MODULES_DIR}/mod_{module}.so\n"
    return loads + text + "\n"

def test_the_docs_have_configuration_examples_to_check():
    pages = {name.split(":")[0] for name, _ in EXAMPLES}
    assert {"README.md", "api.md", "directives.md", "install.md", "monitoring.md",
            "django-migration.md", "coalescing.md"} <= pages, sorted(pages)

@pytest.mark.parametrize("name,example", EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_a_configuration_example_of_the_docs_runs_in_httpd(make_httpd, name, example):
    if "DeployUser" in example and not httpd_env.RUNNING_AS_ROOT:
        pytest.skip("DeployUser needs httpd to start as root")

    def setup(env):
        env.fragment = localized(env, example)
        # The harness's <Location /deploy> only when the example has none.
        env.location = not re.search(rf"<Location\s+{BASE}>", example)
    env = make_httpd(setup=setup, start=False, name="docs-example")
    status, output = env.configtest()
    assert status == 0, f"{name}: configtest failed:\n{output}\n--- the example as run:\n{env.fragment}"
    env.start()
    asks_password = "AuthType" in example
    anonymous = env.get(f"{BASE}/targets")
    assert anonymous.status == (401 if asks_password else 200), (name, anonymous)
    answer = env.get(f"{BASE}/targets", basic_credentials(USER, PASSWORD))
    assert answer.status == 200, (name, answer)
    targets = re.findall(r"<DeployTarget\s+([^>\s]+)>", example)
    assert [t["name"] for t in answer.json()] == targets, name
    jobs = env.get(f"{BASE}/jobs", basic_credentials(USER, PASSWORD))
    assert jobs.status == 200 and jobs.json() == [], (name, jobs)
