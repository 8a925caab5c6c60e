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

#include "file_store.h"
#include "job_table.h"
#include "launch_request.h"
#include "privileges.h"
#include "runner.h"

namespace deploy {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
// A runner idle this long is let go.
constexpr Micros kIdleLimit = 60'000'000;
// A runner that takes no frame for this long is stuck: it is killed and the
// job goes to another.
constexpr int kSendLimitSeconds = 10;
// What a runner writes to the launcher once it is ready for another job.
constexpr char kReady = 'R';
// The runner's end of its socket, in the runner.
constexpr int kRunnerSocket = STDERR_FILENO + 1;

// The memory of main()'s argv strings, which /proc/PID/cmdline shows: a
// runner writes its own words there.
class ProcessTitle {
 public:
  ProcessTitle(int argc, char** argv) {
    if (argc == 0) return;
    begin_ = argv[0];
    end_ = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
  }

  // Words separated by NULs, cut to the space there is, the rest zeroed.
  void set(const std::vector<std::string_view>& words) {
    char* out = begin_;
    for (std::string_view word : words) {
      const size_t room = static_cast<size_t>(end_ - out);
      if (room < 2) break;
      const size_t n = std::min(word.size(), room - 1);
      memcpy(out, word.data(), n);
      out += n;
      *out++ = '\0';
    }
    if (out != nullptr) memset(out, 0, static_cast<size_t>(end_ - out));
  }

 private:
  char* begin_ = nullptr;
  char* end_ = nullptr;
};

// Frames from a descriptor, across reads: call fill() when the descriptor
// is readable, then take() until it has no whole frame left.
class FrameReader {
 public:
  enum class Result { request, none, malformed };

  // One read; false once the descriptor has ended (or failed).
  bool fill(int fd) {
    const ssize_t n = read(fd, chunk_.data(), chunk_.size());
    if (n < 0) return errno == EINTR || errno == EAGAIN;
    buffer_.append(chunk_.data(), static_cast<size_t>(n));
    return n > 0;
  }

  // The next whole frame read so far: `request` holds it, `raw` (unless
  // null) its bytes.
  Result take(LaunchRequest* request, std::string* raw) {
    size_t used = 0;
    switch (decode_launch_request(buffer_, request, &used)) {
      case DecodeResult::complete:
        if (raw != nullptr) raw->assign(buffer_, 0, used);
        buffer_.erase(0, used);
        return Result::request;
      case DecodeResult::malformed:
        return Result::malformed;
      case DecodeResult::incomplete:
        break;
    }
    return Result::none;
  }

 private:
  std::string buffer_;
  std::vector<char> chunk_ = std::vector<char>(kReadChunk);
};

// The job cannot get a runner: it failed without running, as a runner whose
// start fails records it.
void record_launch_failure(JobTable& table, uint64_t job_id, const std::string& message) {
  fprintf(stderr, "deploy-runner[job %llu]: %s\n", static_cast<unsigned long long>(job_id),
          message.c_str());
  FileStore store(table);
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

// ---------------------------------------------------------------- runner

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

// In the forked child: runs `first`, then every job the launcher sends, one at
// a time, on the launcher's `table`. Never returns.
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

// ---------------------------------------------------------------- launcher

struct Runner {
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
    for (const Runner& r : runners_) close(r.fd);
  }

  int run() {
    const Status attached = JobTable::attach(state_dir_, &table_);
    if (!attached.is_ok()) {
      fprintf(stderr, "deploy-runner --launcher: %s\n", attached.message().c_str());
      return 1;
    }
    for (;;) {
      std::vector<pollfd> fds = {{STDIN_FILENO, POLLIN, 0}};
      for (const Runner& r : runners_) fds.push_back({r.fd, POLLIN, 0});
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

  std::list<Runner>::iterator read_runner(std::list<Runner>::iterator it) {
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
    runners_.push_back(Runner{pid, fds[0], true, 0});
  }

  int poll_timeout() const {
    Micros next = -1;
    for (const Runner& r : runners_) {
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
  std::list<Runner> runners_;
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
