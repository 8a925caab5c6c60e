// The loop of a runner the launcher forked (runner_main.h): one job after
// another, each run by run_job (runner.h).
#include "runner_main.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "runner.h"

namespace deploy {
namespace {

// The runner's end of its socket, in the runner.
constexpr int kRunnerSocket = STDERR_FILENO + 1;

// Waits for the next frame on the socket, or for the end: the launcher is
// gone, or a SIGTERM came.
bool next_request(FrameReader& reader, RunnerProcess& process, LaunchRequest* request) {
  for (;;) {
    switch (reader.take(request, nullptr)) {
      case FrameReader::Result::request:
        return true;
      case FrameReader::Result::malformed:
        fprintf(stderr, "deploy-runner: a malformed request from the launcher\n");
        return false;
      case FrameReader::Result::none:
        break;
    }
    pollfd fds[] = {{kRunnerSocket, POLLIN, 0}, {process.signal_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return false;
    if (fds[1].revents != 0) {
      process.read_idle_signals();
      if (process.terminated) return false;
    }
    if (fds[0].revents != 0 && !reader.fill(kRunnerSocket)) return false;
  }
}

// The DeployUser a request names, among those the launcher was started
// with; false when it names one it was not (the job fails unstarted).
bool find_user(const LaunchRequest& request, const std::vector<RunAs>& users,
               std::optional<RunAs>* out) {
  out->reset();
  if (request.user_id == 0) return true;
  for (const RunAs& user : users) {
    if (user.uid == request.user_id && user.gid == request.group_id) {
      *out = user;
      return true;
    }
  }
  return false;
}

}  // namespace

[[noreturn]] void runner_main(const std::string& state_dir, std::unique_ptr<JobTable> table,
                              LaunchRequest first, int socket_fd, ProcessTitle& title,
                              const std::string& program, const std::vector<RunAs>& users) {
  if (socket_fd != kRunnerSocket) dup2(socket_fd, kRunnerSocket);
  fcntl(kRunnerSocket, F_SETFD, FD_CLOEXEC);
  // stdin is the launcher's pipe: the runner must not hold it open.
  const int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
  const Status prepared = prepare_runner_process(kRunnerSocket + 1);
  if (!prepared.is_ok()) fprintf(stderr, "deploy-runner: %s\n", prepared.message().c_str());
  // The runner keeps the launcher's mapping and what the launcher validated
  // of the header when it attached: a header damaged since then cannot keep
  // the job from running. The lock descriptor is the runner's own (flock
  // locks belong to the open file, which fork shares; the launcher's
  // descriptor number was closed or reused above).
  RunnerProcess process;
  process.table = std::move(table);
  Status opened = process.table ? process.table->open_lock_after_fork() : Status::ok();
  if (opened.is_ok()) opened = process.open(state_dir);
  if (!opened.is_ok()) {
    fprintf(stderr, "deploy-runner: %s\n", opened.message().c_str());
    _exit(1);
  }

  FrameReader reader;
  LaunchRequest request = std::move(first);
  for (;;) {
    RunnerOptions options;
    static_cast<LaunchRequest&>(options) = std::move(request);
    options.state_dir = state_dir;
    title.set({program, state_dir, std::to_string(options.job_id)});
    int code = 0;
    if (find_user(options, users, &options.user)) {
      code = run_job(options, &process);
    } else {
      record_launch_failure(*process.table, options.job_id,
                            "the launcher may not run jobs as uid " +
                                std::to_string(options.user_id) + ", gid " +
                                std::to_string(options.group_id) + " (not a DeployUser)");
    }
    // A process of the job that would not go must not be taken for one of
    // the next job's: this runner retires.
    if (code != 0 || process.terminated || !has_no_children()) _exit(code);
    if (write(kRunnerSocket, &kReady, 1) != 1) _exit(0);
    title.set({program, state_dir, "idle"});  // once the launcher can know it
    if (!next_request(reader, process, &request)) _exit(0);
  }
}

}  // namespace deploy
