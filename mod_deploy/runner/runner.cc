// The runner's supervision of one job: start it, copy its output to the log
// and its progress lines to the record, stop it at the timeout or on cancel,
// reap everything it leaves, record the outcome once.
#include "runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>

#include "duration.h"
#include "store_spec.h"
#include "job_details.h"
#include "progress.h"
#include "secret_masker.h"

namespace deploy {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
// No progress line is longer; a longer line goes to the log but is not parsed.
constexpr size_t kMaxProgressLine = 4096;
// httpd nudges with SIGUSR1 after setting cancel_requested; the periodic check
// covers a nudge that was lost (e.g. sent before the runner existed).
constexpr Micros kCancelCheckInterval = 250'000;
// Bounds after the job's exit, so that a process stuck in the kernel cannot
// keep the outcome from being recorded.
constexpr Micros kDrainLimit = 2'000'000;
constexpr Micros kReapLimit = 5'000'000;
// While the store is busy (the table lock held elsewhere), output keeps
// going to the log: a report of progress waits this long at most, then is
// retried after kRecordRetryInterval with whatever came meanwhile.
constexpr Micros kOutputLockTimeout = 100'000;
constexpr Micros kRecordRetryInterval = 1'000'000;

// The signals the runner reads from its signalfd: they stay blocked.
sigset_t runner_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGUSR1, SIGTERM, SIGINT}) sigaddset(&set, sig);
  return set;
}

// Every signal back to its default action and only `blocked` blocked, as in a
// process that did not descend from httpd's worker threads. Everything is
// blocked meanwhile: a signal the scheduler ignores (SIGUSR1) must not find
// the runner with its default action, which is to die.
void reset_signals(const sigset_t& blocked) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);  // fails harmlessly for KILL, STOP
  sigprocmask(SIG_SETMASK, &blocked, nullptr);
}

std::optional<uint64_t> parse_number(std::string_view text) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<Micros> parse_milliseconds(std::string_view text) {
  const std::optional<uint64_t> ms = parse_number(text);
  if (!ms || *ms > uint64_t{INT64_MAX} / 1000) return std::nullopt;
  return static_cast<Micros>(*ms) * 1000;
}

// How the job is started: posix_spawn(), which clones without copying the
// runner's memory (CLONE_VM | CLONE_VFORK in glibc) and applies these
// between clone and exec: a session and group of its own (pgid == pid, the
// handle for killing all of it), every signal at its default action and
// none blocked, stdin from /dev/null, stdout and stderr into `output_fd`,
// the working directory. Everything else the runner holds is close-on-exec.
class SpawnSetup {
 public:
  SpawnSetup(int output_fd, const std::string& working_directory) {
    posix_spawnattr_init(&attr_);
    posix_spawn_file_actions_init(&actions_);
    // All bits, also those of glibc's internal signals (32, 33), which
    // sigfillset() leaves out and posix_spawn() would otherwise leave
    // ignored in the job: a job starts with no signal ignored.
    sigset_t all, none;
    memset(&all, 0xff, sizeof all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr_, &all);
    posix_spawnattr_setsigmask(&attr_, &none);
    posix_spawnattr_setflags(&attr_,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions_, output_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions_, output_fd, STDERR_FILENO);
#if __GLIBC_PREREQ(2, 34)
    posix_spawn_file_actions_addclosefrom_np(&actions_, STDERR_FILENO + 1);
#endif
    posix_spawn_file_actions_addchdir_np(&actions_, working_directory.c_str());
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attr_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // 0 and the job's pid, or the error number of what failed.
  int spawn(char* const* argv, char* const* envp, pid_t* pid) const {
    return posix_spawn(pid, argv[0], &actions_, &attr_, argv, envp);
  }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
};

// How a DeployUser job is started: posix_spawn() cannot change the user, so
// the runner forks, and the child does what SpawnSetup has posix_spawn do,
// becoming the user (privileges.h) before it changes to the working
// directory, so that the directory is checked with the job's rights. A
// failure before the exec comes back on a close-on-exec pipe: which step
// failed and its errno; nothing comes when the exec succeeded.
enum class ChildStep : int { user = 1, directory = 2, exec = 3 };

struct ChildFailure {
  ChildStep step;
  int error;
};

[[noreturn]] void run_child_as_user(const RunAs& user, int output_fd, int report_fd,
                                    const char* directory, char* const* argv, char* const* envp) {
  const auto fail = [report_fd](ChildStep step, int error) {
    const ChildFailure failure = {step, error};
    if (write(report_fd, &failure, sizeof failure) < 0) { /* the exit code says enough */
    }
    _exit(127);
  };
  setsid();
  const int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(output_fd, STDOUT_FILENO) < 0 ||
      dup2(output_fd, STDERR_FILENO) < 0)
    fail(ChildStep::exec, errno);
  // Whatever else is open goes at the exec, the report pipe included.
  close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC);
  if (const int error = become_job_user(user); error != 0) fail(ChildStep::user, error);
  if (chdir(directory) != 0) fail(ChildStep::directory, errno);
  // As SpawnSetup: every signal at its default action, none blocked.
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &default_action, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(argv[0], argv, envp);
  fail(ChildStep::exec, errno);
  _exit(127);  // fail() does not return
}

