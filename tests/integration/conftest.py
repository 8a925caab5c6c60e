"""Fixtures: httpd servers started per test (or per module) and torn down with checks.

At teardown every server is stopped by its pid, the processes still using its
directory are killed by pid, and the test fails when error_log holds a line at
level error or worse, a sanitizer report or a crashed child that the test did
not declare with env.expect_error(regex).
"""

import os
import sys

import pytest

# tests/: the harness package (tests/harness); tests/integration: the test
# modules that import each other (test_job_json_fields.parse_time...).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(1, os.path.dirname(os.path.abspath(__file__)))

from harness import httpd_env  # noqa: E402
from harness.httpd_env import HttpdEnv  # noqa: E402

_live_envs = []


def pytest_report_header(config):
    return [f"mod_deploy build dir: {httpd_env.BUILD_DIR}",
            f"LD_PRELOAD for httpd: {os.environ.get('DEPLOY_LD_PRELOAD') or '-'}",
            f"running as root: {httpd_env.RUNNING_AS_ROOT}"]


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


_module_load_error = {}


def _require_module():
    """Fails the test at once, with httpd's own words, when mod_deploy.so is
    missing or cannot be loaded (instead of a cascade of unrelated failures)."""
    if not httpd_env.module_available():
        pytest.fail(f"{httpd_env.BUILD_DIR}/mod_deploy.so is missing or does not export "
                    f"deploy_module (set DEPLOY_BUILD_DIR or build first)", pytrace=False)
    so = os.path.join(httpd_env.BUILD_DIR, "mod_deploy.so")
    key = os.stat(so).st_mtime_ns
    if key not in _module_load_error:
        probe = HttpdEnv(name="load-probe")
        try:
            rc, out = probe.configtest("")
        finally:
            probe.cleanup()
        _module_load_error[key] = out if rc != 0 and "Cannot load" in out else None
    if _module_load_error[key]:
        pytest.fail(f"httpd cannot load {so}:\n{_module_load_error[key]}", pytrace=False)


def _test_failed(node):
    rep = getattr(node, "rep_call", None)
    return rep is None or rep.failed


def _shut_down(env, test_passed):
    """Stops env and returns the problems found (strings)."""
    problems = []
    # Graceful: SIGTERM races inside httpd's event MPM (see HttpdEnv.stop).
    message = env.stop(graceful=True)
    if message:
        problems.append(message)
    leftovers = []
    if test_passed:
        # Runners and jobs end soon after their job; anything beyond that is a leak.
        try:
            httpd_env.wait_for(lambda: not env.leftover_processes(), 5,
                               "processes of the test to exit after httpd stopped")
        except AssertionError:
            for pid in env.leftover_processes():
                cmd = httpd_env._read_proc(pid, "cmdline").replace(b"\0", b" ").decode(errors="replace")
                leftovers.append(f"pid {pid}: {cmd}")
    survivors = env.kill_leftovers()
    if leftovers:
        problems.append("processes outlived httpd and their jobs (killed):\n  " + "\n  ".join(leftovers))
    if survivors:
        problems.append(f"processes survived SIGKILL: {survivors}")
    problems += env.check_error_log()
    return problems


def _finish(envs, node):
    passed = not _test_failed(node)
    problems = []
    for env in envs:
        env_problems = _shut_down(env, passed)
        if env_problems:
            problems.append(f"[{env.dir}]\n" + "\n".join(env_problems))
    keep = problems or not passed or os.environ.get("DEPLOY_KEEP_DIRS")
    for env in envs:
        if env in _live_envs:
            _live_envs.remove(env)
        if keep:
            sys.stderr.write(f"\nkept server dir: {env.dir}\n")
        else:
            env.cleanup()
    if problems:
        pytest.fail("teardown found problems:\n" + "\n".join(problems), pytrace=False)


def _make_factory(envs, needs_module_default=True):
    def make(fragment="", mpm="event", server_config="", start=True, load_deploy=True,
             prepare_state_dir=True, location=True, name="httpd", setup=None):
        """Creates (and by default starts) an httpd.

        fragment: config after the module is loaded (DeployTarget blocks...).
        setup: a function called with the env before start (write scripts, files)."""
        if load_deploy and needs_module_default:
            _require_module()
        env = HttpdEnv(mpm=mpm, fragment=fragment, server_config=server_config,
                       load_deploy=load_deploy, location=location, name=name)
        envs.append(env)
        _live_envs.append(env)
        if prepare_state_dir and load_deploy:
            env.prepare_state_dir()
        if setup:
            setup(env)
        if start:
            env.start()
        return env
    return make


@pytest.fixture
def make_httpd(request):
    """Factory of httpd servers that live for one test."""
    envs = []
    yield _make_factory(envs)
    _finish(envs, request.node)


class _ModuleNode:
    rep_call = type("Passed", (), {"failed": False})()


@pytest.fixture(scope="module")
def make_module_httpd(request):
    """Factory of httpd servers shared by the tests of one module."""
    envs = []
    yield _make_factory(envs)
    _finish(envs, _ModuleNode)


@pytest.fixture(autouse=True)
def _error_log_guard():
    """Checks shared servers' error_log after each test (per-test servers are
    checked by their own teardown) and forgets the errors the test expected."""
    yield
    problems = []
    for env in list(_live_envs):
        found = env.check_error_log()
        env.expected_errors.clear()
        if found:
            problems.append(f"[{env.dir}]\n" + "\n".join(found))
    if problems:
        pytest.fail("error_log holds unexpected problems:\n" + "\n".join(problems), pytrace=False)
