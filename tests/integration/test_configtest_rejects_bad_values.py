"""`apache2 -t` fails on a bad directive value with a message naming the
directive and the value; good configurations pass."""

import pytest

from harness.httpd_env import HTTPD_USER, RUNNING_AS_ROOT, target_block

OK = "/bin/true"


@pytest.fixture(scope="module")
def env(make_module_httpd):
    env = make_module_httpd(start=False, name="configtest")
    env.secret = env.write_file("conf/secret", "key\n", 0o600)
    return env


def in_target(*lines, name="webapp", command=OK):
    return target_block(name, command, *lines)


BAD = [
    # (id, fragment, server-level config, words the message must name)
    ("duration with unknown unit", in_target("DeployTimeout 5x"), "", ["DeployTimeout", "5x"]),
    ("negative duration", in_target("DeployKillGrace -1"), "", ["DeployKillGrace", "-1"]),
    ("duration not a number", in_target("DeployQueueTimeout soon"), "",
     ["DeployQueueTimeout", "soon"]),
    ("server-level duration", in_target(), "DeployTimeout 5x", ["DeployTimeout", "5x"]),
    ("wait duration", in_target("DeployWaitChangeNotification 3parsecs"), "",
     ["DeployWaitChangeNotification", "3parsecs"]),
    ("events timeout", in_target(), "DeployEventsTimeout -5", ["DeployEventsTimeout", "-5"]),
    ("max running not a count", in_target(), "DeployMaxRunning abc", ["DeployMaxRunning", "abc"]),
    ("max running negative", in_target(), "DeployMaxRunning -1", ["DeployMaxRunning", "-1"]),
    ("history not a count", in_target(), "DeployHistory 10x", ["DeployHistory", "10x"]),
    ("queue limit not a count", in_target(), "DeployQueueLimit many", ["DeployQueueLimit", "many"]),
    ("concurrency not a count", in_target("DeployConcurrency abc"), "",
     ["DeployConcurrency", "abc"]),
    ("max body not a size", in_target(), "DeployMaxBody huge", ["DeployMaxBody", "huge"]),
    ("target name with a slash", in_target(name="web/app"), "", ["web/app"]),
    ("target name starting with a dot", in_target(name=".hidden"), "", [".hidden"]),
    ("target name too long", in_target(name="a" * 65), "", ["a" * 65]),
    ("target without DeployCommand", "<DeployTarget lonely>\n    DeployTimeout 5\n</DeployTarget>\n",
     "", ["lonely", "DeployCommand"]),
    ("duplicate target", in_target() + in_target(), "", ["webapp"]),
    ("relative DeployCommand", "<DeployTarget webapp>\n    DeployCommand bin/deploy.sh\n"
                               "</DeployTarget>\n", "", ["DeployCommand", "bin/deploy.sh"]),
    ("bad regex", in_target("DeployParam version ^[0-9+$"), "", ["DeployParam", "^[0-9+$"]),
    ("bad parameter name", in_target("DeployParam 9lives .*"), "", ["DeployParam", "9lives"]),
    ("max wait smaller than wait", in_target("DeployWaitChangeNotification 10",
                                             "DeployMaxWaitChangeNotification 5"), "",
     ["DeployMaxWaitChangeNotification"]),
    ("secret file missing", in_target("DeploySecret file:/nonexistent/secret"), "",
     ["DeploySecret", "/nonexistent/secret"]),
    ("secret of unknown kind", in_target("DeploySecret vault:deploy"), "",
     ["DeploySecret", "vault:deploy"]),
    ("DeployParamFrom of an undeclared parameter", in_target("DeployParamFrom commit json:/after"),
     "", ["DeployParamFrom", "commit", "DeployParam"]),
    ("DeployParamFrom of an unknown source", in_target("DeployParam commit .*",
                                                      "DeployParamFrom commit body:/after"), "",
     ["DeployParamFrom", "body:/after"]),
    ("DeployParamFrom of a pointer without a slash",
     in_target("DeployParam commit .*", "DeployParamFrom commit json:after"), "",
     ["DeployParamFrom", "json:after"]),
    ("DeployParamFrom of an empty pointer",
     in_target("DeployParam commit .*", "DeployParamFrom commit json:"), "",
     ["DeployParamFrom", "json:"]),
    ("DeployParamFrom of a bad header name",
     in_target("DeployParam event .*", 'DeployParamFrom event "header:X Event"'), "",
     ["DeployParamFrom", "header:X Event"]),
    ("DeployParamFrom twice for one parameter",
     in_target("DeployParam commit .*", "DeployParamFrom commit json:/after",
               "DeployParamFrom commit query:sha"), "", ["DeployParamFrom", "commit"]),
    ("DeployParamFrom at server level", in_target(), "DeployParamFrom commit json:/after",
     ["DeployParamFrom", "<DeployTarget>"]),
    ("DeployFilter with a bad regex", in_target("DeployFilter json:/ref (main"), "",
     ["DeployFilter", "(main"]),
    ("DeployFilter of an unknown source", in_target("DeployFilter post:ref main"), "",
     ["DeployFilter", "post:ref"]),
    ("DeployFilter at server level", in_target(), "DeployFilter json:/ref main",
     ["DeployFilter", "<DeployTarget>"]),
    ("token file missing", in_target("DeployToken file:/nonexistent/token"), "",
     ["DeployToken", "/nonexistent/token"]),
    ("token of unknown kind", in_target("DeployToken vault:gitlab"), "",
     ["DeployToken", "vault:gitlab"]),
    ("DeployUnsignedUsers neither on nor off", in_target("DeployUnsignedUsers maybe"), "",
     ["DeployUnsignedUsers"]),
    ("server-wide directive in a target", in_target("DeployMaxRunning 2"), "",
     ["DeployMaxRunning"]),
    ("unknown DeployUser", in_target("DeployUser no-such-user-here"), "",
     ["DeployUser", "no-such-user-here"]),
    ("DeployUser root", in_target("DeployUser root"), "", ["DeployUser", "root", "uid 0"]),
    ("DeployUser uid 0 at server level", in_target(), "DeployUser root",
     ["DeployUser", "root"]),
    ("unknown DeployUser group", in_target("DeployUser nobody no-such-group-here"), "",
     ["DeployUser", "no-such-group-here"]),
    ("DeployUser group root", in_target("DeployUser nobody root"), "",
     ["DeployUser", "root", "gid 0"]),
    ("DeployUser with three words", in_target("DeployUser nobody nogroup extra"), "",
     ["DeployUser"]),
    ("DeployGroupBy of an undeclared parameter",
     in_target(r"DeployParam version ^[0-9.]+$", "DeployGroupBy vm"), "",
     ["DeployGroupBy", "vm", "webapp"]),
    ("DeployGroupBy at server level, a target without the parameter", in_target(),
     "DeployGroupBy vm", ["DeployGroupBy", "vm", "webapp"]),
    ("DeployGroupBy with a bad name", in_target("DeployGroupBy 9vm"), "",
     ["DeployGroupBy", "9vm"]),
    ("sync neither on nor off", in_target(), "DeploySync sometimes", ["DeploySync"]),
    ("sync in a target", in_target("DeploySync off"), "", ["DeploySync"]),
    ("DeployNotify of another scheme", in_target("DeployNotify ftp://127.0.0.1/hook"), "",
     ["DeployNotify", "invalid URL"]),
    ("DeployNotify without a host", in_target("DeployNotify http:///hook"), "",
     ["DeployNotify", "invalid URL"]),
    ("DeployNotify relative", in_target("DeployNotify /hooks/deployed"), "",
     ["DeployNotify", "invalid URL"]),
    ("DeployNotify too long", in_target("DeployNotify http://127.0.0.1/" + "a" * 2048), "",
     ["DeployNotify", "at most 2048"]),
    # Eight are allowed: the server level's count with the target's.
    ("nine DeployNotify URLs", in_target(*[f"DeployNotify http://127.0.0.1/{i}" for i in range(6)]),
     "\n".join(f"DeployNotify http://127.0.0.1/s{i}" for i in range(3)),
     ["webapp", "9 DeployNotify URLs", "at most 8"]),
]