// Cuts output into lines for the progress parser, across reads. on_line
// gets each line and the offset in `data` just past its newline.
class LineSplitter {
 public:
  template <typename OnLine>
  void feed(std::string_view data, OnLine&& on_line) {
    size_t at = 0;
    while (at < data.size()) {
      const size_t newline = data.find('\n', at);
      const std::string_view piece = data.substr(at, newline - at);
      if (!overlong_ && partial_.size() + piece.size() > kMaxProgressLine) {
        overlong_ = true;
        partial_.clear();
      }
      if (!overlong_) partial_.append(piece);
      if (newline == std::string_view::npos) return;
      at = newline + 1;
      finish([&](std::string_view line) { on_line(line, at); });
    }
  }

  // The end of a line, or of the output: a last line without newline counts.
  template <typename OnLine>
  void finish(OnLine&& on_line) {
    if (!overlong_ && !partial_.empty()) on_line(std::string_view(partial_));
    partial_.clear();
    overlong_ = false;
  }

 private:
  std::string partial_;
  bool overlong_ = false;  // the current line is too long to be a progress line
};

enum class StopReason { none, timed_out, canceled };

// What became of a runner's operation on the job store.
enum class Access { done, gone, busy };

class Runner {
 public:
  Runner(const RunnerOptions& options, RunnerProcess* process)
      : options_(options),
        process_(*process),
        store_(process->store.get()),
        self_{static_cast<int32_t>(getpid()), process->start_ticks},
        signal_fd_(process->signal_fd),
        masker_(secret_values(options)) {}
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  int run();

 private:
  Status start_job();
  Status start_job_as_user(int pipe_fds[2], char* const* argv, char* const* envp);
  Status job_started(int output_fd);
  Status never_ran(int code, const std::string& reason);
  void say_in_log(const std::string& reason);
  void note_in_log(const std::string& line);
  void append_own_line(const std::string& line);
  std::string cancel_line();
  void wait_for_events(Micros timeout);
  Micros time_to_next_check() const;
  void read_signals();
  void read_output();
  void take_output(std::string_view output, ProgressUpdate* update);
  std::string take_line(std::string_view line, ProgressUpdate* update);
  void close_output();
  RunnerReport report() const;
  bool has_unpublished() const;
  void publish_output(const ProgressUpdate& update);
  void publish_unpublished();
  Access publish(bool* cancel_requested);
  Access access_of(const Status& status);
  void check_cancel_requested();
  void stop_job(StopReason reason);
  void give_up_job();
  void signal_job(int sig);
  void reap_children();
  void kill_reparented_children();
  void collect_leftovers();
  JobState outcome() const;
  void record_outcome();
  void warn(const char* format, ...) __attribute__((format(printf, 2, 3)));

