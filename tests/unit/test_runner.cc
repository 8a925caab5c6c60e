// The runner, run for real: the built deploy-runner supervises small shell
// scripts against a job table in a temporary directory, and the tests read
// the outcome from the record, the log and /proc.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "file_store.h"
#include "job_details.h"
#include "job_table.h"
#include "launch_request.h"
#include "unit_test.h"

#ifndef DEPLOY_RUNNER_PATH
#error "DEPLOY_RUNNER_PATH must name the built deploy-runner"
#endif

namespace {

using deploy::JobRecord;
using deploy::JobState;
using deploy::JobTable;
using deploy::Micros;

// No wait in this file takes longer; a job that needs it is broken.
constexpr Micros kWaitBound = 20'000'000;
constexpr Micros kMillisecond = 1000;
const std::vector<std::string> kJobEnvironment = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};

struct Fixture {
  std::string dir;  // scripts, files the jobs write, and the job's working directory
  std::unique_ptr<JobTable> table;
};
Fixture* fixture = nullptr;

void set_up() {
  char dir[] = "/tmp/test_runner.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  fixture = new Fixture{dir, nullptr};
  std::vector<std::string> warnings;
  const deploy::Status opened =
      JobTable::open_for_startup(fixture->dir + "/state", 64, -1, -1, &fixture->table, &warnings);
  ck_assert_msg(opened.is_ok(), "%s", opened.message().c_str());
}

void tear_down() {
  fixture->table.reset();
  std::filesystem::remove_all(fixture->dir);
  delete fixture;
  fixture = nullptr;
}

std::string path_in_dir(const std::string& name) { return fixture->dir + "/" + name; }

std::string write_script(const std::string& name, const std::string& body) {
  const std::string path = path_in_dir(name);
  std::ofstream(path) << "#!/bin/sh\n" << body;
  ck_assert_int_eq(chmod(path.c_str(), 0755), 0);
  return path;
}

// A record as the scheduler leaves it for the runner: running, started.
uint64_t add_running_job() {
  JobTable::Lock lock(*fixture->table);
  uint64_t evicted = 0;
  JobRecord* r = lock.allocate(&evicted);
  ck_assert_ptr_nonnull(r);
  deploy::store_text(r->target, sizeof r->target, "webapp");
  r->state = static_cast<uint8_t>(JobState::running);
  const deploy::Instant now = deploy::Instant::now();
  r->submitted_at = r->started_at = now.wall;
  r->submitted_mono = r->started_mono = now.mono;
  lock.commit(r);
  return r->id;
}

// Changes the record of `id` as httpd would, and commits it.
void update_record(uint64_t id, const std::function<void(JobRecord&)>& change) {
  JobTable::Lock lock(*fixture->table);
  JobRecord* r = lock.find(id);
  ck_assert_ptr_nonnull(r);
  change(*r);
  lock.commit(r);
}

// A call of deploy-runner; fields left alone are the defaults.
struct RunnerCall {
  explicit RunnerCall(std::string program) : command{std::move(program)} {}
  std::vector<std::string> command;
  int timeout_ms = 0;
  int grace_ms = 10'000;
  std::vector<std::string> environment = kJobEnvironment;
  std::string working_directory;         // "": the fixture's directory
  std::vector<uint32_t> secret_entries;  // DeploySecretEnv (through the launcher only)
};

// Starts deploy-runner the way httpd's scheduler would, and as hostile as
// httpd's worker threads: every signal blocked, some ignored, and a
// descriptor without close-on-exec (fd 42).
pid_t start_runner(uint64_t id, const RunnerCall& call) {
  std::vector<std::string> words = {
      DEPLOY_RUNNER_PATH,
      fixture->dir + "/state",
      std::to_string(id),
      std::to_string(call.timeout_ms),
      std::to_string(call.grace_ms),
      call.working_directory.empty() ? fixture->dir : call.working_directory,
      "--"};
  words.insert(words.end(), call.command.begin(), call.command.end());
  std::vector<char*> argv, envp;
  for (const std::string& word : words) argv.push_back(const_cast<char*>(word.c_str()));
  argv.push_back(nullptr);
  for (const std::string& entry : call.environment)
    envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);

  const pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) signal(sig, SIG_IGN);
    dup2(open("/dev/null", O_RDONLY), 42);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

// The record of `id` once `done` holds for it, waiting for table changes.
JobRecord wait_for_record(uint64_t id, const std::function<bool(const JobRecord&)>& done,
                          const char* what) {
  const Micros give_up_at = deploy::mono_now() + kWaitBound;
  for (;;) {
    const uint64_t seen = fixture->table->change_seq();
    {
      JobTable::Lock lock(*fixture->table);
      const JobRecord* r = lock.find(id);
      ck_assert_ptr_nonnull(r);
      if (done(*r)) return *r;
    }
    const Micros left = give_up_at - deploy::mono_now();
    ck_assert_msg(left > 0, "job %llu: gave up waiting for %s", static_cast<unsigned long long>(id),
                  what);
    fixture->table->wait_for_change(seen, left);
  }
}

JobRecord wait_for_final_state(uint64_t id) {
  return wait_for_record(
      id, [](const JobRecord& r) { return deploy::is_final(JobState(r.state)); }, "a final state");
}

JobRecord wait_for_stage(uint64_t id, const std::string& stage) {
  return wait_for_record(
      id, [&](const JobRecord& r) { return r.has_stage && r.stage == stage; }, stage.c_str());
}

