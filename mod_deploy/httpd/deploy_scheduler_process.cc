#include "deploy_scheduler_process.h"

#include <httpd.h>
#include <ap_listen.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <http_log.h>
#include <mpm_common.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unixd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "deploy_module.h"
#include "deploy_notifier.h"
#include "job_environment.h"
#include "launch_request.h"
#include "scheduler.h"

namespace deploy {
namespace {

constexpr Micros kSecond = 1000000;
// How often runners are checked for life and the history trimmed.
constexpr Micros kHousekeepingInterval = kSecond;
// A launcher that takes no request for this long is stuck: it is replaced.
constexpr Micros kLauncherWriteLimit = 10 * kSecond;
// After the table lock could not be had, the next pass comes this soon.
constexpr Micros kBusyRetryInterval = kSecond;

volatile sig_atomic_t g_stop = 0;

struct Spawn {
  Job job;
  const Target* target;
};

// The deploy-runner --launcher process (runner/launcher.h) and the pipe to
// its stdin. It ends when the pipe closes, i.e. with this process.
//
// When some target has DeployUser the launcher must start as root (it keeps
// CAP_SETUID, CAP_SETGID and CAP_KILL as httpd's User): it is started once,
// before this process drops its privileges, and when it dies this process
// cannot start another one; it exits instead, and httpd's parent forks a new
// scheduler, which starts a new launcher (scheduler_maintenance below).
class LauncherClient {
 public:
  LauncherClient(server_rec* s, const ModuleState& state) : server_(s), state_(state) {
    const std::vector<JobUser> users = state.settings->job_users();
    if (users.empty()) return;
    privileged_ = true;
    LauncherUsers launcher_users;
    launcher_users.uid = uint32_t(ap_unixd_config.user_id);
    launcher_users.gid = uint32_t(ap_unixd_config.group_id);
    for (const JobUser& user : users)
      launcher_users.job_users.push_back(LauncherJobUser{user.uid, user.gid, user.name});
    arguments_ = launcher_arguments(launcher_users);
  }
  ~LauncherClient() { close_pipe(); }
  LauncherClient(const LauncherClient&) = delete;
  LauncherClient& operator=(const LauncherClient&) = delete;

  // True when jobs run as a DeployUser: no launcher can be started once
  // this process dropped root.
  bool privileged() const { return privileged_; }
  bool running() const { return pid_ > 0; }

  Status start() {
    stop();
    if (privileged_ && geteuid() != 0)
      return Status::error("with DeployUser only a scheduler that is still root can start it");
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
      return Status::error(std::string("cannot create a pipe: ") + strerror(errno));
    const pid_t pid = fork();
    if (pid == 0) {
      // Like apr_proc_create: fds 1 and 2 stay (the error_log), the request
      // pipe becomes stdin, nothing else survives the exec.
      dup2(fds[0], STDIN_FILENO);
      std::vector<const char*> argv = {state_.runner_path.c_str(), "--launcher",
                                       state_.table->state_dir().c_str()};
      for (const std::string& word : arguments_) argv.push_back(word.c_str());
      argv.push_back(nullptr);
      // The store's spec, conninfo included, in the environment: never in
      // argv, which every user sees (store_spec.h).
      std::vector<const char*> envp;
      for (const std::string& entry : store_env_) envp.push_back(entry.c_str());
      envp.push_back(nullptr);
      execve(argv[0], const_cast<char**>(argv.data()), const_cast<char**>(envp.data()));
      dprintf(STDERR_FILENO, "mod_deploy: cannot execute %s: %s\n", argv[0], strerror(errno));
      _exit(127);
    }
    close(fds[0]);
    if (pid < 0) {
      close(fds[1]);
      return Status::error(std::string("cannot fork: ") + strerror(errno));
    }
    pid_ = pid;
    pipe_ = fds[1];
    fcntl(pipe_, F_SETFL, O_NONBLOCK);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, server_, "mod_deploy: runner launcher pid %d", pid_);
    return Status::ok();
  }

