// deploy-runner: the process that owns one running job (see runner.h), and
// the launcher that starts such processes (see launcher.h).
//
// mod_deploy's scheduler process starts the launcher, as httpd's User:
//
//   deploy-runner --launcher STATE_DIR [--user UID:GID [--job-user UID:GID:NAME]...]
//
// (as root with --user when some target has DeployUser; see launcher.h).
// A runner can also be started on its own, with the job's environment as its
// own (the unit tests do, and so can a person reproducing a job by hand):
//
//   deploy-runner STATE_DIR JOB_ID TIMEOUT_MS GRACE_MS WORKDIR -- COMMAND [ARG...]
//
// Exit status of a runner: 0 once the outcome is recorded (or the job was no
// longer to be run), 1 on a failure of the runner itself, explained in stderr.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "launch_request.h"
#include "launcher.h"
#include "runner.h"
#include "store_spec.h"

int main(int argc, char** argv) {
  std::string prefix = "deploy-runner: ";
  try {
    if (argc >= 2 && std::string_view(argv[1]) == "--launcher") {
      std::optional<deploy::LauncherUsers> users;
      const deploy::Status parsed =
          argc < 3 ? deploy::Status::error("no STATE_DIR")
                   : deploy::parse_launcher_arguments(
                         std::vector<std::string_view>(argv + 3, argv + argc), &users);
      if (!parsed.is_ok()) {
        fprintf(stderr,
                "%s%s; usage: deploy-runner --launcher STATE_DIR "
                "[--user UID:GID [--job-user UID:GID:NAME]...]\n",
                prefix.c_str(), parsed.message().c_str());
        return EXIT_FAILURE;
      }
      // The store from the scheduler process, for the launcher and every
      // runner it forks (store_spec.h).
      deploy::set_process_store_spec(deploy::take_store_environment());
      return deploy::run_launcher(argv[2], users, argc, argv);
    }
    deploy::RunnerOptions options;
    const deploy::Status parsed =
        deploy::parse_runner_arguments(argc - 1, argv + 1, environ, &options);
    if (!parsed.is_ok()) {
      fprintf(stderr, "%s%s\n", prefix.c_str(), parsed.message().c_str());
      return EXIT_FAILURE;
    }
    prefix = "deploy-runner[job " + std::to_string(options.job_id) + "]: ";
    const deploy::Status prepared = deploy::prepare_runner_process();
    if (!prepared.is_ok()) {
      // Only orphans of the job may escape reaping: not a reason to lose the job.
      fprintf(stderr, "%s%s\n", prefix.c_str(), prepared.message().c_str());
    }
    deploy::RunnerProcess process;
    return deploy::run_job(options, &process);
  } catch (const std::exception& e) {
    fprintf(stderr, "%s%s\n", prefix.c_str(), e.what());
  } catch (...) {
    fprintf(stderr, "%sunexpected exception\n", prefix.c_str());
  }
  return EXIT_FAILURE;
}