// The runner's exit status, waited for with a bound.
int wait_for_runner_exit(pid_t pid) {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  ck_assert_int_ge(pidfd, 0);
  pollfd exited = {pidfd, POLLIN, 0};
  ck_assert_msg(poll(&exited, 1, kWaitBound / 1000) == 1, "deploy-runner did not exit");
  close(pidfd);
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  return status;
}

// Runs `call` for a new running job to its end; the final record.
JobRecord run_to_end(const RunnerCall& call, uint64_t* id_out = nullptr) {
  const uint64_t id = add_running_job();
  if (id_out != nullptr) *id_out = id;
  const pid_t runner = start_runner(id, call);
  const int status = wait_for_runner_exit(runner);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "deploy-runner ended with %d",
                status);
  const JobRecord r = wait_for_final_state(id);
  ck_assert_int_eq(r.runner_pid, runner);
  return r;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string log_of(uint64_t id) { return read_file(fixture->table->log_path(id)); }

// The "key=value" lines of a job's log.
std::map<std::string, std::string> values_in_log(uint64_t id) {
  std::map<std::string, std::string> values;
  std::istringstream log(log_of(id));
  for (std::string line; std::getline(log, line);) {
    const size_t equals = line.find('=');
    if (equals != std::string::npos) values[line.substr(0, equals)] = line.substr(equals + 1);
  }
  return values;
}

pid_t pid_in_file(const std::string& name) {
  const std::string text = read_file(path_in_dir(name));
  ck_assert_msg(!text.empty(), "the job did not write %s", name.c_str());
  return static_cast<pid_t>(std::stol(text));
}

// Gone for good: neither running nor a zombie waiting to be reaped.
void assert_process_gone(pid_t pid, const char* what) {
  const bool gone = kill(pid, 0) != 0 && errno == ESRCH;
  ck_assert_msg(gone, "%s (pid %d) still exists: %s", what, pid,
                read_file("/proc/" + std::to_string(pid) + "/stat").c_str());
}

void assert_exited_with(const JobRecord& r, JobState state, int exit_code) {
  ck_assert_str_eq(deploy::state_name(JobState(r.state)).data(), deploy::state_name(state).data());
  ck_assert_int_eq(r.has_exit_code, 1);
  ck_assert_int_eq(r.exit_code, exit_code);
  ck_assert_int_eq(r.has_signal, 0);
  ck_assert_int_ge(r.finished_at, r.started_at);
}

void assert_killed_with(const JobRecord& r, JobState state, int signal) {
  ck_assert_str_eq(deploy::state_name(JobState(r.state)).data(), deploy::state_name(state).data());
  ck_assert_int_eq(r.has_signal, 1);
  ck_assert_int_eq(r.signal, signal);
  ck_assert_int_eq(r.has_exit_code, 0);
  ck_assert_int_ge(r.finished_at, r.started_at);
}

START_TEST(exit_zero_succeeds_with_exit_code_zero) {
  const JobRecord r = run_to_end(RunnerCall(write_script("job.sh", "exit 0\n")));
  assert_exited_with(r, JobState::succeeded, 0);
  ck_assert_int_gt(r.job_pid, 0);
  ck_assert_int_ne(r.job_pid, r.runner_pid);
  ck_assert_uint_ne(r.runner_start_ticks, 0);
  JobTable::Lock lock(*fixture->table);
  ck_assert_uint_eq(lock.header().counters.finished[uint8_t(JobState::succeeded)], 1);
}
END_TEST

START_TEST(nonzero_exit_fails_with_its_exit_code) {
  const JobRecord r = run_to_end(RunnerCall(write_script("job.sh", "exit 3\n")));
  assert_exited_with(r, JobState::failed, 3);
  JobTable::Lock lock(*fixture->table);
  ck_assert_uint_eq(lock.header().counters.finished[uint8_t(JobState::failed)], 1);
}
END_TEST

START_TEST(progress_and_stage_lines_update_record_and_stay_in_log) {
  // The job stops at the fifo until the test has seen its first progress.
  const std::string go = path_in_dir("go");
  ck_assert_int_eq(mkfifo(go.c_str(), 0600), 0);
  const std::string job = write_script("job.sh",
                                       "echo starting\n"
                                       "echo '::progress 40 Provisioning'\n"
                                       "read _ < go\n"
                                       "echo 'to stderr' >&2\n"
                                       "echo '::stage Checking SSH'\n"
                                       "printf '::prog'; sleep 0.2; printf 'ress 90\\n'\n"
                                       "printf '::progress 10 %5000s\\n' x\n"
                                       "printf '::stage Done'\n");
  const uint64_t id = add_running_job();
  const pid_t runner = start_runner(id, RunnerCall(job));

  const JobRecord live = wait_for_stage(id, "Provisioning");
  ck_assert_int_eq(live.progress, 40);
  ck_assert_int_eq(live.state, uint8_t(JobState::running));
  // The log is written before the record says what is in it.
  const std::string first_lines = "starting\n::progress 40 Provisioning\n";
  const std::string live_log = log_of(id);
  ck_assert_str_eq(live_log.c_str(), first_lines.c_str());
  ck_assert_uint_eq(live.log_size, first_lines.size());
  std::ofstream(go) << "\n";

  ck_assert_int_eq(wait_for_runner_exit(runner), 0);
  const JobRecord r = wait_for_final_state(id);
  assert_exited_with(r, JobState::succeeded, 0);
  // A line split across reads counts; a line over 4096 bytes does not; the
  // last line counts without its newline.
  ck_assert_int_eq(r.progress, 90);
  ck_assert_str_eq(r.stage, "Done");
  const std::string expected_log =
      "starting\n::progress 40 Provisioning\nto stderr\n"
      "::stage Checking SSH\n::progress 90\n::progress 10 " +
      std::string(4999, ' ') + "x\n::stage Done";
  const std::string log = log_of(id);
  ck_assert_str_eq(log.c_str(), expected_log.c_str());
  ck_assert_uint_eq(r.log_size, expected_log.size());
}
END_TEST