  // Writes one frame, waiting at most kLauncherWriteLimit for the launcher
  // to take it. An error (and the launcher stopped) when it cannot.
  Status send(const std::string& frame) {
    if (pipe_ < 0) return Status::error("the runner launcher is not running");
    const Micros give_up_at = mono_now() + kLauncherWriteLimit;
    size_t done = 0;
    while (done < frame.size()) {
      const ssize_t n = write(pipe_, frame.data() + done, frame.size() - done);
      if (n > 0) {
        done += size_t(n);
        continue;
      }
      const Micros left = give_up_at - mono_now();
      if (n < 0 && (errno == EAGAIN || errno == EINTR) && left > 0) {
        pollfd writable = {pipe_, POLLOUT, 0};
        poll(&writable, 1, int(std::max<Micros>(1, left / 1000)));
        continue;
      }
      const std::string why = n < 0 && errno != EAGAIN
                                  ? std::string("the runner launcher's pipe: ") + strerror(errno)
                                  : "the runner launcher took no request for " +
                                        std::to_string(kLauncherWriteLimit / kSecond) + " s";
      stop();
      return Status::error(why);
    }
    return Status::ok();
  }

  void reaped(pid_t pid, int status) {
    if (pid != pid_) return;
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, server_,
                 "mod_deploy: the runner launcher (pid %d) ended with status %d; %s", pid, status,
                 privileged_ ? "the scheduler exits so that httpd starts a new one (DeployUser)"
                             : "the next job starts a new one");
    pid_ = -1;
    close_pipe();
  }

 private:
  // Closing the pipe ends the launcher; one that is stuck is killed.
  void stop() {
    close_pipe();
    if (pid_ > 0) kill(pid_, SIGKILL);
    pid_ = -1;
  }

  void close_pipe() {
    if (pipe_ >= 0) close(pipe_);
    pipe_ = -1;
  }

  server_rec* server_;
  const ModuleState& state_;
  bool privileged_ = false;
  std::vector<std::string> arguments_;  // after --launcher STATE_DIR
  std::vector<std::string> store_env_ = store_environment(state_.settings->store_spec());
  pid_t pid_ = -1;
  int pipe_ = -1;
};

class Scheduler {
 public:
  Scheduler(server_rec* s, ModuleState* state)
      : server_(s), state_(*state), settings_(*state->settings), policies_(settings_.policies()) {}

  // Starts the launcher; with DeployUser, call it while still root.
  void start_launcher() {
    if (Status started = launcher_.start(); !started.is_ok()) {
      ap_log_error(APLOG_MARK, APLOG_ERR, 0, server_,
                   "mod_deploy: cannot start the runner launcher: %s", started.message().c_str());
    }
  }
  bool privileged() const { return launcher_.privileged(); }

  // The exit code of the process: 1 when the launcher of DeployUser jobs is
  // gone (httpd's parent then forks a new scheduler).
  int run() {
    if (!launcher_.privileged()) start_launcher();
    while (!g_stop && getppid() == parent_) {
      reap_children();
      if (launcher_.privileged() && !launcher_.running()) {
        // Not at once again if it died at once: httpd would fork
        // schedulers in a tight loop.
        if (mono_now() - started_at_ < 5 * kSecond) sleep(1);
        return 1;
      }
      Micros decided_at = mono_now();
      Micros next_due = decide();
      reap_children();
      Micros now = mono_now();
      Micros wait = kHousekeepingInterval;
      if (next_due > 0) wait = std::clamp<Micros>(next_due - now, 1000, kHousekeepingInterval);
      state_.store->wait_for_change(seen_, wait);
      // Passes are at least the store's interval apart (JobStore::
      // min_decision_interval): a burst of changes is decided in one.
      const Micros since = mono_now() - decided_at, apart = state_.store->min_decision_interval();
      if (since < apart) usleep(useconds_t(apart - since));
    }
    return 0;
  }