  const RunnerOptions& options_;
  RunnerProcess& process_;
  JobStore* store_;
  const RunnerRef self_;  // fences every write of this runner
  const int signal_fd_;
  std::unique_ptr<JobOutput> log_;   // the job's output, as the store keeps it
  bool log_mid_line_ = false;        // the job's last output did not end its line
  int output_fd_ = -1;               // read end of the job's stdout and stderr
  uint64_t published_log_size_ = 0;  // the log size the store holds
  bool published_incomplete_ = false;
  // Not yet in the store, it being busy: retried at retry_at_.
  ProgressUpdate unpublished_;
  bool job_pid_unpublished_ = false;
  std::optional<Micros> retry_at_;  // monotonic
  bool busy_warned_ = false;
  // Not zeroed: a page of it is touched only when output fills it.
  std::unique_ptr<char[]> read_buffer_{new char[kReadChunk]};
  // DeploySecretEnv: the job's output passes here before anything else
  // sees it, the log and the progress lines included.
  SecretMasker masker_;
  LineSplitter lines_;
  // Of the masked output, the whole lists; unpublished: the store lacks them.
  std::vector<Stage> stages_;
  Outputs outputs_;
  bool stages_unpublished_ = false, outputs_unpublished_ = false;
  bool outputs_full_said_ = false;
  pid_t job_pid_ = -1;             // also the job's process group
  std::optional<int> job_status_;  // wait status, once the job has exited
  bool has_children_ = false;
  StopReason stop_reason_ = StopReason::none;
  std::optional<Micros> deadline_;  // monotonic; timeout
  std::optional<Micros> kill_at_;   // monotonic; SIGKILL after the grace
  Micros next_cancel_check_ = 0;    // monotonic
};

Runner::~Runner() {
  if (output_fd_ >= 0) close(output_fd_);
}

int Runner::run() {
  bool cancel_requested = false;
  // Waits for as long as the store is busy (a warning each kLockTimeout).
  Access access;
  while ((access = access_of(store_->runner_recorded(options_.job_id, self_, 0, kLockTimeout,
                                                     &cancel_requested))) == Access::busy)
    busy_warned_ = false;
  if (access != Access::done) return 0;  // canceled before the runner got to it
  next_cancel_check_ = mono_now() + kCancelCheckInterval;
  if (cancel_requested) {  // while it was being handed over: it never starts
    stop_reason_ = StopReason::canceled;
    note_in_log(cancel_line());
    record_outcome();
    return 0;
  }

  const Status started = start_job();
  if (!started.is_ok()) {
    warn("%s", started.message().c_str());
    say_in_log(started.message());
    record_outcome();  // failed, without exit code: it never ran
    return 0;
  }

  while (!job_status_) {
    wait_for_events(time_to_next_check());
    reap_children();
    if (job_status_) break;
    const Micros now = mono_now();
    if (deadline_ && now >= *deadline_) {
      note_in_log("deploy: timed out after " + format_duration(options_.timeout) +
                  " (DeployTimeout)\n");
      stop_job(StopReason::timed_out);
    }
    if (kill_at_ && now >= *kill_at_) {
      signal_job(SIGKILL);
      kill_at_.reset();
    }
    if (now >= next_cancel_check_) check_cancel_requested();
    if (retry_at_ && now >= *retry_at_) publish_unpublished();
  }
  collect_leftovers();
  record_outcome();
  return 0;
}

// Why the job could not start, as a line of its log (when the log is open).
void Runner::say_in_log(const std::string& reason) {
  if (!log_) return;
  append_own_line("deploy-runner: " + reason + "\n");
}

// A line of the module's own in the job's log (the audit of a cancel or a
// timeout), opening the log when the job has not started.
void Runner::note_in_log(const std::string& line) {
  if (!log_ && !store_->open_output(options_.job_id, self_, &log_).is_ok()) return;
  append_own_line(line);
}

// `line` on a line of its own, after a line the job left unfinished.
void Runner::append_own_line(const std::string& line) {
  log_->append(log_mid_line_ ? "\n" + line : line);
  log_mid_line_ = false;
}

// Who asked to cancel, as the store has it.
std::string Runner::cancel_line() {
  Job job;
  if (!store_->get(options_.job_id, &job).is_ok()) return cancel_note(std::nullopt, 0);
  return cancel_note(job.canceled_by, job.superseded_by);
}