if RUNNING_AS_ROOT:  # the harness names User only then
    BAD.append(("DeployUser is httpd's User", in_target(f"DeployUser {HTTPD_USER}"), "",
                ["DeployUser", HTTPD_USER, "webapp", "httpd's User"]))


@pytest.mark.parametrize("where", ["target", "server"])
def test_a_secret_and_a_token_together_fail_configtest(env, where):
    both = [f"DeploySecret file:{env.secret}", f"DeployToken file:{env.secret}"]
    fragment, server = ((in_target(*both), "") if where == "target"
                        else (in_target(), "\n".join(both)))
    rc, out = env.configtest(fragment, server)
    assert rc != 0, f"configtest passed:\n{out}"
    for word in ("DeploySecret", "DeployToken", "webapp" if where == "target" else "server"):
        assert word in out, f"message does not name {word!r}:\n{out}"


@pytest.mark.sanitize
@pytest.mark.parametrize("case,fragment,server,words", BAD, ids=[c[0] for c in BAD])
def test_bad_value_fails_configtest_naming_directive_and_value(env, case, fragment, server, words):
    rc, out = env.configtest(fragment, server)
    assert rc != 0, f"configtest passed:\n{out}"
    for word in words:
        assert word in out, f"message does not name {word!r}:\n{out}"


