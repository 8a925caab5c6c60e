#include "deploy_scheduler_process.h"

#include <httpd.h>
#include <ap_listen.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <http_log.h>
#include <mpm_common.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <exception>
#include <string>
#include <vector>

#include "deploy_module.h"
#include "job_environment.h"
#include "scheduler.h"

namespace deploy {
namespace {

constexpr Micros kSecond = 1000000;
// A runner records itself within moments of its start; one that has not
// after this long never will (its scheduler died before spawning it).
constexpr Micros kRunnerSilenceLimit = 5 * kSecond;
// How often runners are checked for life and the history trimmed.
constexpr Micros kHousekeepingInterval = kSecond;
// Decisions are at least this far apart: a burst of submissions is decided
// in one pass rather than one pass each.
constexpr Micros kMinDecisionInterval = 1000;

volatile sig_atomic_t g_stop = 0;

struct Spawn {
  Job job;
  const Target* target;
};

// A runner is alive when its pid exists and is still the process it was.
bool runner_alive(const JobRecord& r, Micros now) {
  if (r.runner_pid <= 0) return now - r.started_at < kRunnerSilenceLimit;
  uint64_t ticks = process_start_ticks(r.runner_pid);
  if (ticks == 0) return false;
  if (r.runner_start_ticks == 0) return now - r.started_at < kRunnerSilenceLimit;
  return ticks == r.runner_start_ticks;
}

class Scheduler {
 public:
  Scheduler(server_rec* s, ModuleState* state, apr_pool_t* pool)
      : server_(s),
        state_(*state),
        settings_(*state->settings),
        pool_(pool),
        policies_(settings_.policies()) {}

  void run() {
    while (!g_stop && getppid() == parent_) {
      Micros decided_at = now_micros();
      Micros next_due = decide();
      reap_children();
      Micros now = now_micros();
      Micros wait = kHousekeepingInterval;
      if (next_due > 0) wait = std::clamp<Micros>(next_due - now, 1000, kHousekeepingInterval);
      state_.table->wait_for_change(seen_, wait);
      Micros since = now_micros() - decided_at;
      if (since < kMinDecisionInterval) usleep(useconds_t(kMinDecisionInterval - since));
    }
  }

 private:
  // One pass: apply the policy, spawn what it starts, notice lost runners,
  // keep the history bounded. Returns when to decide again at the latest.
  Micros decide() {
    Micros now = now_micros();
    std::vector<Spawn> spawns;
    std::vector<uint64_t> dropped;
    ScheduleDecision decision;
    {
      JobTable::Lock lock(*state_.table);
      std::vector<PendingJob> pending;
      bool housekeeping = now - last_housekeeping_ >= kHousekeepingInterval;
      lock.for_each_unfinished([&](JobRecord& r) {
        JobState s = JobState(r.state);
        if (s == JobState::running && housekeeping && !runner_alive(r, now)) {
          ap_log_error(APLOG_MARK, APLOG_WARNING, 0, server_,
                       "mod_deploy: job %" APR_UINT64_T_FMT
                       " of %s is lost: its runner (pid %d) is gone",
                       (apr_uint64_t)r.id, r.target, r.runner_pid);
          lock.finish(&r, JobState::lost, now);
          return;
        }
        pending.push_back(PendingJob{r.id, r.target, s, r.submitted_at, r.not_before});
      });
      if (housekeeping) {
        prune_history(lock, &dropped);
        last_housekeeping_ = now;
      }

      decision = schedule(pending, policies_, settings_.limits(), now);
      for (uint64_t id : decision.expire) {
        JobRecord* r = lock.find(id);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, server_,
                     "mod_deploy: job %" APR_UINT64_T_FMT " of %s expired", (apr_uint64_t)id,
                     r->target);
        lock.finish(r, JobState::expired, now);
      }
      for (uint64_t id : decision.ready) {
        JobRecord* r = lock.find(id);
        r->state = uint8_t(JobState::queued);
        lock.commit(r);
      }
      for (uint64_t id : decision.start) {
        JobRecord* r = lock.find(id);
        const Target* target = settings_.find(r->target);
        r->state = uint8_t(JobState::running);
        r->started_at = now;
        r->runner_pid = 0;
        r->runner_start_ticks = 0;
        lock.commit(r);
        spawns.push_back(Spawn{record_to_job(*r), target});
      }
    }
    for (uint64_t id : dropped) unlink(state_.table->log_path(id).c_str());
    for (const Spawn& spawn : spawns) start_runner(spawn);
    seen_ = state_.table->change_seq();
    return decision.next_due;
  }