// The job could not be started: its log says why, and it ends with `code`
// as its exit code, as it would from a shell.
Status Runner::never_ran(int code, const std::string& reason) {
  say_in_log(reason);
  job_status_ = W_EXITCODE(code, 0);
  return Status::ok();
}

Status Runner::start_job() {
  const Status opened = store_->open_output(options_.job_id, self_, &log_);
  if (!opened.is_ok()) return opened;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return Status::error(std::string("cannot create a pipe: ") + strerror(errno));
  }
  std::vector<char*> argv, envp;
  for (const std::string& word : options_.command) argv.push_back(const_cast<char*>(word.c_str()));
  argv.push_back(nullptr);
  for (const std::string& entry : options_.environment)
    envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);

  if (options_.user) {
    const Status started = start_job_as_user(pipe_fds, argv.data(), envp.data());
    if (!started.is_ok() || job_pid_ < 0) return started;
    return job_started(pipe_fds[0]);
  }
  // As a shell would: 126 when the job cannot be run where it should, 127
  // when its program cannot be executed; the reason goes to its log.
  const char* directory = options_.working_directory.c_str();
  int error = access(directory, X_OK) == 0 ? 0 : errno;
  if (error != 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return never_ran(126, std::string("cannot change to the working directory ") + directory +
                              ": " + strerror(error));
  }
  error = SpawnSetup(pipe_fds[1], options_.working_directory)
              .spawn(argv.data(), envp.data(), &job_pid_);
  close(pipe_fds[1]);  // the job's copies are the only writers: EOF when they are gone
  if (error != 0) {
    close(pipe_fds[0]);
    job_pid_ = -1;
    return never_ran(127, "cannot execute " + options_.command[0] + ": " + strerror(error));
  }
  return job_started(pipe_fds[0]);
}

// The job runs: its output is read from `output_fd`, its timeout counts.
Status Runner::job_started(int output_fd) {
  output_fd_ = output_fd;
  has_children_ = true;
  if (options_.timeout > 0) deadline_ = mono_now() + options_.timeout;

  job_pid_unpublished_ = true;
  publish_unpublished();
  return Status::ok();
}

// Forks the job as its DeployUser. Ok with job_pid_ set when it was
// executed; ok with job_pid_ -1 when it never ran (its log says why, with
// 126 or 127 as its exit code, as for a job spawned as the runner).
Status Runner::start_job_as_user(int pipe_fds[2], char* const* argv, char* const* envp) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return Status::error(std::string("cannot create a pipe: ") + strerror(errno));
  }
  const pid_t pid = fork();
  if (pid == 0) {
    run_child_as_user(*options_.user, pipe_fds[1], report[1], options_.working_directory.c_str(),
                      argv, envp);
  }
  const int fork_error = errno;
  close(report[1]);
  close(pipe_fds[1]);
  job_pid_ = pid;
  ChildFailure failure = {};
  ssize_t n = -1;
  if (pid > 0) {
    do n = read(report[0], &failure, sizeof failure);
    while (n < 0 && errno == EINTR);
  }
  close(report[0]);
  if (pid > 0 && n == 0) return Status::ok();  // executed: the pipe closed at the exec
  close(pipe_fds[0]);
  if (pid < 0) {
    job_pid_ = -1;
    return never_ran(127, std::string("cannot fork the job: ") + strerror(fork_error));
  }
  // It exited at once: reaped here, so the loop does not take it for the job.
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  job_pid_ = -1;
  const std::string error = n == ssize_t(sizeof failure) ? strerror(failure.error) : "no report";
  const RunAs& user = *options_.user;
  switch (n == ssize_t(sizeof failure) ? failure.step : ChildStep::exec) {
    case ChildStep::user:
      return never_ran(126, "cannot run as user " + user.name + " (uid " +
                                std::to_string(user.uid) + ", gid " + std::to_string(user.gid) +
                                "): " + error);
    case ChildStep::directory:
      return never_ran(126, "cannot change to the working directory " + options_.working_directory +
                                " as user " + user.name + ": " + error);
    case ChildStep::exec:
      break;
  }
  return never_ran(
      127, "cannot execute " + options_.command[0] + " as user " + user.name + ": " + error);
}