def test_good_configuration_passes(env):
    fragment = (target_block("webapp", f"{OK} --env prod",
                             r"DeployParam version ^[0-9][0-9A-Za-z.+-]{0,63}$",
                             "DeployTimeout 5mi", "DeployKillGrace 500ms",
                             "DeployQueueTimeout 1h", "DeployWaitChangeNotification 5",
                             "DeployMaxWaitChangeNotification 30", "DeployConcurrency 0",
                             "DeployEnv STAGE prod", "DeployWorkingDirectory /tmp",
                             f"DeploySecret file:{env.secret}")
                + target_block("a" * 64, OK, "DeployWaitChangeNotification 5",
                               "DeployMaxWaitChangeNotification 5")
                + target_block("Web_app-2.x", OK)
                + target_block("as-nobody", OK, "DeployUser nobody nogroup")
                + target_block("vms", OK, "DeployParam vm ^[a-z]+$", "DeployGroupBy vm")
                # A target's own token replaces the server-level secret.
                + target_block("gitlab", OK, f"DeployToken file:{env.secret}",
                               "DeployUnsignedUsers on", "DeployParam commit ^[0-9a-f]{40}$",
                               "DeployParam event .*", "DeployParam sha .*",
                               "DeployParamFrom commit json:/checkout_sha",
                               "DeployParamFrom event header:X-Gitlab-Event",
                               "DeployParamFrom sha query:sha",
                               'DeployFilter header:X-Gitlab-Event "^Push Hook$"',
                               "DeployFilter json:/ref ^refs/heads/main$")
                # Eight notification URLs with the server level's three.
                + target_block("notified", OK,
                               *[f"DeployNotify https://127.0.0.1:8443/t{i}" for i in range(5)]))
    server = ("DeployHistory 10\nDeployMaxRunning 2\nDeployQueueLimit 5\nDeployMaxBody 64k\n"
              "DeployEventsTimeout 30s\nDeployTimeout 120\nDeployEnv SHARED 1\n"
              "DeployParam shared .*\nDeployUser nobody\n"
              f"DeploySecret file:{env.secret}\nDeployUnsignedUsers Off\n"
              "DeploySync off\n"
              + "".join(f"DeployNotify http://127.0.0.1/s{i}\n" for i in range(3)))
    rc, out = env.configtest(fragment, server)
    assert rc == 0, out
    assert "Syntax OK" in out