 private:
  // One pass: apply the policy, spawn what it starts, notice lost runners,
  // keep the history bounded. Returns when to decide again at the latest
  // (monotonic).
  Micros decide() {
    const Instant now = Instant::now();
    std::vector<Spawn> spawns;
    ScheduleDecision decision;
    bool finished = false;  // a job reached a final state in this pass
    const GroupByOf group_by = [this](std::string_view t) {
      return settings_.group_by(std::string(t));
    };
    bool housekeeping = now.mono - last_housekeeping_ >= kHousekeepingInterval;
    std::vector<LostJob> lost;
    std::vector<Job> started;
    Status st = Status::ok();
    // Right after a busy store, runners could not record themselves: lost
    // jobs are looked for once the store was had (lock_regained_at_ below).
    if (table_was_busy_) housekeeping = false;
    if (housekeeping) st = state_.store->detect_lost(now, lock_regained_at_, &lost);
    if (st.is_ok())
      st = state_.store->schedule_pass(
          group_by,
          [&](const std::vector<PendingJob>& pending) {
            ScheduleDecision d = schedule(pending, policies_, settings_.limits(), now.mono);
            for (const PendingJob& job : pending)
              if (std::find(d.expire.begin(), d.expire.end(), job.id) != d.expire.end())
                ap_log_error(APLOG_MARK, APLOG_INFO, 0, server_,
                             "mod_deploy: job %" APR_UINT64_T_FMT " of %s expired",
                             (apr_uint64_t)job.id, job.target.c_str());
            return d;
          },
          now, &decision, &started, &seen_);
    if (st.is_ok() && housekeeping) {
      st = state_.store->trim_history(settings_.history, nullptr);
      last_housekeeping_ = now.mono;
    }
    if (!st.is_ok()) {
      // Nothing can be decided; the launcher is still reaped meanwhile.
      ap_log_error(APLOG_MARK, APLOG_WARNING, 0, server_,
                   "mod_deploy: the scheduler cannot decide, retrying: %s", st.message().c_str());
      table_was_busy_ = true;
      return mono_now() + kBusyRetryInterval;
    }
    if (table_was_busy_) lock_regained_at_ = mono_now();
    table_was_busy_ = false;
    for (const LostJob& l : lost) {
      ap_log_error(APLOG_MARK, APLOG_WARNING, 0, server_,
                   "mod_deploy: job %" APR_UINT64_T_FMT
                   " of %s is lost: its runner (pid %d) is gone",
                   (apr_uint64_t)l.job.id, l.job.target.c_str(), l.runner.runner_pid);
      finished = true;
    }
    for (Job& job : started) {
      const Target* target = settings_.find(job.target);
      spawns.push_back(Spawn{std::move(job), target});
    }
    // A job that started once must never start again, also after a power
    // cut: its `running` is on disk before its runner gets it.
    if (!spawns.empty() || finished || !decision.expire.empty()) {
      if (Status durable = state_.store->make_durable(); !durable.is_ok()) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, server_, "mod_deploy: scheduler: %s",
                     durable.message().c_str());
        for (const Spawn& spawn : spawns) fail_unstarted(spawn.job.id, durable.message());
        spawns.clear();
      }
    }
    for (const Spawn& spawn : spawns) hand_to_launcher(spawn);
    return decision.next_due;
  }

  // A job marked running whose runner was never given it ends failed.
  void fail_unstarted(uint64_t id, const std::string& why) {
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, server_,
                 "mod_deploy: cannot start the runner of job %" APR_UINT64_T_FMT ": %s",
                 (apr_uint64_t)id, why.c_str());
    {
      // When the table stays busy the job keeps no runner: housekeeping
      // finds it lost.
      (void)state_.store->launch_failed(id, Instant::now());
    }
    (void)state_.store->make_durable();
  }

  // Hands the job to the launcher, which forks its runner. A launcher that
  // died is replaced once; a job that cannot be handed over failed.
  void hand_to_launcher(const Spawn& spawn) {
    const Target& target = *spawn.target;
    LaunchRequest request;
    request.job_id = spawn.job.id;
    request.timeout = target.timeout;
    request.kill_grace = target.kill_grace;
    request.working_directory = target.working_directory;
    request.command = target.command;
    request.environment =
        job_environment(spawn.job, target.env, target.secret_env, &request.secret_entries);
    if (target.user) {
      request.user_id = target.user->uid;
      request.group_id = target.user->gid;
    }
    const std::string frame = encode_launch_request(request);
    if (frame.empty()) {
      fail_unstarted(spawn.job.id, "its command and environment are too large to start");
      return;
    }
    Status handed = launcher_.send(frame);
    if (!handed.is_ok() && launcher_.privileged()) {
      // No new launcher can be started here: the job waits for the next
      // scheduler, as if it had not been started.
      ap_log_error(APLOG_MARK, APLOG_WARNING, 0, server_,
                   "mod_deploy: job %" APR_UINT64_T_FMT
                   " goes back to the queue: cannot hand it to the runner launcher: %s",
                   (apr_uint64_t)spawn.job.id, handed.message().c_str());
      // When the table stays busy the job keeps no runner: housekeeping
      // finds it lost.
      (void)state_.store->unstart(spawn.job.id);
      return;
    }
    if (!handed.is_ok()) {
      handed = launcher_.start();
      if (handed.is_ok()) handed = launcher_.send(frame);
    }
    if (!handed.is_ok()) {
      fail_unstarted(spawn.job.id, handed.message());
      return;
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, server_,
                 "mod_deploy: job %" APR_UINT64_T_FMT " of %s handed to the runner launcher",
                 (apr_uint64_t)spawn.job.id, target.name.c_str());
  }

  // The launcher is our only child.
  void reap_children() {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) launcher_.reaped(pid, status);
  }

  server_rec* server_;
  ModuleState& state_;
  const Settings& settings_;
  std::map<std::string, TargetPolicy> policies_;
  pid_t parent_ = getppid();
  Micros started_at_ = mono_now();  // monotonic (clock.h)
  uint64_t seen_ = 0;
  Micros last_housekeeping_ = 0;  // monotonic
  bool table_was_busy_ = false;
  Micros lock_regained_at_ = 0;  // monotonic
  LauncherClient launcher_{server_, state_};
};

