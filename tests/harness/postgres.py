"""A throwaway PostgreSQL server for the cluster tests (scripts/throwaway-postgres:
its own directory, 127.0.0.1 and a socket there, run as the `postgres` user under
root), and the httpd nodes of a cluster that share it.

    with ThrowawayPostgres() as pg:        # started; always stopped at the end
        pg.conninfo                        # "host=127.0.0.1 port=… dbname=deploy …"
        pg.kill(); pg.start(); pg.restart()

`cluster_server_config(conninfo, name)` is the server-level configuration of one
node; `make_cluster(make_httpd, pg, n, setup)` starts n HttpdEnv nodes on free
ports, each with `DeployStore postgresql CONNINFO` and its own DeployNodeName."""

import os
import shutil
import subprocess
import tempfile

from .httpd_env import REPO_DIR, TIMEOUT_SCALE, free_port

SCRIPT = os.path.join(REPO_DIR, "scripts", "throwaway-postgres")


def postgres_available():
    """True when a PostgreSQL server can be run here (Debian's postgresql)."""
    root = "/usr/lib/postgresql"
    return os.path.isdir(root) and any(
        os.access(os.path.join(root, v, "bin", "initdb"), os.X_OK) for v in os.listdir(root))


class ThrowawayPostgres:
    """One PostgreSQL server in a temporary directory, stopped (and its directory
    removed) by stop(), whatever happened before."""

    def __init__(self, keep=False):
        self.dir = tempfile.mkdtemp(prefix="mod_deploy-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.keep = keep
        self.conninfo = None
        self._running = False

    def _run(self, command, timeout=60, *extra):
        result = subprocess.run([SCRIPT, command, self.dir, *extra], capture_output=True, text=True,
                                timeout=timeout * TIMEOUT_SCALE)
        if result.returncode != 0:
            raise AssertionError(f"throwaway-postgres {command} {self.dir} failed "
                                 f"(rc {result.returncode}):\n{result.stdout}{result.stderr}")
        return result.stdout.strip()

    def start(self):
        """initdb (the first time) and start; sets and returns conninfo."""
        # The port is the harness's (a slice per pytest worker); a later start
        # keeps the one written in the directory.
        port = [] if os.path.exists(os.path.join(self.dir, "port")) else [str(free_port())]
        out = self._run("start", 120, *port)
        self._running = True
        self.conninfo = out.splitlines()[-1] if out else self._run("conninfo")
        assert self.conninfo.startswith("host=127.0.0.1 "), self.conninfo
        return self.conninfo

    def restart(self):
        """Stop, then start on the same port (the conninfo stays valid)."""
        self._run("restart", timeout=120)
        self._running = True

    def kill(self):
        """SIGKILL of the postmaster and its children: a crash, no shutdown."""
        self._run("kill")
        self._running = False

    def shut_down(self):
        """Fast shutdown keeping the data: an outage; start() ends it."""
        self._run("stop")
        self._running = False

    def stop(self):
        """Fast shutdown, if it runs; the directory is removed unless kept."""
        try:
            if self._running or os.path.exists(os.path.join(self.dir, "data", "postmaster.pid")):
                self._run("stop")
            self._running = False
        finally:
            if not self.keep and not self._running:
                shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql):
        """Runs sql in the database (psql -At), as the database's role; its output."""
        result = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", self.conninfo,
                                 "-c", sql], capture_output=True, text=True,
                                timeout=30 * TIMEOUT_SCALE)
        if result.returncode != 0:
            raise AssertionError(f"psql failed: {result.stderr}")
        return result.stdout

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def cluster_server_config(conninfo, node_name, lease=None, extra=""):
    """The server-level directives of one node of the cluster on conninfo."""
    assert '"' not in conninfo and "\n" not in conninfo, conninfo
    lines = [f'DeployStore postgresql "{conninfo}"', f"DeployNodeName {node_name}"]
    if lease is not None:
        lines.append(f"DeployLease {lease}")
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def make_cluster(make_httpd, pg, count, setup=None, lease=None, extra="", start=True):
    """count httpd nodes (node-1 … node-N) on free ports against pg; setup(env)
    writes each node's fragment (targets) and may add server config, as for
    make_httpd. Each node is an HttpdEnv that the make_httpd factory stops."""
    nodes = []
    for i in range(1, count + 1):
        name = f"node-{i}"

        def node_setup(env, name=name):
            if setup:
                setup(env)
            base = cluster_server_config(pg.conninfo, name, lease, extra)
            env.server_config = base + ("\n" + env.server_config if env.server_config else "")
            env.node_name = name

        nodes.append(make_httpd(setup=node_setup, name=name, start=start))
    return nodes