void Runner::wait_for_events(Micros timeout) {
  // A negative descriptor is skipped by poll(): the output may be closed.
  pollfd fds[] = {{signal_fd_, POLLIN, 0}, {output_fd_, POLLIN, 0}};
  const Micros ms = std::min<Micros>((timeout + 999) / 1000, INT_MAX);
  if (poll(fds, 2, static_cast<int>(ms)) < 0) {
    if (errno != EINTR) warn("poll: %s", strerror(errno));
    return;
  }
  if (fds[0].revents != 0) read_signals();
  if (fds[1].revents != 0) read_output();
}

Micros Runner::time_to_next_check() const {
  Micros next = next_cancel_check_;
  if (retry_at_) next = std::min(next, *retry_at_);
  if (deadline_) next = std::min(next, *deadline_);
  if (kill_at_) next = std::min(next, *kill_at_);
  return std::max<Micros>(0, next - mono_now());
}

void Runner::read_signals() {
  signalfd_siginfo info;
  while (read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    switch (info.ssi_signo) {
      case SIGUSR1:
        next_cancel_check_ = 0;
        break;
      case SIGTERM:
      case SIGINT:
        process_.terminated = true;
        stop_job(StopReason::canceled);
        break;
      default:  // SIGCHLD: the loop reaps after every wake-up
        break;
    }
  }
}

void Runner::read_output() {
  char* buffer = read_buffer_.get();
  const ssize_t n = read(output_fd_, buffer, kReadChunk);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    if (n < 0) warn("cannot read the job's output: %s", strerror(errno));
    close_output();
    return;
  }
  const std::string_view output(buffer, static_cast<size_t>(n));
  ProgressUpdate update;  // the latest of each field: one commit per read
  if (masker_.empty()) {
    take_output(output, &update);
  } else {
    take_output(masker_.feed(output), &update);
  }
  publish_output(update);
}

// Output as it is stored (masked): the log first, so that a reader who sees
// the new progress finds its line there; then its progress lines, the
// latest of each field into *update, its stages and outputs into the
// runner's lists. A line the runner adds (an output refused) follows the
// line it is about.
void Runner::take_output(std::string_view output, ProgressUpdate* update) {
  if (output.empty()) return;
  size_t logged = 0;  // bytes of `output` in the log
  lines_.feed(output, [&](std::string_view line, size_t end) {
    const std::string said = take_line(line, update);
    if (said.empty()) return;
    log_->append(output.substr(logged, end - logged));
    log_->append(said);
    logged = end;
  });
  log_->append(output.substr(logged));
  log_mid_line_ = output.back() != '\n';
}

// One line of output: what it sets, and a line for the log ("" none).
std::string Runner::take_line(std::string_view line, ProgressUpdate* update) {
  if (std::optional<ProgressUpdate> parsed = parse_progress_line(line)) {
    if (parsed->progress) update->progress = parsed->progress;
    if (parsed->stage) {
      if (enter_stage(&stages_, *parsed->stage, wall_now())) stages_unpublished_ = true;
      update->stage = std::move(parsed->stage);
    }
    return "";
  }
  std::optional<OutputLine> output = parse_output_line(line);
  if (!output) return "";
  switch (set_output(&outputs_, output->name, output->value)) {
    case OutputChange::set:
      outputs_unpublished_ = true;
      break;
    case OutputChange::unchanged:
      break;
    case OutputChange::full:
      // Once: a job that loops over names must not double its log.
      if (outputs_full_said_) break;
      outputs_full_said_ = true;
      return "deploy-runner: output " + output->name + " ignored: at most " +
             std::to_string(kOutputsMax) + " outputs (further new names are ignored too)\n";
  }
  return "";
}

void Runner::close_output() {
  // What the masker held back ends the output, before its last line.
  ProgressUpdate update;
  if (!masker_.empty()) take_output(masker_.finish(), &update);
  lines_.finish([&](std::string_view line) {
    const std::string said = take_line(line, &update);
    if (!said.empty()) log_->append("\n" + said);  // the last line had no newline
  });
  publish_output(update);
  close(output_fd_);
  output_fd_ = -1;
}