// While the table is busy the job goes on and its output goes to the log;
// what could not be recorded meanwhile (progress, stage, log size) comes
// with the outcome once the table is free.
START_TEST(a_busy_table_delays_the_record_but_loses_nothing) {
  const std::string go = path_in_dir("go");
  ck_assert_int_eq(mkfifo(go.c_str(), 0600), 0);
  const std::string job = write_script("job.sh",
                                       "echo '::progress 30 Build'\n"
                                       "read _ < go\n"
                                       "echo '::progress 70 Ship'\n"
                                       "echo done\n"
                                       "exit 3\n");
  const uint64_t id = add_running_job();
  const pid_t runner = start_runner(id, RunnerCall(job));
  wait_for_stage(id, "Build");
  {
    JobTable::Lock lock(*fixture->table);
    ck_assert(lock.held());
    std::ofstream(go) << "\n";
    // Longer than the runner's wait for a report (100 ms) and its retry (1 s).
    usleep(1'500'000);
    const std::string log = log_of(id);
    ck_assert_str_eq(log.c_str(), "::progress 30 Build\n::progress 70 Ship\ndone\n");
    const JobRecord* r = lock.find(id);
    ck_assert_int_eq(r->state, uint8_t(JobState::running));
    ck_assert_int_eq(r->progress, 30);
  }
  ck_assert_int_eq(wait_for_runner_exit(runner), 0);
  const JobRecord r = wait_for_final_state(id);
  assert_exited_with(r, JobState::failed, 3);
  ck_assert_int_eq(r.progress, 70);
  ck_assert_str_eq(r.stage, "Ship");
  ck_assert_uint_eq(r.log_size, log_of(id).size());
  ck_assert_int_eq(r.log_incomplete, 0);
}
END_TEST

START_TEST(job_sees_exactly_the_environment_given) {
  const std::vector<std::string> environment = {
      "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "DEPLOY_JOB_ID=7",
      "DEPLOY_PARAM_VERSION=1.2 with spaces", "DEPLOY_SUBMITTED_BY="};
  uint64_t id = 0;
  RunnerCall call("/usr/bin/env");
  call.environment = environment;
  const JobRecord r = run_to_end(call, &id);
  assert_exited_with(r, JobState::succeeded, 0);
  std::string expected;
  for (const std::string& entry : environment) expected += entry + "\n";
  const std::string log = log_of(id);
  ck_assert_str_eq(log.c_str(), expected.c_str());
}
END_TEST

START_TEST(job_has_own_group_and_session_stdin_descriptors_and_directory) {
  // /proc/PID/stat: pid (comm) state ppid pgrp session; the job's parent is the runner.
  const std::string job = write_script(
      "job.sh",
      "set -- $(cat /proc/$$/stat); echo job_pid=$1; echo job_pgid=$5; echo job_sid=$6\n"
      "set -- $(cat /proc/$PPID/stat); echo runner_pid=$1; echo runner_pgid=$5; "
      "echo runner_sid=$6\n"
      "echo stdin=$(readlink /proc/$$/fd/0)\n"
      "if [ -e /proc/$$/fd/42 ]; then echo fd42=open; else echo fd42=closed; fi\n"
      "if [ -e /proc/$PPID/fd/42 ]; then echo runner_fd42=open; else echo runner_fd42=closed; "
      "fi\n"
      "echo cwd=$(pwd -P)\n");
  const std::string work = path_in_dir("work");
  ck_assert_int_eq(mkdir(work.c_str(), 0700), 0);
  uint64_t id = 0;
  RunnerCall call(job);
  call.working_directory = work;
  const JobRecord r = run_to_end(call, &id);
  assert_exited_with(r, JobState::succeeded, 0);

  std::map<std::string, std::string> values = values_in_log(id);
  const std::string job_pid = std::to_string(r.job_pid);
  const std::string runner_pid = std::to_string(r.runner_pid);
  ck_assert_str_eq(values["job_pid"].c_str(), job_pid.c_str());
  ck_assert_str_eq(values["job_pgid"].c_str(), job_pid.c_str());
  ck_assert_str_eq(values["job_sid"].c_str(), job_pid.c_str());
  ck_assert_str_eq(values["runner_pid"].c_str(), runner_pid.c_str());
  ck_assert_str_eq(values["runner_pgid"].c_str(), runner_pid.c_str());
  ck_assert_str_eq(values["runner_sid"].c_str(), runner_pid.c_str());
  ck_assert_str_eq(values["stdin"].c_str(), "/dev/null");
  ck_assert_str_eq(values["fd42"].c_str(), "closed");
  ck_assert_str_eq(values["runner_fd42"].c_str(), "closed");
  const std::string canonical_work = std::filesystem::canonical(work);
  ck_assert_str_eq(values["cwd"].c_str(), canonical_work.c_str());
}
END_TEST

