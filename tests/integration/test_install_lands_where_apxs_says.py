"""`cmake --install` puts mod_deploy.so and deploy-runner where `apxs -q
LIBEXECDIR` says (under DESTDIR, whatever the prefix), the programs under the
prefix, and on Debian the a2enmod files into SYSCONFDIR/mods-available; an
httpd then loads the installed module with the installed Debian
configuration and runs a job with the runner installed beside it."""

import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from harness.httpd_env import BUILD_DIR, DEBIAN_MODULES_DIR

PREFIX = "/opt/mod_deploy-test"


def apxs(variable):
    out = subprocess.run(["apxs", "-q", variable], capture_output=True, text=True, check=True)
    return out.stdout.strip()


LIBEXEC_DIR = apxs("LIBEXECDIR")
SYSCONF_DIR = apxs("SYSCONFDIR")
DEBIAN = os.path.isdir(os.path.join(SYSCONF_DIR, "mods-available"))


def staged(destdir, path):
    return destdir + path


@pytest.fixture(scope="module")
def destdir():
    """A staging directory filled by `cmake --install BUILD --prefix PREFIX`
    with DESTDIR; traversable by the httpd user, which runs the runner."""
    directory = tempfile.mkdtemp(prefix="mod_deploy-install-", dir="/tmp")
    os.chmod(directory, 0o755)
    result = subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", PREFIX],
                            env=dict(os.environ, DESTDIR=directory),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"cmake --install failed:\n{result.stdout}{result.stderr}"
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def installed_files(directory):
    found = []
    for root, _, files in os.walk(directory):
        found += [os.path.join(root, f)[len(directory):] for f in files]
    return sorted(found)


def is_executable_file(path):
    mode = os.stat(path).st_mode
    return stat.S_ISREG(mode) and mode & 0o111 == 0o111


def test_module_and_runner_land_in_apxs_libexecdir_under_destdir(destdir):
    assert os.path.isabs(LIBEXEC_DIR), LIBEXEC_DIR
    module = staged(destdir, f"{LIBEXEC_DIR}/mod_deploy.so")
    runner = staged(destdir, f"{LIBEXEC_DIR}/deploy-runner")
    assert os.path.isfile(module), installed_files(destdir)
    assert is_executable_file(runner), oct(os.stat(runner).st_mode)
    # The prefix does not move the module: nothing of it lands under PREFIX.
    assert not any(f.endswith(("mod_deploy.so", "deploy-runner"))
                   for f in installed_files(staged(destdir, PREFIX)))


def test_programs_land_under_the_prefix(destdir):
    for program in ("bin/deployctl", "bin/deploy-wait-tcp", "share/mod_deploy/example-deploy",
                    "share/mod_deploy/stubs/govc"):
        assert is_executable_file(staged(destdir, f"{PREFIX}/{program}")), program


def test_nothing_lands_outside_the_module_dir_the_prefix_and_the_config_dir(destdir):
    roots = (LIBEXEC_DIR + "/", PREFIX + "/", SYSCONF_DIR + "/")
    strays = [f for f in installed_files(destdir) if not f.startswith(roots)]
    assert not strays, strays


@pytest.mark.skipif(not DEBIAN, reason=f"{SYSCONF_DIR}/mods-available missing: not Debian's layout")
def test_debian_a2enmod_files_name_the_installed_module(destdir):
    mods = staged(destdir, f"{SYSCONF_DIR}/mods-available")
    with open(os.path.join(mods, "deploy.load")) as f:
        load = f.read()
    load_lines = [line for line in load.splitlines() if line.startswith("LoadModule")]
    assert load_lines == [f"LoadModule deploy_module {LIBEXEC_DIR}/mod_deploy.so"], load
    with open(os.path.join(mods, "deploy.conf")) as f:
        conf = f.read()
    assert "SetHandler deploy" in conf and "Require local" in conf, conf


@pytest.mark.skipif(not DEBIAN, reason=f"{SYSCONF_DIR}/mods-available missing: not Debian's layout")
def test_httpd_loads_the_installed_module_and_runs_a_job_with_the_installed_runner(
        destdir, make_httpd):
    module = staged(destdir, f"{LIBEXEC_DIR}/mod_deploy.so")
    runner = staged(destdir, f"{LIBEXEC_DIR}/deploy-runner")
    mods = staged(destdir, f"{SYSCONF_DIR}/mods-available")

    def setup(env):
        env.prepare_state_dir()
        # The job's parent is the runner: it tells which one ran the job.
        script = env.write_script("which-runner", "#!/bin/sh\n"
                                  "echo \"runner: $(readlink /proc/$PPID/exe)\"\n")
        # As a2enmod would: the installed deploy.load's module, from DESTDIR,
        # and the installed deploy.conf (its Location with Require local).
        env.fragment = "\n".join([
            "<IfModule !authz_host_module>",
            f"    LoadModule authz_host_module {DEBIAN_MODULES_DIR}/mod_authz_host.so",
            "</IfModule>",
            f'LoadModule deploy_module "{module}"',
            f'Include "{mods}/deploy.conf"',
            f'DeployStateDir "{env.state_dir}"',  # instead of /var/lib/apache2/deploy
            "<DeployTarget installed>",
            f"    DeployCommand {script}",
            "</DeployTarget>",
        ])
    env = make_httpd(load_deploy=False, location=False, setup=setup, name="installed")

    job = env.submit_ok("installed")
    final = env.wait_finished(job["id"], timeout=30)
    log = env.log(job["id"]).text
    assert final["state"] == "succeeded", f"{final}\n{log}"
    assert log == f"runner: {runner}\n"
    assert env.get("/deploy/").status == 200  # the dashboard, allowed by Require local