// What the store lacks, with the log's size and state as they are now.
RunnerReport Runner::report() const {
  RunnerReport r;
  if (job_pid_unpublished_) r.job_pid = job_pid_;
  r.progress = unpublished_.progress.value_or(-1);
  r.stage = unpublished_.stage;
  if (stages_unpublished_) r.stages = stages_;
  if (outputs_unpublished_) r.outputs = outputs_;
  r.log_size = log_ ? log_->size() : published_log_size_;
  r.log_incomplete = log_ && log_->incomplete();
  return r;
}

bool Runner::has_unpublished() const {
  const RunnerReport r = report();
  return r.log_size != published_log_size_ || r.log_incomplete != published_incomplete_ ||
         r.progress >= 0 || r.stage || job_pid_unpublished_ || stages_unpublished_ ||
         outputs_unpublished_;
}

// The new log size and the latest progress and stage of one read, in one
// commit.
void Runner::publish_output(const ProgressUpdate& update) {
  if (update.progress) unpublished_.progress = update.progress;
  if (update.stage) unpublished_.stage = update.stage;
  if (retry_at_) return;  // the store is busy: the retry takes this too
  publish_unpublished();
}

// Reports what the store lacks (log size, lost output, progress, stage, job
// pid) in one commit; when the store is busy, keeps it for a retry.
void Runner::publish_unpublished() {
  if (!has_unpublished()) {
    retry_at_.reset();
    return;
  }
  publish(nullptr);
}

// record_progress with what the store lacks, waiting kOutputLockTimeout at
// most; busy: kept for a retry at retry_at_; gone: the job is given up.
Access Runner::publish(bool* cancel_requested) {
  if (log_) {
    if (const Status flushed = log_->flush(); !flushed.is_ok())
      warn("%s", flushed.message().c_str());
  }
  const RunnerReport sent = report();
  const Access access = access_of(
      store_->record_progress(options_.job_id, self_, sent, kOutputLockTimeout, cancel_requested));
  if (access == Access::busy) {
    if (has_unpublished()) retry_at_ = mono_now() + kRecordRetryInterval;
    return access;
  }
  retry_at_.reset();
  published_log_size_ = sent.log_size;
  published_incomplete_ = sent.log_incomplete;
  job_pid_unpublished_ = false;
  stages_unpublished_ = outputs_unpublished_ = false;
  unpublished_ = ProgressUpdate{};
  if (access == Access::gone) give_up_job();
  return access;
}

// What a store operation's result means for the runner. busy: the store
// could not be had in time (a warning the first time); gone: the job is no
// longer this runner's (finished, lost, or left the store).
Access Runner::access_of(const Status& status) {
  if (status.is_ok()) {
    busy_warned_ = false;
    return Access::done;
  }
  if (status.code() == kStoreBusy || status.code() == kStoreUnavailable) {
    if (!busy_warned_)
      warn("cannot update the job's record, retrying: %s", status.message().c_str());
    busy_warned_ = true;
    return Access::busy;
  }
  if (status.code() != kNotOwner) warn("%s", status.message().c_str());
  busy_warned_ = false;
  return Access::gone;
}

void Runner::check_cancel_requested() {
  next_cancel_check_ = mono_now() + kCancelCheckInterval;
  // The check reports what the store lacks on the way (gone: given up).
  bool requested = false;
  if (publish(&requested) == Access::done && requested && stop_reason_ == StopReason::none &&
      !job_status_) {
    note_in_log(cancel_line());
    stop_job(StopReason::canceled);
  }
}

// SIGTERM to the whole group, SIGKILL after the grace if it is still there.
void Runner::stop_job(StopReason reason) {
  if (job_status_ || stop_reason_ != StopReason::none) return;
  stop_reason_ = reason;
  deadline_.reset();
  signal_job(SIGTERM);
  signal_job(SIGCONT);  // a stopped process would see its SIGTERM only after the SIGKILL
  kill_at_ = mono_now() + options_.kill_grace;
}

// The record is gone or was finished by someone else: nobody can watch or
// count this job any more, so it must not go on running unseen.
void Runner::give_up_job() {
  if (job_status_ || stop_reason_ != StopReason::none) return;
  warn("the job's record is gone or no longer running; stopping the job");
  stop_job(StopReason::canceled);
}

