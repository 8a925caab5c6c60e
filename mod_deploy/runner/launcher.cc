#include "launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <list>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "store_spec.h"
#include "job_table.h"
#include "launch_request.h"
#include "privileges.h"
#include "runner.h"
#include "runner_main.h"

namespace deploy {

// The job cannot get a runner: it failed without running, as a runner whose
// start fails records it.
void record_launch_failure(JobTable& table, uint64_t job_id, const std::string& message) {
  fprintf(stderr, "deploy-runner[job %llu]: %s\n", static_cast<unsigned long long>(job_id),
          message.c_str());
  const std::unique_ptr<JobStore> owned = open_store(process_store_spec(), table);
  JobStore& store = *owned;
  // Its output says why (the error_log has it too, should that fail).
  std::unique_ptr<JobOutput> output;
  if (store.open_output(job_id, RunnerRef{}, &output).is_ok()) {
    output->append("deploy-runner: " + message + "\n");
    (void)output->close();
  }
  {
    // The final state must not be lost: wait for as long as the table is busy.
    // (Refused when the job is no longer running: nothing to record.)
    Status st = store.launch_failed(job_id, Instant::now());
    for (; !st.is_ok() && st.code() == kStoreBusy; st = store.launch_failed(job_id, Instant::now()))
      fprintf(stderr, "deploy-runner[job %llu]: cannot record that it failed yet, retrying: %s\n",
              static_cast<unsigned long long>(job_id), st.message().c_str());
    (void)store.make_durable();  // at worst the job is lost after a power cut
  }
}

namespace {

// A runner idle this long is let go.
constexpr Micros kIdleLimit = 60'000'000;
// A runner that takes no frame for this long is stuck: it is killed and the
// job goes to another.
constexpr int kSendLimitSeconds = 10;

// The launcher's end of one runner of its pool.
struct LaunchedRunner {
  pid_t pid;
  int fd;  // the launcher's end of the runner's socket
  bool busy;
  Micros idle_since;
};

class Launcher {
 public:
  Launcher(std::string state_dir, std::vector<RunAs> users, int argc, char** argv)
      : state_dir_(std::move(state_dir)),
        users_(std::move(users)),
        program_(argc > 0 ? argv[0] : "deploy-runner"),
        title_(argc, argv) {}

  ~Launcher() {
    for (const LaunchedRunner& r : runners_) close(r.fd);
  }

  int run() {
    const Status attached = JobTable::attach(state_dir_, &table_);
    if (!attached.is_ok()) {
      fprintf(stderr, "deploy-runner --launcher: %s\n", attached.message().c_str());
      return 1;
    }
    for (;;) {
      std::vector<pollfd> fds = {{STDIN_FILENO, POLLIN, 0}};
      for (const LaunchedRunner& r : runners_) fds.push_back({r.fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), poll_timeout()) < 0 && errno != EINTR) {
        fprintf(stderr, "deploy-runner --launcher: poll: %s\n", strerror(errno));
        return 1;
      }
      // Runners first: one that just became idle can take a job read below.
      size_t i = 1;
      for (auto it = runners_.begin(); it != runners_.end(); ++i) {
        it = fds[i].revents != 0 ? read_runner(it) : std::next(it);
      }
      if (fds[0].revents != 0) {
        const int code = read_requests();
        if (code >= 0) return code;
      }
      let_idle_runners_go();
    }
  }

 private:
  // -1 while requests may come; else the exit code.
  int read_requests() {
    const bool open = requests_.fill(STDIN_FILENO);
    LaunchRequest request;
    std::string raw;
    for (;;) {
      switch (requests_.take(&request, &raw)) {
        case FrameReader::Result::request:
          dispatch(std::move(request), raw);
          break;
        case FrameReader::Result::malformed:
          return malformed();
        case FrameReader::Result::none:
          return open ? -1 : 0;
      }
    }
  }

  int malformed() {
    fprintf(stderr, "deploy-runner --launcher: a malformed request; exiting\n");
    return 1;
  }

