// The launcher: the one process per scheduler that keeps the runners.
//
//   deploy-runner --launcher STATE_DIR [--user UID:GID [--job-user UID:GID:NAME]...]
//
// With --user (some target has DeployUser), the scheduler starts it as root:
// it becomes UID:GID at once, keeping only CAP_SETUID, CAP_SETGID and
// CAP_KILL (privileges.h), and its runners run jobs as the --job-users only.
// Without, it runs as whoever started it (the scheduler: httpd's User) and
// runs every job as itself.
//
// The scheduler starts it once and writes it one LaunchRequest frame per job
// on its stdin. The launcher hands each job to an idle runner of its pool, or
// forks a new runner for it. A runner runs one job at a time, exactly as a
// runner started on its own does (runner.h: its own session, subreaper of
// the job, surviving httpd), then reports itself idle and waits for the next.
// So a job costs one fork and exec (its own) instead of three, and a runner's
// leftovers can never be mistaken for another job's: a runner whose job left
// a process it could not reap takes no further job.
//
// The launcher exits when its stdin ends (the scheduler is gone: httpd
// stopped or restarted). Its idle runners then exit; busy ones finish their
// job, record it, and exit. A runner idle for a minute is let go. The
// launcher never waits for runners: the kernel reaps them (SIGCHLD ignored)
// and their outcomes are in the table.
#pragma once

#include <optional>
#include <string>

#include "launch_request.h"

namespace deploy {

// argc and argv of main(): a runner shows its job in the launcher's argv
// memory, "deploy-runner STATE_DIR JOB_ID" ("… idle" between jobs), as `ps`
// lists a runner started on its own. Returns the exit code.
// `users`: what --user and --job-user said (core/launch_request.h), if anything.
int run_launcher(const std::string& state_dir, const std::optional<LauncherUsers>& users, int argc,
                 char** argv);

}  // namespace deploy
