// deploy-runner: the process that owns one running job (see runner.h).
// mod_deploy's scheduler process starts it, as httpd's User, with the job's
// environment as its own:
//
//   deploy-runner STATE_DIR JOB_ID TIMEOUT_MS GRACE_MS WORKDIR -- COMMAND [ARG...]
//
// Exit status: 0 once the outcome is recorded (or the job was no longer to be
// run), 1 on a failure of the runner itself, explained in stderr.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "runner.h"

int main(int argc, char** argv) {
  std::string prefix = "deploy-runner: ";
  try {
    deploy::RunnerOptions options;
    const deploy::Status parsed = deploy::parse_runner_arguments(argc - 1, argv + 1, &options);
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
    return deploy::run_job(options);
  } catch (const std::exception& e) {
    fprintf(stderr, "%s%s\n", prefix.c_str(), e.what());
  } catch (...) {
    fprintf(stderr, "%sunexpected exception\n", prefix.c_str());
  }
  return EXIT_FAILURE;
}