  std::list<LaunchedRunner>::iterator read_runner(std::list<LaunchedRunner>::iterator it) {
    char bytes[64];
    const ssize_t n = read(it->fd, bytes, sizeof bytes);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return std::next(it);
    if (n <= 0) {  // it exited: retired, terminated, or crashed
      close(it->fd);
      return runners_.erase(it);
    }
    if (memchr(bytes, kReady, static_cast<size_t>(n)) != nullptr) {
      it->busy = false;
      it->idle_since = mono_now();
    }
    return std::next(it);
  }

  void dispatch(LaunchRequest&& request, const std::string& raw) {
    for (auto it = runners_.begin(); it != runners_.end();) {
      if (it->busy) {
        ++it;
        continue;
      }
      if (send(it->fd, raw.data(), raw.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(raw.size())) {
        it->busy = true;
        return;
      }
      // Gone meanwhile, or stuck: the job goes to another runner.
      kill(it->pid, SIGKILL);
      close(it->fd);
      it = runners_.erase(it);
    }
    start_runner(std::move(request));
  }

  void start_runner(LaunchRequest&& request) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      record_launch_failure(
          *table_, request.job_id,
          std::string("cannot create a socket for the runner: ") + strerror(errno));
      return;
    }
    const pid_t pid = fork();
    if (pid == 0) {
      runner_main(state_dir_, std::move(table_), std::move(request), fds[1], title_, program_,
                  users_);
    }
    close(fds[1]);
    if (pid < 0) {
      close(fds[0]);
      record_launch_failure(*table_, request.job_id,
                            std::string("cannot fork the runner: ") + strerror(errno));
      return;
    }
    const timeval limit = {kSendLimitSeconds, 0};
    setsockopt(fds[0], SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    runners_.push_back(LaunchedRunner{pid, fds[0], true, 0});
  }

  int poll_timeout() const {
    Micros next = -1;
    for (const LaunchedRunner& r : runners_) {
      if (!r.busy && (next < 0 || r.idle_since + kIdleLimit < next))
        next = r.idle_since + kIdleLimit;
    }
    if (next < 0) return -1;
    return static_cast<int>(std::clamp<Micros>((next - mono_now()) / 1000 + 1, 0, INT_MAX));
  }

  // Closing its socket ends an idle runner.
  void let_idle_runners_go() {
    const Micros now = mono_now();
    for (auto it = runners_.begin(); it != runners_.end();) {
      if (!it->busy && now - it->idle_since >= kIdleLimit) {
        close(it->fd);
        it = runners_.erase(it);
      } else {
        ++it;
      }
    }
  }

  const std::string state_dir_;
  const std::vector<RunAs> users_;
  const std::string program_;
  ProcessTitle title_;
  std::unique_ptr<JobTable> table_;
  FrameReader requests_;
  std::list<LaunchedRunner> runners_;
};

}  // namespace

int run_launcher(const std::string& state_dir, const std::optional<LauncherUsers>& users, int argc,
                 char** argv) {
  // Out of httpd's process group: a stop signals the group, and the launcher
  // must rather see its stdin end, after the last request was written.
  setsid();
  // Whatever the scheduler's process held without close-on-exec (it is a
  // copy of httpd's parent) is not the launcher's to keep open.
  close_descriptors_from(STDERR_FILENO + 1);
  signal(SIGCHLD, SIG_IGN);  // runners are reaped by the kernel
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  std::vector<RunAs> job_users;
  if (users) {
    const Status became = become_launcher_user(*users, &job_users);
    if (!became.is_ok()) {
      fprintf(stderr,
              "deploy-runner --launcher: cannot become uid %u with CAP_SETUID, "
              "CAP_SETGID and CAP_KILL: %s\n",
              static_cast<unsigned>(users->uid), became.message().c_str());
      return 1;
    }
  }
  Launcher launcher(state_dir, std::move(job_users), argc, argv);
  return launcher.run();
}

}  // namespace deploy
