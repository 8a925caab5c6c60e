// The runner: the process that owns a running job, one at a time. The
// launcher (launcher.h) hands it a job once the scheduler made the job's
// record `running`; from then on the runner alone writes that record: the
// job's pid, its progress and stage, and, once, its final state.
//
// It outlives every restart of httpd (its own session), is the subreaper of
// everything the job starts, and leaves no process of the job behind: not
// after a timeout or a cancel, not after the job ended by itself.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "job.h"
#include "job_store.h"
#include "job_table.h"
#include "launch_request.h"
#include "privileges.h"
#include "status.h"

namespace deploy {

// The job (its id, wall-clock limit, kill grace, working directory, argv and
// environment) and the state directory whose table holds its record.
struct RunnerOptions : LaunchRequest {
  std::string state_dir;
  // DeployUser (user_id and group_id set): the job is forked and becomes
  // this user before its exec; else it is spawned as the runner's user.
  std::optional<RunAs> user;
};

// Parses "STATE_DIR JOB_ID TIMEOUT_MS GRACE_MS WORKDIR -- COMMAND [ARG...]"
// (argv[0] excluded); the job's environment is `environment`.
Status parse_runner_arguments(int argc, const char* const* argv, char* const* environment,
                              RunnerOptions* out);

// Cuts the ties the runner inherited from httpd: a session of its own (a
// restart signals httpd's process group, not the runner), every signal at its
// default action and unblocked but those the runner handles (httpd's worker
// threads block most of them and the mask survives exec), no descriptor
// from `first_to_close` up. Then ignores SIGPIPE and SIGHUP and becomes the
// subreaper of the job's orphans. Call first, once.
Status prepare_runner_process(int first_to_close = 3);

// Closes every descriptor from `first` up.
void close_descriptors_from(int first);

// What a runner process keeps from one job to the next (a runner of the
// launcher runs jobs one after another; one started on its own runs one).
struct RunnerProcess {
  RunnerProcess() = default;
  ~RunnerProcess();
  RunnerProcess(const RunnerProcess&) = delete;
  RunnerProcess& operator=(const RunnerProcess&) = delete;

  // Attaches options.state_dir's table unless given, its job store (the
  // file engine) unless given, and opens the signalfd of the runner's
  // signals unless open.
  Status open(const std::string& state_dir);
  // Reads the signals that came while no job ran: SIGTERM or SIGINT set
  // `terminated`; SIGUSR1 and SIGCHLD are forgotten (they were for a job
  // that ended).
  void read_idle_signals();

  std::unique_ptr<JobTable> table;  // its lock this process's own
  std::unique_ptr<JobStore> store;  // every read and write of the job goes here
  int signal_fd = -1;               // SIGCHLD, SIGUSR1, SIGTERM, SIGINT (blocked)
  uint64_t start_ticks = 0;         // of this process, for the records it owns
  bool terminated = false;          // SIGTERM or SIGINT came: run no further job
};

// Runs the job of `options` to its end and records the outcome in its record.
// Signals: SIGUSR1 means "read cancel_requested now"; SIGTERM and SIGINT
// cancel the job (and set process->terminated). Once the record holds
// runner_start_ticks, they are safe to send (blocked and read from a
// signalfd from then on).
// Returns quietly when the record is gone or no longer `running` (canceled
// before the runner got to it). Diagnostics go to stderr (httpd's error_log).
// Returns the runner's exit code: 0, or 1 when the runner itself failed.
// Afterwards the process has no child left, or `false` from
// `has_no_children()` says some would not go.
int run_job(const RunnerOptions& options, RunnerProcess* process);

// True when every process of the last job is gone (reaped).
bool has_no_children();

}  // namespace deploy