START_TEST(timeout_kills_job_and_descendants_that_ignore_sigterm) {
  // Ignored signals stay ignored across fork and exec: every process here
  // ignores SIGTERM. One child stays in the job's group; one is orphaned
  // (reparented to the runner); one is orphaned and leaves the group.
  const std::string job =
      write_script("job.sh",
                   "trap '' TERM\n"
                   "sh -c 'while :; do sleep 1; done' & echo $! > child.pid\n"
                   "( sh -c 'while :; do sleep 1; done' & echo $! > orphan.pid )\n"
                   "( setsid sh -c 'while :; do sleep 1; done' & echo $! > escaped.pid )\n"
                   "echo $$ > job.pid\n"
                   "echo '::stage ready'\n"
                   "while :; do sleep 1; done\n");
  RunnerCall call(job);
  call.timeout_ms = 1000;
  call.grace_ms = 500;
  const JobRecord r = run_to_end(call);

  assert_killed_with(r, JobState::timed_out, SIGKILL);
  ck_assert_msg(r.has_stage && std::string(r.stage) == "ready",
                "the job was stopped before it started its children");
  ck_assert_int_ge(r.finished_at - r.started_at, (call.timeout_ms + call.grace_ms) * kMillisecond);
  ck_assert_int_eq(pid_in_file("job.pid"), r.job_pid);
  // The runner has exited, but it records the outcome only after reaping
  // everything: nothing may be left, not even a zombie.
  assert_process_gone(r.job_pid, "the job");
  assert_process_gone(pid_in_file("child.pid"), "the job's child");
  assert_process_gone(pid_in_file("orphan.pid"), "the job's orphan");
  assert_process_gone(pid_in_file("escaped.pid"), "the job's orphan in its own session");
}
END_TEST

START_TEST(the_timeout_line_starts_a_line_of_its_own_after_an_unfinished_one) {
  const std::string job = write_script("job.sh", "printf 'half a line'\nexec sleep 1000\n");
  RunnerCall call(job);
  call.timeout_ms = 1000;
  call.grace_ms = 500;
  const JobRecord r = run_to_end(call);
  assert_killed_with(r, JobState::timed_out, SIGTERM);
  const std::string log = log_of(r.id);
  ck_assert_msg(log.rfind("half a line\ndeploy: timed out after ", 0) == 0, "log: %s", log.c_str());
}
END_TEST

