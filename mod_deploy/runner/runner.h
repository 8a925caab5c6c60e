// The runner: the process that owns one running job. The scheduler starts it
// (as httpd's User, with the job's environment) once the job's record says
// `running`; from then on the runner alone writes that record: the job's pid,
// its progress and stage, and, once, its final state.
//
// It outlives every restart of httpd (its own session), is the subreaper of
// everything the job starts, and leaves no process of the job behind: not
// after a timeout or a cancel, not after the job ended by itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "job.h"
#include "status.h"

namespace deploy {

struct RunnerOptions {
  std::string state_dir;
  uint64_t job_id = 0;
  Micros timeout = 0;     // wall-clock limit of the job; 0: none
  Micros kill_grace = 0;  // between SIGTERM and SIGKILL
  std::string working_directory;
  std::vector<std::string> command;  // argv of the job; command[0] is the program's path
};

// Parses "STATE_DIR JOB_ID TIMEOUT_MS GRACE_MS WORKDIR -- COMMAND [ARG...]"
// (argv[0] excluded).
Status parse_runner_arguments(int argc, const char* const* argv, RunnerOptions* out);

// Cuts the ties the runner inherited from httpd: a session of its own (a
// restart signals httpd's process group, not the runner), every signal at its
// default action and unblocked but those the runner handles (httpd's worker
// threads block most of them and the mask survives exec), no descriptor
// above 2. Then ignores SIGPIPE and SIGHUP and becomes the subreaper of the
// job's orphans. Call first, once.
Status prepare_runner_process();

// Runs the job of `options` to its end and records the outcome in its record.
// Signals: SIGUSR1 means "read cancel_requested now"; SIGTERM and SIGINT
// cancel the job. Once the record holds runner_start_ticks, they are safe to
// send (blocked and read from a signalfd from then on).
// Returns quietly when the record is gone or no longer `running` (canceled
// before the runner got to it). Diagnostics go to stderr (httpd's error_log).
// Returns the runner's exit code.
int run_job(const RunnerOptions& options);

}  // namespace deploy
