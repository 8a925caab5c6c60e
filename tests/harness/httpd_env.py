"""A real httpd with mod_deploy, started per test from a generated config.

Modelled on httpd's test/pyhttpd: the config is written from a template into a
fresh directory, httpd is started with `-k start`, polled until its port
answers, and stopped by the pid in its PidFile. Every wait is a poll with a
bound. Only 127.0.0.1 is used.

Environment:
  DEPLOY_BUILD_DIR   directory holding mod_deploy.so and deploy-runner
                     (default: <repo>/build)
  DEPLOY_LD_PRELOAD  a library httpd is started with in LD_PRELOAD (the
                     sanitizer runtime of a -DDEPLOY_SANITIZE=ON build); a
                     test may add its own after it (HttpdEnv.preload, ClockShift)
  DEPLOY_APACHE2     the httpd binary (default /usr/sbin/apache2)
  DEPLOY_HTTPD_WRAPPER  a command line `httpd -k start` runs under (words split
                     as a shell would; scripts/valgrind-check sets valgrind here)
  DEPLOY_TIMEOUT_SCALE  every wait_for bound and HTTP timeout is multiplied by this (default 1;
                     scripts/valgrind-check sets 10: memcheck is that much slower)
  DEPLOY_KEEP_DIRS   keep every test's server directory (else kept on failure)
"""

import base64
import hashlib
import hmac
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from .client import BASE, KEEPALIVE_RACE, Client, Response  # noqa: F401 (re-exported)

REPO_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.path.abspath(os.environ.get("DEPLOY_BUILD_DIR") or os.path.join(REPO_DIR, "build"))
APACHE2 = os.environ.get("DEPLOY_APACHE2", "/usr/sbin/apache2")
DEBIAN_MODULES_DIR = "/usr/lib/apache2/modules"
MPMS = ("event", "worker", "prefork")
RUNNING_AS_ROOT = os.geteuid() == 0
HTTPD_USER = "www-data"
HTTPD_WRAPPER = shlex.split(os.environ.get("DEPLOY_HTTPD_WRAPPER", ""))
TIMEOUT_SCALE = float(os.environ.get("DEPLOY_TIMEOUT_SCALE") or 1)

# Modules the tests rely on; loaded from Debian's module dir unless compiled in.
SUPPORT_MODULES = ("authz_core", "authn_core", "authz_user", "authn_file", "auth_basic", "mime")

# Marker variable put into httpd's own environment: a job must never see it.
HTTPD_ENV_MARKER = ("DEPLOY_TEST_HTTPD_ONLY", "httpd-environment-must-not-leak")

# error_log lines that fail a test unless it declared them expected.
PROBLEM_PATTERNS = (
    re.compile(r"\[(?:[\w.-]+:)?(?:error|crit|alert|emerg)\]"),
    re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer"),
    re.compile(r"runtime error:"),
    re.compile(r"exit signal (?:Segmentation|Aborted|Bus|Illegal|Floating)"),
)


# The event MPM of the load test and the bench: 400 threads in 4 processes, all
# started at once, keep-alive without a request limit.
LOAD_MPM_SETTINGS = [
    "StartServers 4",
    "ServerLimit 4",
    "ThreadLimit 100",
    "ThreadsPerChild 100",
    "MaxRequestWorkers 400",
    "MinSpareThreads 25",
    "MaxSpareThreads 400",
    "MaxConnectionsPerChild 0",
    "MaxKeepAliveRequests 0",
    "KeepAliveTimeout 30",
    "ListenBacklog 1024",
]


class HttpdError(AssertionError):
    pass


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls predicate() until it returns a truthy value; fails after timeout s
    (times DEPLOY_TIMEOUT_SCALE)."""
    timeout *= TIMEOUT_SCALE
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# Listening ports come from below the kernel's ephemeral range (32768 and up on
# Linux), so that no client socket of another test takes one between free_port()
# and the server's bind, and each pytest-xdist worker (PYTEST_XDIST_WORKER=gwN,
# scripts/test runs two) has its own slice, so that two workers never pick the
# same port.
_PORT_SLICE = 4000
_PORT_BASE = 12000


def _port_slice():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    low = _PORT_BASE + (index % 5) * _PORT_SLICE
    return low, low + _PORT_SLICE


def free_port():
    """A loopback TCP port nobody listens on, from this worker's slice."""
    low, high = _port_slice()
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {low}..{high}")