START_TEST(leftovers_of_a_finished_job_are_killed) {
  // The child holds the output pipe open too: the runner must not wait for it.
  const std::string job = write_script("job.sh",
                                       "sleep 1000 & echo $! > child.pid\n"
                                       "exit 0\n");
  const JobRecord r = run_to_end(RunnerCall(job));
  assert_exited_with(r, JobState::succeeded, 0);
  ck_assert_int_lt(r.finished_at - r.started_at, 2'000 * kMillisecond);
  assert_process_gone(pid_in_file("child.pid"), "the job's child");
}
END_TEST

// A job that waits, for the cancel tests: SIGTERM ends it, the grace is far
// longer than the test waits, so a SIGKILL would come too late.
uint64_t start_waiting_job(pid_t* runner) {
  const std::string job = write_script("job.sh", "echo '::stage ready'\nexec sleep 1000\n");
  const uint64_t id = add_running_job();
  RunnerCall call(job);
  call.grace_ms = 60'000;
  *runner = start_runner(id, call);
  wait_for_stage(id, "ready");
  return id;
}

START_TEST(cancel_request_and_nudge_stop_job_with_sigterm) {
  pid_t runner = 0;
  const uint64_t id = start_waiting_job(&runner);
  update_record(id, [](JobRecord& r) { r.cancel_requested = 1; });
  ck_assert_int_eq(kill(runner, SIGUSR1), 0);
  ck_assert_int_eq(wait_for_runner_exit(runner), 0);
  const JobRecord r = wait_for_final_state(id);
  assert_killed_with(r, JobState::canceled, SIGTERM);
  assert_process_gone(r.job_pid, "the job");
}
END_TEST

START_TEST(sigterm_to_runner_cancels_job) {
  pid_t runner = 0;
  const uint64_t id = start_waiting_job(&runner);
  ck_assert_int_eq(kill(runner, SIGTERM), 0);
  ck_assert_int_eq(wait_for_runner_exit(runner), 0);
  assert_killed_with(wait_for_final_state(id), JobState::canceled, SIGTERM);
}
END_TEST

START_TEST(missing_command_fails_with_127_and_says_why) {
  const std::string command = path_in_dir("no-such-program");
  uint64_t id = 0;
  const JobRecord r = run_to_end(RunnerCall(command), &id);
  assert_exited_with(r, JobState::failed, 127);
  const std::string expected =
      "deploy-runner: cannot execute " + command + ": No such file or directory\n";
  const std::string log = log_of(id);
  ck_assert_str_eq(log.c_str(), expected.c_str());
}
END_TEST

START_TEST(missing_working_directory_fails_with_126_and_says_why) {
  uint64_t id = 0;
  RunnerCall call("/bin/true");
  call.working_directory = path_in_dir("no-such-dir");
  const JobRecord r = run_to_end(call, &id);
  assert_exited_with(r, JobState::failed, 126);
  const std::string log = log_of(id);
  ck_assert_msg(log.find("cannot change to the working directory") != std::string::npos, "log: %s",
                log.c_str());
}
END_TEST

START_TEST(job_canceled_before_runner_started_is_left_alone) {
  const std::string marker = path_in_dir("ran");
  const std::string job = write_script("job.sh", "touch " + marker + "\n");
  const uint64_t id = add_running_job();
  update_record(id, [](JobRecord& r) { r.state = uint8_t(JobState::canceled); });
  ck_assert_int_eq(wait_for_runner_exit(start_runner(id, RunnerCall(job))), 0);
  JobTable::Lock lock(*fixture->table);
  const JobRecord* r = lock.find(id);
  ck_assert_int_eq(r->state, uint8_t(JobState::canceled));
  ck_assert_int_eq(r->runner_pid, 0);
  ck_assert(!std::filesystem::exists(marker));
}
END_TEST

START_TEST(job_canceled_while_handed_over_never_starts) {
  // Canceled after the scheduler made it running, before its runner took
  // it: the cancel flag is set and no runner pid is there to signal.
  const std::string marker = path_in_dir("ran");
  const std::string job = write_script("job.sh", "touch " + marker + "\n");
  const uint64_t id = add_running_job();
  update_record(id, [](JobRecord& r) { r.cancel_requested = 1; });
  const pid_t runner = start_runner(id, RunnerCall(job));
  ck_assert_int_eq(wait_for_runner_exit(runner), 0);
  const JobRecord r = wait_for_final_state(id);
  ck_assert_str_eq(deploy::state_name(JobState(r.state)).data(), "canceled");
  ck_assert_int_eq(r.has_exit_code, 0);
  ck_assert_int_eq(r.has_signal, 0);
  ck_assert_int_eq(r.job_pid, 0);
  ck_assert(!std::filesystem::exists(marker));
}
END_TEST

START_TEST(job_starts_with_no_signal_blocked_or_ignored) {
  // grep as the job itself, reading its own status: a shell would change its
  // mask while it waits for a command.
  RunnerCall call("/bin/grep");
  call.command.insert(call.command.end(), {"-E", "^Sig(Blk|Ign):", "/proc/self/status"});
  uint64_t id = 0;
  assert_exited_with(run_to_end(call, &id), JobState::succeeded, 0);
  const std::string log = log_of(id);
  ck_assert_str_eq(log.c_str(), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}
END_TEST

// ---------------------------------------------------------------- launcher

// deploy-runner --launcher on the fixture's state dir, fed through a pipe as
// the scheduler feeds it.
struct LauncherUnderTest {
  pid_t pid = -1;
  int requests = -1;  // write end of its stdin
};

LauncherUnderTest start_launcher(const std::vector<std::string>& users = {}) {
  int fds[2];
  ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
  LauncherUnderTest launcher;
  launcher.pid = fork();
  ck_assert_int_ge(launcher.pid, 0);
  if (launcher.pid == 0) {
    dup2(fds[0], STDIN_FILENO);
    const std::string state = fixture->dir + "/state";
    std::vector<const char*> argv = {DEPLOY_RUNNER_PATH, "--launcher", state.c_str()};
    for (const std::string& word : users) argv.push_back(word.c_str());
    argv.push_back(nullptr);
    const char* envp[] = {nullptr};
    execve(argv[0], const_cast<char**>(argv.data()), const_cast<char**>(envp));
    _exit(127);
  }
  close(fds[0]);
  launcher.requests = fds[1];
  return launcher;
}

void send_job(const LauncherUnderTest& launcher, uint64_t id, const RunnerCall& call,
              uint32_t uid = 0, uint32_t gid = 0) {
  deploy::LaunchRequest request;
  request.user_id = uid;
  request.group_id = gid;
  request.job_id = id;
  request.timeout = call.timeout_ms * kMillisecond;
  request.kill_grace = call.grace_ms * kMillisecond;
  request.working_directory =
      call.working_directory.empty() ? fixture->dir : call.working_directory;
  request.command = call.command;
  request.environment = call.environment;
  request.secret_entries = call.secret_entries;
  const std::string frame = deploy::encode_launch_request(request);
  ck_assert(!frame.empty());
  ck_assert_int_eq(write(launcher.requests, frame.data(), frame.size()), frame.size());
}

// The words of /proc/PID/cmdline (a runner's title), trailing empty ones dropped.
std::vector<std::string> command_line(pid_t pid) {
  const std::string text = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (c != '\0') {
      word += c;
    } else {
      words.push_back(word);
      word.clear();
    }
  }
  while (!words.empty() && words.back().empty()) words.pop_back();
  return words;
}

std::vector<std::string> title(const std::string& last) {
  return {DEPLOY_RUNNER_PATH, fixture->dir + "/state", last};
}

// Waits, with the bound, until `pid` shows `expected` as its command line.
void wait_for_title(pid_t pid, const std::vector<std::string>& expected) {
  const Micros give_up_at = deploy::mono_now() + kWaitBound;
  while (command_line(pid) != expected) {
    ck_assert_msg(deploy::mono_now() < give_up_at, "pid %d never showed the title %s", pid,
                  expected.back().c_str());
    usleep(5000);
  }
}

// Waits for a process that is not our child to end.
void wait_for_exit_of(pid_t pid) {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0 && errno == ESRCH) return;
  ck_assert_int_ge(pidfd, 0);
  pollfd exited = {pidfd, POLLIN, 0};
  ck_assert_msg(poll(&exited, 1, kWaitBound / 1000) == 1, "pid %d did not exit", pid);
  close(pidfd);
}