void on_stop_signal(int) { g_stop = 1; }

int scheduler_main(apr_pool_t* pool, server_rec* s, ModuleState* state) {
  // Like mod_cgid's daemon: no listening sockets, and httpd's User.
  ap_close_listeners();
  struct sigaction sa = {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGHUP, SIG_IGN);
  signal(SIGUSR1, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  try {
    Scheduler scheduler(s, state);
    // With DeployUser the launcher needs root to start: before the drop.
    if (scheduler.privileged()) scheduler.start_launcher();
    if (ap_run_drop_privileges(pool, s) != 0) {
      ap_log_error(APLOG_MARK, APLOG_ALERT, 0, s, "mod_deploy: scheduler cannot drop privileges");
      return 1;
    }
    Status st = state->table->reopen_lock();
    if (!st.is_ok()) {
      ap_log_error(APLOG_MARK, APLOG_ALERT, 0, s, "mod_deploy: scheduler: %s",
                   st.message().c_str());
      return 1;
    }
    // Completion notifications: a thread of this process with a store of
    // its own, stopped and joined when the scheduler returns.
    Notifier notifier(s, *state);
    notifier.start();
    return scheduler.run();
  } catch (const std::exception& e) {
    ap_log_error(APLOG_MARK, APLOG_ALERT, 0, s, "mod_deploy: scheduler failed: %s", e.what());
    return 1;
  }
}

struct Restart {
  server_rec* server;
  ModuleState* state;
  apr_pool_t* pconf;
};

apr_status_t fork_scheduler(Restart* restart);

// Restarts the scheduler process when it dies while httpd runs.
void scheduler_maintenance(int reason, void* data, apr_wait_t) {
  auto* restart = static_cast<Restart*>(data);
  if (reason == APR_OC_REASON_DEATH || reason == APR_OC_REASON_LOST) {
    apr_proc_other_child_unregister(data);
    if (ap_mpm_query(AP_MPMQ_MPM_STATE, &reason) == APR_SUCCESS && reason == AP_MPMQ_STOPPING)
      return;
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, restart->server,
                 "mod_deploy: the scheduler process died; starting a new one");
    fork_scheduler(restart);
  } else if (reason == APR_OC_REASON_UNREGISTER) {
    // pconf is being cleared: the pool cleanup stops the process.
  }
}

apr_status_t fork_scheduler(Restart* restart) {
  auto* proc = static_cast<apr_proc_t*>(apr_pcalloc(restart->pconf, sizeof(apr_proc_t)));
  apr_status_t rv = apr_proc_fork(proc, restart->pconf);
  if (rv == APR_INCHILD) {
    apr_pool_t* pool;
    apr_pool_create(&pool, restart->pconf);
    int code = scheduler_main(pool, restart->server, restart->state);
    _exit(code);
  }
  if (rv != APR_INPARENT) return rv;
  apr_pool_note_subprocess(restart->pconf, proc, APR_KILL_AFTER_TIMEOUT);
  apr_proc_other_child_register(proc, scheduler_maintenance, restart, nullptr, restart->pconf);
  return APR_SUCCESS;
}

}  // namespace

apr_status_t start_scheduler_process(apr_pool_t* pconf, server_rec* s, ModuleState* state) {
  auto* restart = static_cast<Restart*>(apr_pcalloc(pconf, sizeof(Restart)));
  restart->server = s;
  restart->state = state;
  restart->pconf = pconf;
  return fork_scheduler(restart);
}

}  // namespace deploy