def compiled_in_modules():
    out = subprocess.run([APACHE2, "-l"], capture_output=True, text=True, check=True).stdout
    return {line.strip() for line in out.splitlines() if line.strip().endswith(".c")}


_COMPILED_IN = None


def module_load_lines(mpm):
    global _COMPILED_IN
    if _COMPILED_IN is None:
        _COMPILED_IN = compiled_in_modules()
    lines = []
    for name in (f"mpm_{mpm}",) + SUPPORT_MODULES:
        if f"mod_{name}.c" in _COMPILED_IN:
            continue
        lines.append(f"LoadModule {name}_module {DEBIAN_MODULES_DIR}/mod_{name}.so")
    return lines


def module_available():
    path = os.path.join(BUILD_DIR, "mod_deploy.so")
    if not os.path.exists(path):
        return False
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True).stdout
    return re.search(r"\bdeploy_module\b", out) is not None


def sha_htpasswd_line(user, password):
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}\n"


def basic_auth_location(path, htpasswd, require="valid-user"):
    """A <Location path> that asks for Basic authentication against htpasswd."""
    return (f"<Location {path}>\n    AuthType Basic\n    AuthName deploy\n"
            f'    AuthBasicProvider file\n    AuthUserFile "{htpasswd}"\n'
            f"    Require {require}\n</Location>\n")


def basic_credentials(user, password):
    """The Authorization header of Basic authentication."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def hub_signature(key: bytes, body: bytes):
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def stat_fields(pid):
    """(comm, state, ppid) of pid from /proc/PID/stat, None when it is gone (also
    while it goes: ESRCH)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2:].split()
    return stat[stat.index("(") + 1:stat.rindex(")")], rest[0], int(rest[1])


def process_state(pid):
    """'R', 'S', 'Z'... of a pid, or None when it does not exist."""
    fields = stat_fields(pid)
    return fields[1] if fields else None


def process_ppid(pid):
    """The parent of pid, None when it is gone."""
    fields = stat_fields(pid)
    return fields[2] if fields else None


def process_alive(pid):
    """True for a process that exists and is not a zombie."""
    state = process_state(pid)
    return state is not None and state != "Z"


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children_of(pid):
    return [p for p in all_pids() if process_ppid(p) == pid and process_alive(p)]