START_TEST(launcher_runs_jobs_one_after_another_in_one_runner) {
  // Each job sees exactly its own environment and none of the runner's descriptors, however
  // many jobs the runner ran before; what a job leaves behind is gone before
  // the next one starts.
  const std::string job =
      write_script("job.sh",
                   "echo env=$(tr '\\0' '\\n' < /proc/$$/environ | sort | tr '\\n' ' ')\n"
                   "echo runner_fds=$(for f in /proc/$$/fd/*; do readlink $f; done | "
                   "grep -c -e socket: -e anon_inode: -e /state/)\n"
                   "setsid sh -c 'sleep 1000' & echo $! > \"left-$DEPLOY_JOB_ID.pid\"\n");
  const LauncherUnderTest launcher = start_launcher();
  std::vector<JobRecord> done;
  for (int i = 0; i < 3; ++i) {
    const uint64_t id = add_running_job();
    RunnerCall call(job);
    call.environment = {"PATH=/usr/bin:/bin", "DEPLOY_JOB_ID=" + std::to_string(id)};
    send_job(launcher, id, call);
    done.push_back(wait_for_final_state(id));
    assert_exited_with(done.back(), JobState::succeeded, 0);
    std::map<std::string, std::string> values = values_in_log(id);
    const std::string env = "DEPLOY_JOB_ID=" + std::to_string(id) + " PATH=/usr/bin:/bin";
    ASSERT_TEXT_EQ(values["env"], env);
    // None of the runner's descriptors (its socket, signalfd, table, lock, log).
    ASSERT_TEXT_EQ(values["runner_fds"], "0");
    assert_process_gone(pid_in_file("left-" + std::to_string(id) + ".pid"), "a job's leftover");
    // Idle shows once the launcher has been told; a job sent before that
    // may go to a new runner.
    wait_for_title(done.back().runner_pid, title("idle"));
  }
  ck_assert_int_eq(done[1].runner_pid, done[0].runner_pid);
  ck_assert_int_eq(done[2].runner_pid, done[0].runner_pid);
  ck_assert_int_ne(done[0].runner_pid, launcher.pid);

  // The end of its requests ends the launcher, and the idle runner with it.
  close(launcher.requests);
  ck_assert_int_eq(wait_for_runner_exit(launcher.pid), 0);
  wait_for_exit_of(done[0].runner_pid);
}
END_TEST

START_TEST(secrets_are_masked_before_the_log_and_the_stage_see_them) {
  // LONG begins with SHORT; the job writes LONG in two pieces, in progress
  // and stage lines, twice on a line, and at the very end without newline.
  const std::string job = write_script("job.sh",
                                       "echo \"whole $LONG\"\n"
                                       "printf 'split %.5s' \"$LONG\"; sleep 0.2\n"
                                       "printf '%s end\\n' \"${LONG#?????}\"\n"
                                       "echo \"twice $SHORT $SHORT, $LONG $SHORT\"\n"
                                       "echo \"::progress 50 with $SHORT\"\n"
                                       "printf '::stage last %s' \"$LONG\"\n");
  const LauncherUnderTest launcher = start_launcher();
  const uint64_t id = add_running_job();
  RunnerCall call(job);
  call.environment = {"PATH=/usr/bin:/bin", "SHORT=s3cr3t", "LONG=s3cr3t-and-more"};
  call.secret_entries = {1, 2};
  send_job(launcher, id, call);
  const JobRecord r = wait_for_final_state(id);
  assert_exited_with(r, JobState::succeeded, 0);
  const std::string expected =
      "whole ***\nsplit *** end\ntwice *** ***, *** ***\n::progress 50 with ***\n::stage last ***";
  ASSERT_TEXT_EQ(log_of(id), expected);
  ck_assert_uint_eq(r.log_size, expected.size());
  // The last line was parsed after the masker let go of its end.
  ck_assert_str_eq(r.stage, "last ***");
  ck_assert_int_eq(r.progress, 50);

  // The next job of the same runner, without secrets, is not masked.
  const uint64_t plain = add_running_job();
  call.secret_entries.clear();
  send_job(launcher, plain, call);
  assert_exited_with(wait_for_final_state(plain), JobState::succeeded, 0);
  ck_assert(log_of(plain).find("whole s3cr3t-and-more\n") != std::string::npos);
  close(launcher.requests);
  ck_assert_int_eq(wait_for_runner_exit(launcher.pid), 0);
}
END_TEST