void Runner::signal_job(int sig) {
  if (job_pid_ <= 0) return;  // -job_pid_ would name some other group
  // Until the child has called setsid() the group does not exist yet.
  if (kill(-job_pid_, sig) != 0 && errno == ESRCH) kill(job_pid_, sig);
}

void Runner::reap_children() {
  for (;;) {
    siginfo_t info{};
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) has_children_ = false;
      return;
    }
    if (info.si_pid == 0) return;  // children remain, none has ended
    if (info.si_pid == job_pid_) {
      // What the job left in its group is killed (documented). Now, while
      // the job's zombie keeps its pid, the group id cannot name anyone else.
      kill(-job_pid_, SIGKILL);
    }
    int status = 0;
    if (waitpid(info.si_pid, &status, 0) == job_pid_) job_status_ = status;
  }
}

// Orphans of the job that left its group (setsid, setpgid) escape the group
// kill, but as subreaper the runner is their parent: no process of the job
// may survive it.
void Runner::kill_reparented_children() {
  const std::string path = "/proc/self/task/" + std::to_string(getpid()) + "/children";
  FILE* file = fopen(path.c_str(), "re");
  if (file == nullptr) return;
  int pid = 0;
  while (fscanf(file, "%d", &pid) == 1) kill(pid, SIGKILL);
  fclose(file);
}

// After the job's exit: its last output, and every process left to reap.
void Runner::collect_leftovers() {
  const Micros exited_at = mono_now();
  for (;;) {
    kill_reparented_children();
    const Micros now = mono_now();
    if (output_fd_ >= 0 && now >= exited_at + kDrainLimit) {
      warn("the job's output is still open %lld ms after it ended; not reading it further",
           static_cast<long long>(kDrainLimit / 1000));
      close_output();
    }
    if (output_fd_ < 0 && !has_children_) return;
    if (now >= exited_at + kReapLimit) {
      warn("processes of the job still exist %lld ms after it ended; not waiting for them",
           static_cast<long long>(kReapLimit / 1000));
      return;
    }
    const Micros until = output_fd_ >= 0 ? exited_at + kDrainLimit : exited_at + kReapLimit;
    wait_for_events(until - now);
    reap_children();
  }
}

JobState Runner::outcome() const {
  switch (stop_reason_) {
    case StopReason::timed_out:
      return JobState::timed_out;
    case StopReason::canceled:
      return JobState::canceled;
    case StopReason::none:
      break;
  }
  const bool exited_zero = job_status_ && WIFEXITED(*job_status_) && WEXITSTATUS(*job_status_) == 0;
  return exited_zero ? JobState::succeeded : JobState::failed;
}

void Runner::record_outcome() {
  Outcome outcome_seen;
  outcome_seen.state = outcome();
  if (job_status_ && WIFEXITED(*job_status_)) outcome_seen.exit_code = WEXITSTATUS(*job_status_);
  if (job_status_ && WIFSIGNALED(*job_status_)) outcome_seen.signal = WTERMSIG(*job_status_);
  // The last line saying what was lost, the log's room ahead released.
  if (log_) {
    if (const Status closed = log_->close(); !closed.is_ok()) warn("%s", closed.message().c_str());
  }
  // The last of the output, with what a busy store kept from being reported
  // before, and how the job ended, in one commit. The final state must not
  // be lost: wait for as long as the store is busy.
  const RunnerReport last = report();
  const auto try_finish = [&] {
    return store_->finish(options_.job_id, self_, outcome_seen, last, Instant::now(), kLockTimeout);
  };
  Status finished = try_finish();
  for (;
       !finished.is_ok() && (finished.code() == kStoreBusy || finished.code() == kStoreUnavailable);
       finished = try_finish())
    warn("cannot record the outcome yet, retrying: %s", finished.message().c_str());
  if (!finished.is_ok()) {
    warn("the job's record is no longer running; its outcome %s is not recorded",
         std::string(state_name(outcome_seen.state)).c_str());
    return;
  }
  // The outcome is on disk before the runner takes another job.
  if (Status durable = store_->make_durable(); !durable.is_ok())
    fprintf(stderr, "deploy-runner[job %llu]: [error] %s\n",
            static_cast<unsigned long long>(options_.job_id), durable.message().c_str());
}