def _listening_inodes(port):
    """Socket inodes of 127.0.0.1:port in LISTEN state."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, st, inode = fields[1], fields[3], fields[9]
                    if st == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except FileNotFoundError:
            pass
    return inodes


def holds_listener(pid, port):
    wanted = {f"socket:[{i}]" for i in _listening_inodes(port)}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                return True
        except OSError:
            pass
    return False


def _read_proc(pid, name):
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return b""


def processes_touching(directory):
    """Pids (not zombies, not ours) whose command line, cwd or environment names directory."""
    needle = directory.encode()
    found = []
    for pid in all_pids():
        if pid == os.getpid() or not process_alive(pid):
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd").encode()
        except OSError:
            cwd = b""
        if (needle in _read_proc(pid, "cmdline") or cwd.startswith(needle)
                or needle in _read_proc(pid, "environ")):
            found.append(pid)
    return found


class HttpdEnv:
    """One httpd: its directory, config, process and log."""

    def __init__(self, mpm="event", fragment="", load_deploy=True, location=True,
                 server_config="", name="httpd"):
        assert mpm in MPMS, mpm
        self.mpm = mpm
        self.fragment = fragment
        self.server_config = server_config
        self.load_deploy = load_deploy
        self.location = location
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"mod_deploy-{name}-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        for sub, mode in (("conf", 0o755), ("logs", 0o755), ("run", 0o755), ("htdocs", 0o755),
                          ("jobs", 0o755), ("scratch", 0o1777), ("sanitizer", 0o1777)):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
            os.chmod(os.path.join(self.dir, sub), mode)
        self.state_dir = os.path.join(self.dir, "state")
        self.conf_path = os.path.join(self.dir, "conf", "httpd.conf")
        self.pid_file = os.path.join(self.dir, "run", "httpd.pid")
        self.error_log = os.path.join(self.dir, "logs", "error_log")
        self.scratch = os.path.join(self.dir, "scratch")
        self.expected_errors = []
        self._checked_offset = 0
        self._started = False
        self.last_pid = None
        # Libraries (after DEPLOY_LD_PRELOAD's) and variables a test adds to
        # httpd's environment before it starts; see ClockShift.
        self.preload = []
        self.extra_environment = {}

    # ----- files -----

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def scratch_path(self, name):
        return os.path.join(self.scratch, name)

    def write_file(self, relpath, content, mode=0o644):
        path = self.path(relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w" if isinstance(content, str) else "wb") as f:
            f.write(content)
        os.chmod(path, mode)
        return path

    def write_script(self, name, body):
        """A job script in DIR/jobs, mode 0755, runnable by the httpd user."""
        return self.write_file(os.path.join("jobs", name), body, 0o755)

    def prepare_state_dir(self):
        """The state dir as an administrator prepares it: owned by the httpd user."""
        os.makedirs(self.state_dir, exist_ok=True)
        os.chmod(self.state_dir, 0o755)
        if RUNNING_AS_ROOT:
            shutil.chown(self.state_dir, HTTPD_USER, HTTPD_USER)

    # ----- config -----

    def config_text(self, fragment=None, server_config=None):
        fragment = self.fragment if fragment is None else fragment
        server_config = self.server_config if server_config is None else server_config
        lines = [
            f'ServerRoot "{self.dir}"',
            "ServerName 127.0.0.1",
            f"Listen 127.0.0.1:{self.port}",
            f'PidFile "{self.pid_file}"',
            f'DefaultRuntimeDir "{self.path("run")}"',
            f'ErrorLog "{self.error_log}"',
            "LogLevel info",
            'LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" timed',
            f'CustomLog "{self.path("logs", "access_log")}" timed',
            f'DocumentRoot "{self.path("htdocs")}"',
            "Timeout 30",
            "GracefulShutdownTimeout 5",
        ]
        lines += module_load_lines(self.mpm)
        lines.append("TypesConfig /etc/mime.types")
        if self.mpm == "prefork":
            lines += ["StartServers 2", "MinSpareServers 1", "MaxSpareServers 4"]
        else:
            lines += ["StartServers 1", "ServerLimit 4", "ThreadsPerChild 25"]
        if RUNNING_AS_ROOT:
            lines += [f"User {HTTPD_USER}", f"Group {HTTPD_USER}"]
        if self.load_deploy:
            lines.append(f'LoadModule deploy_module "{os.path.join(BUILD_DIR, "mod_deploy.so")}"')
            if "DeployStateDir" not in server_config and "DeployStateDir" not in fragment:
                lines.append(f'DeployStateDir "{self.state_dir}"')
        if server_config:
            lines.append(server_config)
        if fragment:
            lines.append(fragment)
        if self.load_deploy and self.location:
            lines += [f"<Location {BASE}>", "    SetHandler deploy", "</Location>"]
        return "\n".join(lines) + "\n"

    def write_config(self, fragment=None, server_config=None, path=None):
        path = path or self.conf_path
        with open(path, "w") as f:
            f.write(self.config_text(fragment, server_config))
        return path

    # ----- process -----

    def httpd_environment(self):
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C",
            HTTPD_ENV_MARKER[0]: HTTPD_ENV_MARKER[1],
        }
        preload = os.environ.get("DEPLOY_LD_PRELOAD")
        # The sanitizer runtime must come first; LD_PRELOAD takes a list.
        libraries = ([preload] if preload else []) + self.preload
        if libraries:
            env["LD_PRELOAD"] = ":".join(libraries)
        env.update(self.extra_environment)
        if preload:
            log = os.path.join(self.dir, "sanitizer", "report")
            env["ASAN_OPTIONS"] = f"detect_leaks=0:log_path={log}"
            env["UBSAN_OPTIONS"] = f"print_stacktrace=1:log_path={log}"
        return env

    def _apache2(self, *args, timeout=30, wrapped=False):
        """apache2 with args; wrapped: under DEPLOY_HTTPD_WRAPPER (the start only:
        -k graceful, restart and stop are signals sent by a short-lived apache2)."""
        return subprocess.run((HTTPD_WRAPPER if wrapped else [])
                              + [APACHE2, "-d", self.dir, "-f", self.conf_path, *args],
                              env=self.httpd_environment(), capture_output=True, text=True,
                              timeout=timeout * TIMEOUT_SCALE)

    def configtest(self, fragment=None, server_config=None):
        """apache2 -t on a config with fragment; (returncode, stdout+stderr)."""
        conf = self.write_config(fragment, server_config, path=self.path("conf", "configtest.conf"))
        result = subprocess.run([APACHE2, "-t", "-d", self.dir, "-f", conf],
                                env=self.httpd_environment(), capture_output=True, text=True,
                                timeout=30)
        return result.returncode, result.stdout + result.stderr

    def read_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def port_answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self, timeout=15):
        self.write_config()
        result = self._apache2("-k", "start", wrapped=True)
        if result.returncode != 0:
            raise HttpdError(f"httpd failed to start (rc {result.returncode}):\n"
                             f"{result.stdout}{result.stderr}\n{self.error_log_tail()}")
        self._started = True
        try:
            wait_for(lambda: self.read_pid() and self.port_answers(), timeout,
                     f"httpd to answer on 127.0.0.1:{self.port}")
        except AssertionError as e:
            raise HttpdError(f"{e}\n{self.error_log_tail()}")
        self.last_pid = self.read_pid()
        return self

    def _signal_and_wait_generation(self, flag, timeout):
        """graceful/restart: the parent stays; wait until it answers again."""
        before = self.error_log_size()
        result = self._apache2("-k", flag)
        if result.returncode != 0:
            raise HttpdError(f"httpd -k {flag} failed: {result.stdout}{result.stderr}")

        def restarted():
            text = self.error_log_text(before)
            return "resuming normal operations" in text and self.port_answers()
        wait_for(restarted, timeout, f"httpd -k {flag} to complete")

    def graceful(self, fragment=None, timeout=15):
        """apache2 -k graceful, with a new fragment when given."""
        if fragment is not None:
            self.fragment = fragment
        self.write_config()
        self._signal_and_wait_generation("graceful", timeout)

    def restart(self, fragment=None, timeout=15):
        """apache2 -k restart, with a new fragment when given."""
        if fragment is not None:
            self.fragment = fragment
        self.write_config()
        self._signal_and_wait_generation("restart", timeout)

    def stop(self, timeout=15, graceful=False):
        """Stops httpd: SIGTERM (`apachectl stop`) or, when graceful, SIGWINCH
        (`apachectl graceful-stop`) to the pid of its PidFile, wait, SIGKILL as
        a last resort. A graceful stop sends SIGTERM too once the MPM children
        have finished: the parent would sleep out a second before it noticed,
        a second per test (85 s of the suite).

        An ungraceful stop can crash an event MPM child of httpd itself: the
        child's main thread closes the sockets of busy workers
        (close_worker_sockets) while a worker frees that very connection's pool,
        a race inside mod_mpm_event (SIGSEGV in apr_os_sock_get, no module
        frame). Teardown therefore stops gracefully; tests of `stop` itself
        still send SIGTERM, after a pause that lets the workers finish the
        connections the test just closed: the race needs a worker that is
        ending a connection when the signal comes (it struck a test that
        stopped httpd right after its last request).

        Returns a message when httpd had to be killed, else None."""
        pid = self.read_pid() or self.last_pid
        if not pid or not self._started:
            return None
        self._started = False
        if graceful:
            # MPM children hold the listener (the scheduler closed it).
            workers = [p for p in children_of(pid) if holds_listener(p, self.port)]
        else:
            time.sleep(STOP_SETTLE_SECONDS)
        try:
            os.kill(pid, signal.SIGWINCH if graceful else signal.SIGTERM)
        except ProcessLookupError:
            return None
        try:
            if graceful:
                # Once its children are done, the parent still sleeps out a
                # whole second before it looks (event and prefork MPMs): a
                # SIGTERM then ends that wait, with no child left to race.
                wait_for(lambda: not any(process_alive(p) for p in workers), timeout,
                         f"the children of httpd pid {pid} to finish")
                os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not process_alive(pid), timeout, f"httpd pid {pid} to exit")
            return None
        except ProcessLookupError:
            return None
        except AssertionError:
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not process_alive(pid), 5, f"killed httpd pid {pid} to exit")
            return f"httpd pid {pid} did not exit within {timeout}s of SIGTERM; killed"

    @property
    def running(self):
        return self._started

    def leftover_processes(self):
        return processes_touching(self.dir)

    def kill_leftovers(self, timeout=10):
        """Kills, by pid, the processes still using this server's directory (jobs a
        failed test left blocked, their runners). Returns the pids that outlived a
        bounded wait after SIGKILL."""
        pids = self.leftover_processes()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            wait_for(lambda: not any(process_alive(p) for p in pids), timeout,
                     "leftover processes to exit")
        except AssertionError:
            return [p for p in pids if process_alive(p)]
        return []

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # ----- error log -----

    def error_log_size(self):
        try:
            return os.path.getsize(self.error_log)
        except FileNotFoundError:
            return 0

    def error_log_text(self, offset=0):
        try:
            with open(self.error_log, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def error_log_tail(self, lines=40):
        text = self.error_log_text()
        return "error_log (last lines):\n" + "\n".join(text.splitlines()[-lines:])

    def expect_error(self, pattern):
        """Declares error_log lines matching pattern (a regex) expected by the test."""
        self.expected_errors.append(re.compile(pattern))

    def sanitizer_reports(self):
        reports = []
        sdir = os.path.join(self.dir, "sanitizer")
        for name in sorted(os.listdir(sdir)):
            with open(os.path.join(sdir, name), errors="replace") as f:
                reports.append(f"{name}:\n{f.read()}")
        return reports

    def check_error_log(self):
        """Lines logged since the last check that are problems and not expected."""
        size = self.error_log_size()
        text = self.error_log_text(self._checked_offset)
        self._checked_offset = size
        problems = []
        for line in text.splitlines():
            if any(p.search(line) for p in PROBLEM_PATTERNS) and \
                    not any(e.search(line) for e in self.expected_errors):
                problems.append(line)
        problems += self.sanitizer_reports()
        for name in os.listdir(os.path.join(self.dir, "sanitizer")):
            os.unlink(os.path.join(self.dir, "sanitizer", name))
        return problems

    # ----- HTTP -----

    @property
    def origin(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None, timeout=10):
        return Client(self.port, timeout * TIMEOUT_SCALE).request(method, path, body, headers)

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def post_json(self, path, value, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, json.dumps(value), h)

    def submit(self, target, params=None, headers=None):
        """POST BASE/targets/TARGET with {"params": ...} (or an empty body)."""
        if params is None:
            return self.request("POST", f"{BASE}/targets/{target}", b"",
                                dict(headers or {}, **{"Content-Length": "0"}))
        return self.post_json(f"{BASE}/targets/{target}", {"params": params}, headers)

    def submit_ok(self, target, params=None, headers=None):
        """Submits and returns the job JSON; fails unless the answer is 202."""
        r = self.submit(target, params, headers)
        assert r.status == 202, f"submission to {target} answered {r.status}: {r.body!r}"
        return r.json()

    def job(self, job_id):
        r = self.get(f"{BASE}/jobs/{job_id}")
        assert r.status == 200, f"GET job {job_id}: {r.status} {r.body!r}"
        return r.json()

    def jobs(self, query=""):
        r = self.get(f"{BASE}/jobs{query}")
        assert r.status == 200, f"GET jobs{query}: {r.status} {r.body!r}"
        return r.json()

    def wait_job(self, job_id, predicate, timeout, what):
        last = {}

        def check():
            last["job"] = self.job(job_id)
            return predicate(last["job"])
        try:
            wait_for(check, timeout, f"job {job_id}: {what}")
        except AssertionError as e:
            raise AssertionError(f"{e}; last seen: {last.get('job')}\n{self.error_log_tail()}")
        return last["job"]

    def wait_state(self, job_id, states, timeout=15):
        states = {states} if isinstance(states, str) else set(states)
        return self.wait_job(job_id, lambda j: j["state"] in states, timeout,
                             f"state in {sorted(states)}")

    def wait_finished(self, job_id, timeout=15):
        return self.wait_state(job_id, FINAL_STATES, timeout)

    def log(self, job_id, offset=None):
        q = "" if offset is None else f"?offset={offset}"
        return self.get(f"{BASE}/jobs/{job_id}/log{q}")


# How long an ungraceful stop waits before its SIGTERM (see HttpdEnv.stop).
STOP_SETTLE_SECONDS = 0.3

FINAL_STATES = ("succeeded", "failed", "timed_out", "canceled", "expired", "lost")


CLOCK_SHIFT_LIBRARY = os.path.join(BUILD_DIR, "tests", "clock_shift", "libdeploy_clock_shift.so")


class ClockShift:
    """Steps the wall clock of an httpd and of every process it forks, while
    they run (tests/clock_shift/clock_shift.c, preloaded): CLOCK_REALTIME,
    gettimeofday and time are shifted by the offset, the monotonic clocks are
    not. Create it before the server starts. The runner launcher is started
    with an empty environment, so runners keep the true wall clock."""

    def __init__(self, env):
        assert os.path.exists(CLOCK_SHIFT_LIBRARY), f"{CLOCK_SHIFT_LIBRARY} is not built"
        self.path = env.scratch_path("clock-shift")
        self.offset = 0.0
        self._write()
        env.preload.append(CLOCK_SHIFT_LIBRARY)
        env.extra_environment["DEPLOY_CLOCK_SHIFT_FILE"] = self.path

    def _write(self):
        # Fixed width, rewritten in place: the processes map the file.
        text = f"{self.offset:+021.6f}\n".encode()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, text, 0)
        finally:
            os.close(fd)
        os.chmod(self.path, 0o644)

    def step(self, seconds):
        """Steps the server's wall clock by `seconds` (negative: backwards)."""
        self.offset += seconds
        self._write()

    def now(self):
        """The server's wall clock now, as time.time() gives ours."""
        return time.time() + self.offset


class Gate:
    """A file a blocked job waits for: the test opens it when it is ready."""

    def __init__(self, env, name):
        self.path = env.scratch_path(name)

    def open(self):
        with open(self.path, "w"):
            pass
        os.chmod(self.path, 0o644)


def blocking_script_lines(gate_path, seconds=30):
    """Shell lines that wait (bounded) for gate_path to exist; exit 3 when it never does."""
    tries = int(seconds / 0.05)
    return (f'for i in $(seq 1 {tries}); do [ -e "{gate_path}" ] && break; sleep 0.05; done\n'
            f'[ -e "{gate_path}" ] || {{ echo "gate never opened" >&2; exit 3; }}\n')


def target_block(name, command, *directives):
    """A <DeployTarget NAME> block with DeployCommand and more directive lines."""
    body = "".join(f"    {d}\n" for d in directives)
    return f"<DeployTarget {name}>\n    DeployCommand {command}\n{body}</DeployTarget>\n"


def gated_job_script(env, name, gate, exit_code=0, before="", after=""):
    """A job that runs `before`, waits for the gate (bounded), runs `after`, exits."""
    return env.write_script(name, "#!/bin/bash\n" + before + blocking_script_lines(gate.path)
                            + after + f"exit {exit_code}\n")