// Stages and outputs come from the masked output, line by line: each new
// stage value is an entry with its times, a later output wins, a 17th name
// is refused once in the log, right after its line.
START_TEST(stages_and_outputs_come_from_the_masked_output) {
  std::string script =
      "echo '::stage Create VM'\n"
      "echo '::progress 10 Create VM'\n"  // the same stage: no new entry
      "sleep 0.3\n"
      "echo \"::output address 10.0.0.$SHORT\"\n"
      "echo '::progress 50 Ansible'\n"
      "echo '::output address 10.0.0.8'\n";
  for (int i = 1; i < 16; ++i) script += "echo '::output o" + std::to_string(i) + " v'\n";
  script += "echo after\necho '::output o16 v'\necho '::output o17 v'\n";
  script += "printf '::stage Playbooks'\n";
  const LauncherUnderTest launcher = start_launcher();
  const uint64_t id = add_running_job();
  RunnerCall call(write_script("job.sh", script));
  call.environment = {"PATH=/usr/bin:/bin", "SHORT=s3cr3t"};
  call.secret_entries = {1};
  send_job(launcher, id, call);
  assert_exited_with(wait_for_final_state(id), JobState::succeeded, 0);
  deploy::FileStore store(*fixture->table, "");
  deploy::Job job;
  ck_assert(store.get(id, &job).is_ok());
  ck_assert_uint_eq(job.stages.size(), 3);
  ASSERT_TEXT_EQ(job.stages[0].name, "Create VM");
  ASSERT_TEXT_EQ(job.stages[1].name, "Ansible");
  ASSERT_TEXT_EQ(job.stages[2].name, "Playbooks");
  ck_assert_int_ge(job.stages[0].started_at, job.started_at);
  ck_assert_int_ge(job.stages[0].finished_at - job.stages[0].started_at, 250'000);
  ck_assert_int_eq(job.stages[0].finished_at, job.stages[1].started_at);
  ck_assert_int_eq(job.stages[2].finished_at, 0);  // closed by the job's end (stage_finished_at)
  ck_assert_int_eq(deploy::stage_finished_at(job, 2), job.finished_at);
  ck_assert_uint_eq(job.outputs.size(), deploy::kOutputsMax);
  ASSERT_TEXT_EQ(job.outputs[0].first, "address");
  ASSERT_TEXT_EQ(job.outputs[0].second, "10.0.0.8");
  ASSERT_TEXT_EQ(job.outputs[15].first, "o15");
  const std::string log = log_of(id);
  ck_assert(log.find("s3cr3t") == std::string::npos);
  ck_assert(log.find("::output address 10.0.0.***\n") != std::string::npos);
  // Said once, after its line: o17 is ignored without a word.
  ck_assert_msg(log.find("after\n::output o16 v\ndeploy-runner: output o16 ignored: at most 16 "
                         "outputs (further new names are ignored too)\n::output o17 v\n"
                         "::stage Playbooks") != std::string::npos,
                "%s", log.c_str());
  close(launcher.requests);
  ck_assert_int_eq(wait_for_runner_exit(launcher.pid), 0);
}
END_TEST

START_TEST(launcher_gives_running_jobs_their_own_runners_which_outlive_it) {
  const std::string gate = path_in_dir("gate");
  const std::string job = write_script(
      "job.sh", "echo '::stage ready'\nwhile [ ! -e " + gate + " ]; do sleep 0.05; done\n");
  const LauncherUnderTest launcher = start_launcher();
  const uint64_t first = add_running_job(), second = add_running_job();
  send_job(launcher, first, RunnerCall(job));
  send_job(launcher, second, RunnerCall(job));
  const JobRecord a = wait_for_stage(first, "ready"), b = wait_for_stage(second, "ready");
  ck_assert_int_ne(a.runner_pid, b.runner_pid);
  wait_for_title(a.runner_pid, title(std::to_string(first)));
  wait_for_title(b.runner_pid, title(std::to_string(second)));

  // The scheduler is gone: the launcher ends, the busy runners do not.
  close(launcher.requests);
  ck_assert_int_eq(wait_for_runner_exit(launcher.pid), 0);
  ck_assert_int_eq(kill(a.runner_pid, 0), 0);
  ck_assert_int_eq(kill(b.runner_pid, 0), 0);
  std::ofstream(gate) << "";
  assert_exited_with(wait_for_final_state(first), JobState::succeeded, 0);
  assert_exited_with(wait_for_final_state(second), JobState::succeeded, 0);
  // Then they end, without a launcher to ask for more.
  wait_for_exit_of(a.runner_pid);
  wait_for_exit_of(b.runner_pid);
}
END_TEST

START_TEST(sigterm_ends_an_idle_runner_and_the_next_job_gets_another) {
  const std::string job = write_script("job.sh", "exit 0\n");
  const LauncherUnderTest launcher = start_launcher();
  const uint64_t first = add_running_job();
  send_job(launcher, first, RunnerCall(job));
  const JobRecord a = wait_for_final_state(first);
  wait_for_title(a.runner_pid, title("idle"));
  ck_assert_int_eq(kill(a.runner_pid, SIGTERM), 0);
  wait_for_exit_of(a.runner_pid);

  const uint64_t second = add_running_job();
  send_job(launcher, second, RunnerCall(job));
  const JobRecord b = wait_for_final_state(second);
  assert_exited_with(b, JobState::succeeded, 0);
  ck_assert_int_ne(b.runner_pid, a.runner_pid);
  close(launcher.requests);
  ck_assert_int_eq(wait_for_runner_exit(launcher.pid), 0);
}
END_TEST

START_TEST(a_malformed_request_ends_the_launcher) {
  const LauncherUnderTest launcher = start_launcher();
  const uint32_t too_large = deploy::kMaxLaunchFrame;
  ck_assert_int_eq(write(launcher.requests, &too_large, sizeof too_large), sizeof too_large);
  const int status = wait_for_runner_exit(launcher.pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "the launcher ended with %d",
                status);
  close(launcher.requests);
}
END_TEST

// DeployUser (root only): the launcher becomes --user keeping CAP_SETUID,
// CAP_SETGID and CAP_KILL, and its runners start a job as a --job-user, with
// no capability, and as no one else.
START_TEST(a_privileged_launcher_runs_jobs_only_as_the_users_it_was_given) {
  if (geteuid() != 0) {
    fprintf(stderr, "skipped: running jobs as another user needs root\n");
    return;
  }
  // nobody is the launcher's User and owns the state dir; daemon (1:1) is
  // the one DeployUser; bin (2:2) is not one.
  const uid_t nobody = 65534;
  for (const std::string& path : {fixture->dir + "/state", fixture->dir + "/state/logs",
                                  fixture->dir + "/state/jobs.table", fixture->dir + "/state/lock"})
    ck_assert_int_eq(chown(path.c_str(), nobody, nobody), 0);
  ck_assert_int_eq(chmod(fixture->dir.c_str(), 0755), 0);
  const std::string job = write_script(
      "whoami.sh",
      "echo ids=$(id -u):$(id -g):$(id -G)\n"
      "echo caps=$(grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status | cut -f2 | tr '\\n' ,)\n"
      "echo runner=$(grep -E '^CapEff' /proc/$PPID/status | cut -f2)\n");
  const LauncherUnderTest launcher =
      start_launcher({"--user", "65534:65534", "--job-user", "1:1:daemon"});

  const uint64_t as_daemon = add_running_job();
  send_job(launcher, as_daemon, RunnerCall(job), 1, 1);
  assert_exited_with(wait_for_final_state(as_daemon), JobState::succeeded, 0);
  std::map<std::string, std::string> seen = values_in_log(as_daemon);
  ASSERT_TEXT_EQ(seen["ids"], "1:1:1");
  ASSERT_TEXT_EQ(seen["caps"], "0000000000000000,0000000000000000,0000000000000000,");
  ASSERT_TEXT_EQ(seen["runner"], "00000000000000e0");  // CAP_KILL, CAP_SETGID, CAP_SETUID

  const uint64_t as_bin = add_running_job();
  send_job(launcher, as_bin, RunnerCall(job), 2, 2);
  const JobRecord refused = wait_for_final_state(as_bin);
  ck_assert_int_eq(refused.state, static_cast<uint8_t>(JobState::failed));
  ck_assert(!refused.has_exit_code);
  ck_assert_msg(log_of(as_bin).find("may not run jobs as uid 2") != std::string::npos, "log: %s",
                log_of(as_bin).c_str());

  const uint64_t as_user = add_running_job();
  send_job(launcher, as_user, RunnerCall(job));
  assert_exited_with(wait_for_final_state(as_user), JobState::succeeded, 0);
  seen = values_in_log(as_user);
  ASSERT_TEXT_EQ(seen["ids"], "65534:65534:65534");
  ASSERT_TEXT_EQ(seen["caps"], "0000000000000000,0000000000000000,0000000000000000,");
  close(launcher.requests);
  ck_assert_int_eq(wait_for_runner_exit(launcher.pid), 0);
}
END_TEST

Suite* runner_suite() {
  Suite* suite = suite_create("runner");

  TCase* outcome = deploy::test::case_with_fixture("outcome", set_up, tear_down, 30);
  tcase_add_test(outcome, exit_zero_succeeds_with_exit_code_zero);
  tcase_add_test(outcome, nonzero_exit_fails_with_its_exit_code);
  tcase_add_test(outcome, missing_command_fails_with_127_and_says_why);
  tcase_add_test(outcome, missing_working_directory_fails_with_126_and_says_why);
  tcase_add_test(outcome, job_canceled_before_runner_started_is_left_alone);
  tcase_add_test(outcome, job_canceled_while_handed_over_never_starts);
  suite_add_tcase(suite, outcome);

  TCase* output = deploy::test::case_with_fixture("output", set_up, tear_down, 30);
  tcase_add_test(output, progress_and_stage_lines_update_record_and_stay_in_log);
  tcase_add_test(output, a_busy_table_delays_the_record_but_loses_nothing);
  suite_add_tcase(suite, output);

  TCase* process = deploy::test::case_with_fixture("process", set_up, tear_down, 30);
  tcase_add_test(process, job_sees_exactly_the_environment_given);
  tcase_add_test(process, job_has_own_group_and_session_stdin_descriptors_and_directory);
  tcase_add_test(process, job_starts_with_no_signal_blocked_or_ignored);
  suite_add_tcase(suite, process);

  TCase* stopping = deploy::test::case_with_fixture("stopping", set_up, tear_down, 30);
  tcase_add_test(stopping, timeout_kills_job_and_descendants_that_ignore_sigterm);
  tcase_add_test(stopping, leftovers_of_a_finished_job_are_killed);
  tcase_add_test(stopping, cancel_request_and_nudge_stop_job_with_sigterm);
  tcase_add_test(stopping, the_timeout_line_starts_a_line_of_its_own_after_an_unfinished_one);
  tcase_add_test(stopping, sigterm_to_runner_cancels_job);
  suite_add_tcase(suite, stopping);

  TCase* launcher = deploy::test::case_with_fixture("launcher", set_up, tear_down, 30);
  tcase_add_test(launcher, launcher_runs_jobs_one_after_another_in_one_runner);
  tcase_add_test(launcher, secrets_are_masked_before_the_log_and_the_stage_see_them);
  tcase_add_test(launcher, stages_and_outputs_come_from_the_masked_output);
  tcase_add_test(launcher, launcher_gives_running_jobs_their_own_runners_which_outlive_it);
  tcase_add_test(launcher, sigterm_ends_an_idle_runner_and_the_next_job_gets_another);
  tcase_add_test(launcher, a_malformed_request_ends_the_launcher);
  tcase_add_test(launcher, a_privileged_launcher_runs_jobs_only_as_the_users_it_was_given);
  suite_add_tcase(suite, launcher);

  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(runner_suite);