void Runner::warn(const char* format, ...) {
  char message[1024];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  // One write per line, so that lines of several runners do not interleave.
  fprintf(stderr, "deploy-runner[job %llu]: %s\n", static_cast<unsigned long long>(options_.job_id),
          message);
}

}  // namespace

Status parse_runner_arguments(int argc, const char* const* argv, char* const* environment,
                              RunnerOptions* out) {
  const Status usage = Status::error(
      "usage: deploy-runner STATE_DIR JOB_ID TIMEOUT_MS GRACE_MS WORKDIR -- COMMAND [ARG...]");
  if (argc < 7 || std::string_view(argv[5]) != "--") return usage;
  RunnerOptions options;
  options.state_dir = argv[0];
  const std::optional<uint64_t> id = parse_number(argv[1]);
  const std::optional<Micros> timeout = parse_milliseconds(argv[2]);
  const std::optional<Micros> grace = parse_milliseconds(argv[3]);
  if (!id || *id == 0 || !timeout || !grace) return usage;
  options.job_id = *id;
  options.timeout = *timeout;
  options.kill_grace = *grace;
  options.working_directory = argv[4];
  options.command.assign(argv + 6, argv + argc);
  for (char* const* entry = environment; *entry != nullptr; ++entry)
    options.environment.emplace_back(*entry);
  *out = std::move(options);
  return Status::ok();
}

Status prepare_runner_process(int first_to_close) {
  // Fails only for a group leader (started by hand from a shell), which is
  // out of reach of httpd's group kill already.
  setsid();
  // Blocked at once, not only once the job starts: a SIGUSR1 or SIGTERM that
  // comes early waits in the signalfd instead of killing the runner.
  reset_signals(runner_signals());
  // 0-2 stay (stderr is httpd's error_log); a closed one is opened on
  // /dev/null so that no later descriptor takes its number.
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) < 0) open("/dev/null", O_RDWR);
  }
  close_descriptors_from(first_to_close);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return Status::error(std::string("cannot become a subreaper: ") + strerror(errno));
  }
  return Status::ok();
}

void close_descriptors_from(int first) {
  if (close_range(first, ~0U, 0) == 0) return;
  // close_range() needs Linux 5.9.
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  std::vector<int> fds;
  while (const dirent* entry = readdir(dir)) {
    const int fd = atoi(entry->d_name);
    if (fd >= first && fd != dirfd(dir)) fds.push_back(fd);
  }
  closedir(dir);
  for (int fd : fds) close(fd);
}

RunnerProcess::~RunnerProcess() {
  if (signal_fd >= 0) close(signal_fd);
}

// SIGCHLD, the SIGUSR1 nudge and SIGTERM/SIGINT arrive through a descriptor
// the event loop polls, next to the job's output: no handler, no race.
Status RunnerProcess::open(const std::string& state_dir) {
  if (!table) {
    const Status attached = JobTable::attach(state_dir, &table);
    if (!attached.is_ok())
      return Status::error("cannot attach the job table: " + attached.message());
  }
  if (start_ticks == 0) start_ticks = process_start_ticks(getpid());
  if (!store) store = open_store(process_store_spec(), *table);
  if (signal_fd < 0) {
    const sigset_t set = runner_signals();
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0)
      return Status::error(std::string("cannot block signals: ") + strerror(errno));
    signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0) return Status::error(std::string("signalfd: ") + strerror(errno));
  }
  return Status::ok();
}

void RunnerProcess::read_idle_signals() {
  signalfd_siginfo info;
  while (read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) terminated = true;
  }
}

int run_job(const RunnerOptions& options, RunnerProcess* process) {
  const Status opened = process->open(options.state_dir);
  if (!opened.is_ok()) {
    fprintf(stderr, "deploy-runner[job %llu]: %s\n",
            static_cast<unsigned long long>(options.job_id), opened.message().c_str());
    return 1;
  }
  Runner runner(options, process);
  return runner.run();
}

bool has_no_children() {
  siginfo_t info{};
  return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD;
}

}  // namespace deploy