  // Keeps the newest DeployHistory finished jobs. (A submission that finds
  // no free record also drops the finished job whose record it takes.)
  void prune_history(JobTable::Lock& lock, std::vector<uint64_t>* dropped) {
    std::vector<JobRecord*> finished;
    lock.for_each([&](JobRecord& r) {
      if (is_final(JobState(r.state))) finished.push_back(&r);
    });
    if (finished.size() <= settings_.history) return;
    std::sort(finished.begin(), finished.end(), [](auto* a, auto* b) { return a->id > b->id; });
    for (size_t i = settings_.history; i < finished.size(); ++i) {
      dropped->push_back(finished[i]->id);
      lock.release(finished[i]);
    }
  }

  void start_runner(const Spawn& spawn) {
    apr_pool_t* p;
    apr_pool_create(&p, pool_);
    const Target& target = *spawn.target;
    std::vector<std::string> args = {state_.runner_path,
                                     state_.table->state_dir(),
                                     std::to_string(spawn.job.id),
                                     std::to_string(target.timeout / 1000),
                                     std::to_string(target.kill_grace / 1000),
                                     target.working_directory,
                                     "--"};
    args.insert(args.end(), target.command.begin(), target.command.end());
    std::vector<std::string> env = job_environment(spawn.job, target.env);
    std::vector<const char*> argv, envp;
    for (const auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    for (const auto& e : env) envp.push_back(e.c_str());
    envp.push_back(nullptr);

    apr_procattr_t* attr;
    apr_proc_t proc;
    apr_status_t rv = apr_procattr_create(&attr, p);
    if (rv == APR_SUCCESS) rv = apr_procattr_cmdtype_set(attr, APR_PROGRAM);
    if (rv == APR_SUCCESS) rv = apr_procattr_error_check_set(attr, 1);
    if (rv == APR_SUCCESS) rv = apr_proc_create(&proc, argv[0], argv.data(), envp.data(), attr, p);
    {
      JobTable::Lock lock(*state_.table);
      JobRecord* r = lock.find(spawn.job.id);
      if (r && JobState(r->state) == JobState::running) {
        if (rv == APR_SUCCESS) {
          if (r->runner_pid == 0) {
            r->runner_pid = proc.pid;
            lock.commit_quiet(r);
          }
        } else {
          lock.finish(r, JobState::failed, now_micros());
        }
      }
    }
    if (rv == APR_SUCCESS) {
      ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, server_,
                   "mod_deploy: job %" APR_UINT64_T_FMT " of %s started, runner pid %d",
                   (apr_uint64_t)spawn.job.id, target.name.c_str(), proc.pid);
    } else {
      ap_log_error(APLOG_MARK, APLOG_ERR, rv, server_,
                   "mod_deploy: cannot start the runner of job %" APR_UINT64_T_FMT " (%s)",
                   (apr_uint64_t)spawn.job.id, state_.runner_path.c_str());
    }
    apr_pool_destroy(p);
  }

  // Runners are our children until we are replaced; their outcome is in the
  // table, so only their zombies need collecting.
  void reap_children() {
    int status;
    while (waitpid(-1, &status, WNOHANG) > 0) {
    }
  }

  server_rec* server_;
  ModuleState& state_;
  const Settings& settings_;
  apr_pool_t* pool_;
  std::map<std::string, TargetPolicy> policies_;
  pid_t parent_ = getppid();
  uint64_t seen_ = 0;
  Micros last_housekeeping_ = 0;
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
  if (ap_run_drop_privileges(pool, s) != 0) {
    ap_log_error(APLOG_MARK, APLOG_ALERT, 0, s, "mod_deploy: scheduler cannot drop privileges");
    return 1;
  }
  Status st = state->table->reopen_lock();
  if (!st.is_ok()) {
    ap_log_error(APLOG_MARK, APLOG_ALERT, 0, s, "mod_deploy: scheduler: %s", st.message().c_str());
    return 1;
  }
  try {
    Scheduler(s, state, pool).run();
  } catch (const std::exception& e) {
    ap_log_error(APLOG_MARK, APLOG_ALERT, 0, s, "mod_deploy: scheduler failed: %s", e.what());
    return 1;
  }
  return 0;
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
