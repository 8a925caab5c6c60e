// The conformance suite of the job store interface (core/job_store.h),
// written once against the interface. Each engine's test file includes it
// and passes a factory (StoreFactory); the suite knows no engine.
//
// Every test starts from an empty store (set_up), and may open more stores
// on the same data (attach), also in forked processes: what each process of
// a real deployment does.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "job_store.h"
#include "unit_test.h"

namespace deploy::conformance {

struct StoreFactory {
  // A new, empty store with room for `capacity` jobs (unfinished and kept).
  std::function<void(uint32_t capacity)> create;
  // A store on the data create() made: another process's view of it.
  std::function<std::unique_ptr<JobStore>()> attach;
  // Removes what create() made.
  std::function<void()> destroy;
};

inline StoreFactory g_factory;
inline std::unique_ptr<JobStore> g_store;
constexpr uint32_t kCapacity = 512;

inline void set_up() {
  g_factory.create(kCapacity);
  g_store = g_factory.attach();
}

inline void tear_down() {
  g_store.reset();
  g_factory.destroy();
}

inline std::string code_of(const Status& st) { return st.is_ok() ? "ok" : st.code(); }

#define ASSERT_OK(expr)                                                               \
  do {                                                                                \
    const ::deploy::Status assert_st_ = (expr);                                       \
    ck_assert_msg(assert_st_.is_ok(), "%s: %s", #expr, assert_st_.message().c_str()); \
  } while (0)

inline NewSubmission submission(const std::string& target, Micros quiet_window = 0,
                                uint32_t queue_limit = 100) {
  NewSubmission s;
  s.target = target;
  s.params = {{"ref", "main"}};
  s.submitted_by = "alice";
  s.policy.quiet_window = quiet_window;
  s.policy.concurrency = 0;
  s.limits.max_running = 1000;
  s.limits.queue_limit = queue_limit;
  return s;
}

inline Job submit_new(JobStore& store, const std::string& target, Micros quiet_window = 0) {
  SubmitResult result;
  ASSERT_OK(store.submit(submission(target, quiet_window), Instant::now(), &result));
  ck_assert_int_eq(int(result.kind), int(SubmissionDecision::Kind::new_job));
  return result.job;
}

// A runner's identity in tests: this process, or a made-up one.
inline RunnerRef self_runner() { return RunnerRef{int32_t(getpid()), 4242}; }

// A runner's report of progress `progress`, `stage`, `log_size` bytes.
inline RunnerReport report(int progress, std::optional<std::string> stage = std::nullopt,
                           uint64_t log_size = 0, bool log_incomplete = false,
                           int32_t job_pid = 0) {
  RunnerReport r;
  r.job_pid = job_pid;
  r.progress = progress;
  r.stage = std::move(stage);
  r.log_size = log_size;
  r.log_incomplete = log_incomplete;
  return r;
}

inline Job started(JobStore& store, const Job& job) {
  Job out;
  ASSERT_OK(store.start(job.id, Instant::now(), &out));
  return out;
}

inline uint64_t finished_count(JobStore& store, JobState s) {
  StoreCounters c;
  ASSERT_OK(store.counters(&c));
  return c.counters.finished[uint8_t(s)];
}

// A pass's `now` may be from before it got the store, and a submission
// recorded meanwhile: the job is still not started before it was submitted.
START_TEST(a_job_never_starts_before_its_submission) {
  const Job j = submit_new(*g_store, "web");
  Instant earlier = Instant::now();
  earlier.wall = j.submitted_at - 5000000;
  Job out;
  ASSERT_OK(g_store->start(j.id, earlier, &out));
  ck_assert_int_eq(int(out.state), int(JobState::running));
  ck_assert_int_ge(out.started_at, j.submitted_at);
}
END_TEST

START_TEST(a_submission_is_a_new_job_with_a_growing_id_and_counted_accepted) {
  const Job a = submit_new(*g_store, "web");
  const Job b = submit_new(*g_store, "web");
  ck_assert_uint_gt(a.id, 0);
  ck_assert_uint_gt(b.id, a.id);
  ck_assert_int_eq(int(a.state), int(JobState::queued));
  ck_assert(a.submitted_by == std::optional<std::string>("alice"));
  ck_assert(a.params == (Params{{"ref", "main"}}));
  StoreCounters c;
  ASSERT_OK(g_store->counters(&c));
  ck_assert_uint_eq(c.counters.accepted, 2);
  ck_assert_uint_eq(c.unfinished.size(), 2);
}
END_TEST

START_TEST(a_submission_within_the_quiet_window_joins_the_waiting_job) {
  const Job first = submit_new(*g_store, "web", 60000000);
  ck_assert_int_eq(int(first.state), int(JobState::waiting));
  SubmitResult joined;
  ASSERT_OK(g_store->submit(submission("web", 60000000), Instant::now(), &joined));
  ck_assert_int_eq(int(joined.kind), int(SubmissionDecision::Kind::coalesce));
  ck_assert_uint_eq(joined.job.id, first.id);
  ck_assert_uint_eq(joined.job.requests, 2);
  StoreCounters c;
  ASSERT_OK(g_store->counters(&c));
  ck_assert_uint_eq(c.counters.accepted, 1);
  ck_assert_uint_eq(c.counters.coalesced, 1);
}
END_TEST

START_TEST(a_full_queue_refuses_and_counts_the_rejection) {
  SubmitResult r;
  ASSERT_OK(g_store->submit(submission("web", 0, 1), Instant::now(), &r));
  ck_assert_int_eq(int(r.kind), int(SubmissionDecision::Kind::new_job));
  ASSERT_OK(g_store->submit(submission("web", 0, 1), Instant::now(), &r));
  ck_assert_int_eq(int(r.kind), int(SubmissionDecision::Kind::queue_full));
  StoreCounters c;
  ASSERT_OK(g_store->counters(&c));
  ck_assert_uint_eq(c.counters.accepted, 1);
  ck_assert_uint_eq(c.counters.rejected[uint8_t(Rejection::queue_full)], 1);
}
END_TEST

START_TEST(a_withdrawn_job_leaves_the_store_and_the_accepted_count) {
  const Job a = submit_new(*g_store, "web");
  ASSERT_OK(g_store->withdraw(a.id));
  Job out;
  ASSERT_TEXT_EQ(code_of(g_store->get(a.id, &out)), kNotFound);
  StoreCounters c;
  ASSERT_OK(g_store->counters(&c));
  ck_assert_uint_eq(c.counters.accepted, 0);
}
END_TEST

START_TEST(ready_queues_a_waiting_job_once) {
  const Job a = submit_new(*g_store, "web", 60000000);
  ASSERT_OK(g_store->ready(a.id, Instant::now()));
  Job out;
  ASSERT_OK(g_store->get(a.id, &out));
  ck_assert_int_eq(int(out.state), int(JobState::queued));
  ASSERT_TEXT_EQ(code_of(g_store->ready(a.id, Instant::now())), kNotFound);
}
END_TEST

START_TEST(start_claims_a_queued_job_once) {
  const Job a = submit_new(*g_store, "web");
  const Job running = started(*g_store, a);
  ck_assert_int_eq(int(running.state), int(JobState::running));
  ck_assert_int_gt(running.started_at, 0);
  Job again;
  ASSERT_TEXT_EQ(code_of(g_store->start(a.id, Instant::now(), &again)), kNotFound);
}
END_TEST

// SPEC "node": the node that runs or ran the job, null before it starts.
START_TEST(a_job_names_its_node_once_it_started) {
  const Job a = submit_new(*g_store, "web");
  ck_assert(!a.node);
  Job queued;
  ASSERT_OK(g_store->get(a.id, &queued));
  ck_assert(!queued.node);
  const Job running = started(*g_store, a);
  ck_assert(running.node && !running.node->empty());
  Job read;
  ASSERT_OK(g_store->get(a.id, &read));
  ck_assert(read.node == running.node);
}
END_TEST

START_TEST(the_scheduler_pass_applies_its_decision_in_one_step) {
  const Job a = submit_new(*g_store, "web");
  const Job b = submit_new(*g_store, "db", 60000000);
  const Job c = submit_new(*g_store, "old");
  ScheduleDecision decision;
  std::vector<Job> started_jobs;
  size_t seen = 0;
  ASSERT_OK(g_store->schedule_pass(
      nullptr,
      [&](const std::vector<PendingJob>& jobs) {
        seen = jobs.size();
        ScheduleDecision d;
        d.start = {a.id};
        d.ready = {b.id};
        d.expire = {c.id};
        return d;
      },
      Instant::now(), &decision, &started_jobs, nullptr));
  ck_assert_uint_eq(seen, 3);
  ck_assert_uint_eq(started_jobs.size(), 1);
  ck_assert_uint_eq(started_jobs[0].id, a.id);
  Job out;
  ASSERT_OK(g_store->get(b.id, &out));
  ck_assert_int_eq(int(out.state), int(JobState::queued));
  ASSERT_OK(g_store->get(c.id, &out));
  ck_assert_int_eq(int(out.state), int(JobState::expired));
  ck_assert_uint_eq(finished_count(*g_store, JobState::expired), 1);
}
END_TEST

START_TEST(the_runner_records_itself_and_its_progress) {
  const Job a = started(*g_store, submit_new(*g_store, "web"));
  ASSERT_OK(g_store->runner_recorded(a.id, self_runner(), 0, 0, nullptr));
  bool cancel = true;
  ASSERT_OK(g_store->record_progress(a.id, self_runner(), report(40, "build", 10), 0, &cancel));
  ck_assert(!cancel);
  Job out;
  ASSERT_OK(g_store->get(a.id, &out));
  ck_assert_int_eq(out.progress, 40);
  ck_assert(out.stage == std::optional<std::string>("build"));
  // Another runner is refused.
  ASSERT_TEXT_EQ(
      code_of(g_store->record_progress(a.id, RunnerRef{1, 1}, report(50, {}, 10), 0, &cancel)),
      kNotOwner);
}
END_TEST

START_TEST(a_job_is_finished_once_by_its_runner) {
  const Job a = started(*g_store, submit_new(*g_store, "web"));
  ASSERT_OK(g_store->runner_recorded(a.id, self_runner(), 0, 0, nullptr));
  Outcome ok{JobState::succeeded, 0, std::nullopt};
  ASSERT_TEXT_EQ(
      code_of(g_store->finish(a.id, RunnerRef{1, 1}, ok, RunnerReport{}, Instant::now(), 0)),
      kNotOwner);
  ASSERT_OK(g_store->finish(a.id, self_runner(), ok, RunnerReport{}, Instant::now(), 0));
  Outcome failed{JobState::failed, 1, std::nullopt};
  ASSERT_TEXT_EQ(
      code_of(g_store->finish(a.id, self_runner(), failed, RunnerReport{}, Instant::now(), 0)),
      kNotOwner);
  Job out;
  ASSERT_OK(g_store->get(a.id, &out));
  ck_assert_int_eq(int(out.state), int(JobState::succeeded));
  ck_assert(out.exit_code == std::optional<int>(0));
  ck_assert_uint_eq(finished_count(*g_store, JobState::succeeded), 1);
  ck_assert_uint_eq(finished_count(*g_store, JobState::failed), 0);
}
END_TEST

START_TEST(the_runner_learns_of_a_cancel_when_it_records_itself) {
  const Job a = started(*g_store, submit_new(*g_store, "web"));
  Job out;
  RunnerRef nudge;
  ASSERT_OK(g_store->cancel(a.id, std::nullopt, Instant::now(), &out, &nudge));
  ck_assert_int_eq(nudge.runner_pid, 0);  // no runner recorded yet: nobody to signal
  bool cancel = false;
  ASSERT_OK(g_store->runner_recorded(a.id, self_runner(), 0, 0, &cancel));
  ck_assert(cancel);
  // The same runner may record itself again (with its job's pid); another may not.
  ASSERT_OK(g_store->runner_recorded(a.id, self_runner(), 77, 0, nullptr));
  ASSERT_TEXT_EQ(code_of(g_store->runner_recorded(a.id, RunnerRef{1, 1}, 0, 0, nullptr)),
                 kNotOwner);
}
END_TEST

START_TEST(a_report_changes_only_what_it_names_and_wakes_only_for_what_shows) {
  const Job a = started(*g_store, submit_new(*g_store, "web"));
  ASSERT_OK(g_store->runner_recorded(a.id, self_runner(), 0, 0, nullptr));
  ASSERT_OK(g_store->record_progress(a.id, self_runner(), report(30, "build", 5), 0, nullptr));
  // A log size and a job pid alone: the followers of output wake, nobody else.
  const uint64_t change = g_store->change_seq();
  const uint64_t output = g_store->output_seq();
  ASSERT_OK(
      g_store->record_progress(a.id, self_runner(), report(-1, {}, 9, false, 1234), 0, nullptr));
  ck_assert_uint_eq(g_store->change_seq(), change);
  ck_assert_uint_gt(g_store->output_seq(), output);
  // The same values again are no change at all.
  ASSERT_OK(g_store->record_progress(a.id, self_runner(), report(30, "build", 9), 0, nullptr));
  ck_assert_uint_eq(g_store->change_seq(), change);
  Job out;
  ASSERT_OK(g_store->get(a.id, &out));
  ck_assert_int_eq(out.progress, 30);
  ck_assert(out.stage == std::optional<std::string>("build"));
  ck_assert(out.log_complete);
  // Lost output shows, and stays shown.
  ASSERT_OK(g_store->record_progress(a.id, self_runner(), report(-1, {}, 9, true), 0, nullptr));
  ck_assert_uint_gt(g_store->change_seq(), change);
  ASSERT_OK(g_store->record_progress(a.id, self_runner(), report(-1, {}, 9, false), 0, nullptr));
  ASSERT_OK(g_store->get(a.id, &out));
  ck_assert(!out.log_complete);
  ck_assert_int_eq(out.progress, 30);
}
END_TEST

START_TEST(finish_carries_the_last_report_with_the_outcome) {
  const Job a = started(*g_store, submit_new(*g_store, "web"));
  ASSERT_OK(g_store->runner_recorded(a.id, self_runner(), 0, 0, nullptr));
  ASSERT_OK(g_store->record_progress(a.id, self_runner(), report(10, "fetch", 3), 0, nullptr));
  const uint64_t before = g_store->change_seq();
  ASSERT_OK(g_store->finish(a.id, self_runner(), Outcome{JobState::failed, {}, 9},
                            report(90, "deploy", 40, true), Instant::now(), 0));
  ck_assert_uint_gt(g_store->change_seq(), before);
  Job out;
  ASSERT_OK(g_store->get(a.id, &out));
  ck_assert_int_eq(int(out.state), int(JobState::failed));
  ck_assert(!out.exit_code);
  ck_assert(out.signal == std::optional<int>(9));
  ck_assert_int_eq(out.progress, 90);
  ck_assert(out.stage == std::optional<std::string>("deploy"));
  ck_assert(!out.log_complete);
  // An empty report keeps what was reported before.
  const Job b = started(*g_store, submit_new(*g_store, "web"));
  ASSERT_OK(g_store->runner_recorded(b.id, self_runner(), 0, 0, nullptr));
  ASSERT_OK(g_store->record_progress(b.id, self_runner(), report(60, "test", 3), 0, nullptr));
  ASSERT_OK(g_store->finish(b.id, self_runner(), Outcome{JobState::succeeded, 0, {}},
                            report(-1, {}, 3), Instant::now(), 0));
  ASSERT_OK(g_store->get(b.id, &out));
  ck_assert_int_eq(out.progress, 60);
  ck_assert(out.stage == std::optional<std::string>("test"));
  ck_assert(out.log_complete);
}
END_TEST

// Stages and outputs as a runner reports them (the whole lists each time).
inline RunnerReport details_report(std::vector<Stage> stages, Outputs outputs) {
  RunnerReport r = report(-1, stages.empty() ? std::nullopt : std::optional(stages.back().name));
  r.stages = std::move(stages);
  r.outputs = std::move(outputs);
  return r;
}

START_TEST(stages_and_outputs_are_kept_with_the_job_and_fenced) {
  const Job a = started(*g_store, submit_new(*g_store, "web"));
  ck_assert(a.stages.empty() && a.outputs.empty());
  ASSERT_OK(g_store->runner_recorded(a.id, self_runner(), 0, 0, nullptr));
  const std::vector<Stage> one = {{"Provisioning", 1'000'000, 0}};
  uint64_t change = g_store->change_seq();
  ASSERT_OK(g_store->record_progress(a.id, self_runner(),
                                     details_report(one, {{"address", "10.0.0.7"}}), 0, nullptr));
  ck_assert_uint_gt(g_store->change_seq(), change);
  // Every read of another process has them: get, list, changes.
  auto other = g_factory.attach();
  Job out;
  ASSERT_OK(other->get(a.id, &out));
  ck_assert(out.stages == one);
  ck_assert(out.outputs == (Outputs{{"address", "10.0.0.7"}}));
  std::vector<Job> jobs;
  ASSERT_OK(other->list(JobsQuery{}, nullptr, &jobs));
  ck_assert_uint_eq(jobs.size(), 1);
  ck_assert(jobs[0].stages == one);
  uint64_t now = 0;
  ASSERT_OK(other->changes_since(change, &jobs, &now));
  ck_assert_uint_eq(jobs.size(), 1);
  ck_assert(jobs[0].outputs == out.outputs);
  // The same lists again are no change.
  change = g_store->change_seq();
  ASSERT_OK(g_store->record_progress(a.id, self_runner(),
                                     details_report(one, {{"address", "10.0.0.7"}}), 0, nullptr));
  ck_assert_uint_eq(g_store->change_seq(), change);
  // Outputs alone: the stages stay.
  RunnerReport outputs_only;
  outputs_only.outputs = Outputs{{"address", "10.0.0.8"}, {"url", "https://x/<b>"}};
  ASSERT_OK(g_store->record_progress(a.id, self_runner(), outputs_only, 0, nullptr));
  ck_assert_uint_gt(g_store->change_seq(), change);
  ASSERT_OK(other->get(a.id, &out));
  ck_assert(out.stages == one);
  ck_assert_uint_eq(out.outputs.size(), 2);
  ASSERT_TEXT_EQ(out.outputs[0].second, "10.0.0.8");
  ASSERT_TEXT_EQ(out.outputs[1].second, "https://x/<b>");
  // finish carries the last lists; the open stage ends with the job.
  const std::vector<Stage> two = {{"Provisioning", 1'000'000, 3'000'000},
                                  {"Ansible", 3'000'000, 0}};
  ASSERT_OK(g_store->finish(a.id, self_runner(), Outcome{JobState::succeeded, 0, {}},
                            details_report(two, {}), Instant::now(), 0));
  ASSERT_OK(other->get(a.id, &out));
  ck_assert(out.stages == two);
  ck_assert(out.outputs.empty());
  ck_assert_int_eq(stage_finished_at(out, 0), 3'000'000);
  ck_assert_int_eq(stage_finished_at(out, 1), out.finished_at);
  // A runner that lost its job writes none.
  const Job b = started(*g_store, submit_new(*g_store, "web"));
  ASSERT_OK(g_store->runner_recorded(b.id, self_runner(), 0, 0, nullptr));
  ASSERT_OK(
      g_store->record_progress(b.id, self_runner(), details_report(one, {{"a", "1"}}), 0, nullptr));
  Job canceled;
  RunnerRef nudge;
  ASSERT_OK(g_store->cancel(b.id, std::nullopt, Instant::now(), &canceled, &nudge));
  const RunnerRef other_runner{self_runner().runner_pid, 7};
  ASSERT_TEXT_EQ(code_of(g_store->record_progress(b.id, other_runner,
                                                  details_report(two, {{"a", "2"}}), 0, nullptr)),
                 kNotOwner);
  ASSERT_TEXT_EQ(code_of(g_store->finish(b.id, other_runner, Outcome{JobState::failed, 1, {}},
                                         details_report(two, {{"a", "3"}}), Instant::now(), 0)),
                 kNotOwner);
  ASSERT_OK(other->get(b.id, &out));
  ck_assert(out.stages == one);
  ck_assert(out.outputs == (Outputs{{"a", "1"}}));
  ck_assert_int_eq(stage_finished_at(out, 0), 0);  // still running: open
}
END_TEST

START_TEST(output_appended_by_the_runner_is_read_back_by_anyone) {
  const Job a = started(*g_store, submit_new(*g_store, "web"));
  ASSERT_OK(g_store->runner_recorded(a.id, self_runner(), 0, 0, nullptr));
  std::string read;
  ASSERT_TEXT_EQ(code_of(g_store->read_output(a.id, 0, 100, &read)), kNotFound);
  uint64_t size = 1;
  ASSERT_TEXT_EQ(code_of(g_store->output_size(a.id, &size)), kNotFound);
  std::unique_ptr<JobOutput> output;
  ASSERT_OK(g_store->open_output(a.id, self_runner(), &output));
  ck_assert_uint_eq(output->size(), 0);
  output->append("one\n");
  output->append("");
  output->append("two\nthr");
  ck_assert_uint_eq(output->size(), 11);
  ck_assert(!output->incomplete());
  ASSERT_OK(output->flush());
  // Another process's view reads it, from any offset, bounded by `max`.
  auto other = g_factory.attach();
  ASSERT_OK(other->read_output(a.id, 0, 100, &read));
  ASSERT_TEXT_EQ(read, "one\ntwo\nthr");
  ASSERT_OK(other->output_size(a.id, &size));
  ck_assert_uint_eq(size, 11);
  ASSERT_OK(other->read_output(a.id, 4, 3, &read));
  ASSERT_TEXT_EQ(read, "two");
  ASSERT_OK(other->read_output(a.id, 11, 100, &read));
  ASSERT_TEXT_EQ(read, "");
  ASSERT_OK(other->read_output(a.id, 1000, 100, &read));
  ASSERT_TEXT_EQ(read, "");
  ASSERT_OK(output->close());
  ASSERT_OK(other->read_output(a.id, 8, 100, &read));
  ASSERT_TEXT_EQ(read, "thr");  // nothing added by close when nothing was lost
  // A writer opened later appends after what is there.
  ASSERT_OK(g_store->open_output(a.id, self_runner(), &output));
  ck_assert_uint_eq(output->size(), 11);
  output->append("ee\n");
  ASSERT_OK(output->close());
  ASSERT_OK(other->read_output(a.id, 0, 100, &read));
  ASSERT_TEXT_EQ(read, "one\ntwo\nthree\n");
}
END_TEST

START_TEST(a_trimmed_job_takes_its_output_with_it) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 3; ++i) {
    const Job j = started(*g_store, submit_new(*g_store, "web"));
    ASSERT_OK(g_store->runner_recorded(j.id, self_runner(), 0, 0, nullptr));
    std::unique_ptr<JobOutput> output;
    ASSERT_OK(g_store->open_output(j.id, self_runner(), &output));
    output->append("job " + std::to_string(j.id) + "\n");
    ASSERT_OK(output->close());
    ASSERT_OK(g_store->finish(j.id, self_runner(), Outcome{JobState::succeeded, 0, {}},
                              report(-1, {}, output->size()), Instant::now(), 0));
    ids.push_back(j.id);
  }
  std::vector<uint64_t> dropped;
  ASSERT_OK(g_store->trim_history(1, &dropped));
  ck_assert_uint_eq(dropped.size(), 2);
  std::string read;
  ASSERT_TEXT_EQ(code_of(g_store->read_output(ids[0], 0, 100, &read)), kNotFound);
  ASSERT_TEXT_EQ(code_of(g_store->read_output(ids[1], 0, 100, &read)), kNotFound);
  ASSERT_OK(g_store->read_output(ids[2], 0, 100, &read));
  ASSERT_TEXT_EQ(read, "job " + std::to_string(ids[2]) + "\n");
}
END_TEST

START_TEST(a_launch_failure_ends_the_job_failed_and_unstart_requeues) {
  const Job a = started(*g_store, submit_new(*g_store, "web"));
  ASSERT_OK(g_store->unstart(a.id));
  Job out;
  ASSERT_OK(g_store->get(a.id, &out));
  ck_assert_int_eq(int(out.state), int(JobState::queued));
  started(*g_store, out);
  ASSERT_OK(g_store->launch_failed(a.id, Instant::now()));
  ASSERT_OK(g_store->get(a.id, &out));
  ck_assert_int_eq(int(out.state), int(JobState::failed));
  ASSERT_TEXT_EQ(code_of(g_store->launch_failed(a.id, Instant::now())), kNotOwner);
}
END_TEST

START_TEST(a_lost_job_is_never_written_by_its_runner_afterwards) {
  const Job a = started(*g_store, submit_new(*g_store, "web"));
  // A runner that is gone: a child that has exited.
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  const RunnerRef gone{int32_t(child), 99};
  ASSERT_OK(g_store->runner_recorded(a.id, gone, 0, 0, nullptr));
  std::vector<LostJob> ended;
  ASSERT_OK(g_store->detect_lost(Instant::now(), 0, &ended));
  ck_assert_uint_eq(ended.size(), 1);
  ck_assert_int_eq(int(ended[0].job.state), int(JobState::lost));
  ck_assert_int_eq(ended[0].runner.runner_pid, child);
  bool cancel = false;
  ASSERT_TEXT_EQ(code_of(g_store->record_progress(a.id, gone, report(90, {}, 1), 0, &cancel)),
                 kNotOwner);
  ASSERT_TEXT_EQ(code_of(g_store->finish(a.id, gone, Outcome{JobState::succeeded, 0, {}},
                                         RunnerReport{}, Instant::now(), 0)),
                 kNotOwner);
  Job out;
  ASSERT_OK(g_store->get(a.id, &out));
  ck_assert_int_eq(int(out.state), int(JobState::lost));
  ck_assert_int_eq(out.progress, -1);
}
END_TEST

START_TEST(cancel_ends_a_pending_job_flags_a_running_one_and_refuses_a_finished_one) {
  const Job pending = submit_new(*g_store, "web");
  Job out;
  RunnerRef nudge;
  ASSERT_OK(g_store->cancel(pending.id, std::nullopt, Instant::now(), &out, &nudge));
  ck_assert_int_eq(int(out.state), int(JobState::canceled));
  ck_assert_int_eq(nudge.runner_pid, 0);
  ASSERT_TEXT_EQ(code_of(g_store->cancel(pending.id, std::nullopt, Instant::now(), &out, &nudge)),
                 kConflict);

  const Job running = started(*g_store, submit_new(*g_store, "web"));
  const RunnerRef me{int32_t(getpid()), process_start_ticks(getpid())};
  ASSERT_OK(g_store->runner_recorded(running.id, me, 0, 0, nullptr));
  ASSERT_OK(g_store->cancel(running.id, std::nullopt, Instant::now(), &out, &nudge));
  ck_assert_int_eq(int(out.state), int(JobState::running));
  ck_assert_int_eq(nudge.runner_pid, getpid());
  bool cancel = false;
  ASSERT_OK(g_store->record_progress(running.id, me, report(-1), 0, &cancel));
  ck_assert(cancel);
  ASSERT_TEXT_EQ(code_of(g_store->cancel(999999, std::nullopt, Instant::now(), &out, &nudge)),
                 kNotFound);
}
END_TEST

// The job's output as the store reads it (empty when it has none).
inline std::string output_of(JobStore& store, uint64_t id) {
  std::string text;
  (void)store.read_output(id, 0, 1 << 20, &text);
  return text;
}

START_TEST(a_cancel_records_who_asked_first_and_says_so_in_the_log) {
  const Job pending = submit_new(*g_store, "web");
  Job out;
  RunnerRef nudge;
  ASSERT_OK(g_store->cancel(pending.id, std::string("alice"), Instant::now(), &out, &nudge));
  ck_assert(out.canceled_by == std::optional<std::string>("alice"));
  ck_assert_uint_eq(out.superseded_by, 0);
  ASSERT_TEXT_EQ(output_of(*g_store, pending.id), "deploy: canceled by alice\n");
  // Without a user.
  const Job other = submit_new(*g_store, "web");
  ASSERT_OK(g_store->cancel(other.id, std::nullopt, Instant::now(), &out, &nudge));
  ck_assert(!out.canceled_by);
  ck_assert(output_of(*g_store, other.id).find("without an authenticated user") !=
            std::string::npos);

  // A running job: the first cancel's user stays; its runner writes the line.
  const Job running = started(*g_store, submit_new(*g_store, "web"));
  const RunnerRef me{int32_t(getpid()), process_start_ticks(getpid())};
  ASSERT_OK(g_store->runner_recorded(running.id, me, 0, 0, nullptr));
  ASSERT_OK(g_store->cancel(running.id, std::string("bob"), Instant::now(), &out, &nudge));
  ASSERT_OK(g_store->cancel(running.id, std::string("carol"), Instant::now(), &out, &nudge));
  ck_assert(out.canceled_by == std::optional<std::string>("bob"));
  ASSERT_OK(g_store->finish(running.id, me, Outcome{JobState::canceled, {}, 15}, RunnerReport{},
                            Instant::now(), 0));
  ASSERT_OK(g_store->get(running.id, &out));
  ck_assert(out.canceled_by == std::optional<std::string>("bob"));
}
END_TEST

START_TEST(a_new_job_supersedes_the_older_ones_of_its_target_and_group) {
  // Three older jobs of web: one running, two queued; one of db.
  const Job running = started(*g_store, submit_new(*g_store, "web"));
  const RunnerRef me{int32_t(getpid()), process_start_ticks(getpid())};
  ASSERT_OK(g_store->runner_recorded(running.id, me, 0, 0, nullptr));
  const Job queued1 = submit_new(*g_store, "web");
  const Job queued2 = submit_new(*g_store, "web");
  const Job db = submit_new(*g_store, "db");

  NewSubmission s = submission("web");
  s.supersede = Supersede::queued;
  SubmitResult result;
  ASSERT_OK(g_store->submit(s, Instant::now(), &result));
  const uint64_t newer = result.job.id;
  ck_assert_uint_eq(result.superseded.size(), 2);
  ck_assert_uint_eq(result.superseded[0].id, queued1.id);
  ck_assert_uint_eq(result.superseded[1].id, queued2.id);
  Job out;
  for (const Job& j : {queued1, queued2}) {
    ASSERT_OK(g_store->get(j.id, &out));
    ck_assert_int_eq(int(out.state), int(JobState::canceled));
    ck_assert_uint_eq(out.superseded_by, newer);
    ASSERT_TEXT_EQ(output_of(*g_store, j.id),
                   "deploy: superseded by job " + std::to_string(newer) + "\n");
  }
  ASSERT_OK(g_store->get(running.id, &out));
  ck_assert_int_eq(int(out.state), int(JobState::running));
  ASSERT_OK(g_store->get(db.id, &out));
  ck_assert_int_eq(int(out.state), int(JobState::queued));

  // `running` also flags the running job, and names its runner.
  s.supersede = Supersede::running;
  ASSERT_OK(g_store->submit(s, Instant::now(), &result));
  const uint64_t newest = result.job.id;
  ck_assert_uint_eq(result.superseded.size(), 2);  // the running one and `newer`
  ck_assert_uint_eq(result.superseded[0].id, running.id);
  ck_assert(result.superseded[0].was_running);
  ck_assert_int_eq(result.superseded[0].nudge.runner_pid, getpid());
  bool cancel = false;
  ASSERT_OK(g_store->record_progress(running.id, me, report(-1), 0, &cancel));
  ck_assert(cancel);
  ASSERT_OK(g_store->get(newer, &out));
  ck_assert_int_eq(int(out.state), int(JobState::canceled));
  ck_assert_uint_eq(out.superseded_by, newest);

  // Groups: a job of another group is left alone.
  NewSubmission a = submission("vm");
  a.params = {{"vm", "a"}};
  a.group = "a";
  a.group_by = [](std::string_view t) {
    return t == "vm" ? std::optional<std::string>("vm") : std::nullopt;
  };
  a.supersede = Supersede::queued;
  NewSubmission b = a;
  b.params = {{"vm", "b"}};
  b.group = "b";
  ASSERT_OK(g_store->submit(a, Instant::now(), &result));
  const uint64_t vm_a = result.job.id;
  ASSERT_OK(g_store->submit(b, Instant::now(), &result));
  ck_assert_uint_eq(result.superseded.size(), 0);
  ASSERT_OK(g_store->submit(a, Instant::now(), &result));
  ck_assert_uint_eq(result.superseded.size(), 1);
  ck_assert_uint_eq(result.superseded[0].id, vm_a);
}
END_TEST

START_TEST(a_used_idempotency_key_returns_its_job_and_changes_nothing) {
  NewSubmission s = submission("web");
  s.idempotency_key = "delivery-1";
  SubmitResult first, again, other_target, other_key;
  ASSERT_OK(g_store->submit(s, Instant::now(), &first));
  ck_assert(!first.duplicate);
  const uint64_t seq = g_store->change_seq();
  ASSERT_OK(g_store->submit(s, Instant::now(), &again));
  ck_assert(again.duplicate);
  ck_assert_uint_eq(again.job.id, first.job.id);
  ck_assert_uint_eq(g_store->change_seq(), seq);
  StoreCounters c;
  ASSERT_OK(g_store->counters(&c));
  ck_assert_uint_eq(c.counters.accepted, 1);
  // The key is per target; another key is another job.
  NewSubmission t = s;
  t.target = "db";
  ASSERT_OK(g_store->submit(t, Instant::now(), &other_target));
  ck_assert(!other_target.duplicate);
  s.idempotency_key = "delivery-2";
  ASSERT_OK(g_store->submit(s, Instant::now(), &other_key));
  ck_assert(!other_key.duplicate);
  ck_assert_uint_ne(other_key.job.id, first.job.id);
  // Also once the job has finished, while it is kept.
  Job out;
  RunnerRef nudge;
  ASSERT_OK(g_store->cancel(first.job.id, std::nullopt, Instant::now(), &out, &nudge));
  s.idempotency_key = "delivery-1";
  ASSERT_OK(g_store->submit(s, Instant::now(), &again));
  ck_assert(again.duplicate);
  ck_assert_uint_eq(again.job.id, first.job.id);
  ck_assert_int_eq(int(again.job.state), int(JobState::canceled));
}
END_TEST

// --- Completion notifications.

inline Job submit_notified(JobStore& store, uint32_t urls) {
  NewSubmission s = submission("web");
  s.notifications = urls;
  SubmitResult result;
  ASSERT_OK(store.submit(s, Instant::now(), &result));
  return result.job;
}

inline std::vector<NotificationClaim> claim_due(JobStore& store, Micros* next_due = nullptr) {
  std::vector<NotificationClaim> claims;
  Micros next = 0;
  ASSERT_OK(store.claim_notifications(Instant::now(), 16, &claims, &next));
  if (next_due) *next_due = next;
  return claims;
}

inline std::vector<Notification> notifications_of(JobStore& store, uint64_t id) {
  Job out;
  ASSERT_OK(store.get(id, &out));
  return out.notifications;
}

START_TEST(notifications_are_pending_until_the_job_ends_then_claimed_once) {
  const Job plain = submit_notified(*g_store, 0);
  ck_assert_uint_eq(plain.notifications.size(), 0);
  const Job a = submit_notified(*g_store, 2);
  ck_assert_uint_eq(a.notifications.size(), 2);
  ck_assert_uint_eq(notifications_of(*g_store, a.id).size(), 2);
  ck_assert_int_eq(int(notifications_of(*g_store, a.id)[1].state), int(NotificationState::pending));
  Micros next_due = -1;
  ck_assert_uint_eq(claim_due(*g_store, &next_due).size(), 0);  // unfinished: none due
  ck_assert_int_eq(next_due, 0);
  Job out;
  RunnerRef nudge;
  ASSERT_OK(g_store->cancel(a.id, std::nullopt, Instant::now(), &out, &nudge));
  // Another process claims them: each once, in URL order, attempt 1.
  std::unique_ptr<JobStore> other = g_factory.attach();
  std::vector<NotificationClaim> claims = claim_due(*other);
  ck_assert_uint_eq(claims.size(), 2);
  std::sort(claims.begin(), claims.end(),
            [](const auto& x, const auto& y) { return x.index < y.index; });
  for (uint32_t i = 0; i < 2; ++i) {
    ck_assert_uint_eq(claims[i].job.id, a.id);
    ck_assert_int_eq(int(claims[i].job.state), int(JobState::canceled));
    ck_assert_uint_eq(claims[i].index, i);
    ck_assert_uint_eq(claims[i].attempt, 1);
  }
  // Held for the attempt: neither process gets them again meanwhile.
  const Micros before = mono_now();
  ck_assert_uint_eq(claim_due(*g_store, &next_due).size(), 0);
  ck_assert_uint_eq(claim_due(*other).size(), 0);
  ck_assert_int_ge(next_due, before + kNotificationClaimHold - 5 * kNotificationSecond);
  // A 2xx: delivered, never claimed again; the attempt recorded once.
  const Instant now = Instant::now();
  ASSERT_OK(other->record_notification(claims[0], 200, after_attempt(1, 200, now.mono), now));
  ASSERT_TEXT_EQ(
      code_of(other->record_notification(claims[0], 200, after_attempt(1, 200, now.mono), now)),
      kNotOwner);
  // A 500: pending again, due at once here (the decision's time), attempt 2.
  ASSERT_OK(
      other->record_notification(claims[1], 500, {NotificationState::pending, now.mono}, now));
  std::vector<Notification> n = notifications_of(*g_store, a.id);
  ck_assert_int_eq(int(n[0].state), int(NotificationState::delivered));
  ck_assert_uint_eq(n[0].attempts, 1);
  ck_assert(n[0].status == std::optional<int>(200));
  ck_assert_int_eq(int(n[1].state), int(NotificationState::pending));
  ck_assert_uint_eq(n[1].attempts, 1);
  ck_assert(n[1].status == std::optional<int>(500));
  claims = claim_due(*g_store);
  ck_assert_uint_eq(claims.size(), 1);
  ck_assert_uint_eq(claims[0].index, 1);
  ck_assert_uint_eq(claims[0].attempt, 2);
  // The last attempt had no answer: failed, with no status.
  ASSERT_OK(g_store->record_notification(claims[0], std::nullopt, {NotificationState::failed, 0},
                                         Instant::now()));
  n = notifications_of(*other, a.id);
  ck_assert_int_eq(int(n[1].state), int(NotificationState::failed));
  ck_assert_uint_eq(n[1].attempts, 2);
  ck_assert(!n[1].status);
  ck_assert_uint_eq(claim_due(*g_store, &next_due).size(), 0);
  ck_assert_int_eq(next_due, 0);
}
END_TEST

START_TEST(every_way_a_job_ends_makes_its_notifications_due) {
  // Finished by its runner, its launch failed, lost, expired.
  const Job finished = started(*g_store, submit_notified(*g_store, 1));
  ASSERT_OK(g_store->runner_recorded(finished.id, self_runner(), 0, 0, nullptr));
  ASSERT_OK(g_store->finish(finished.id, self_runner(), Outcome{JobState::succeeded, 0, {}},
                            RunnerReport{}, Instant::now(), 0));
  const Job unlaunched = started(*g_store, submit_notified(*g_store, 1));
  ASSERT_OK(g_store->launch_failed(unlaunched.id, Instant::now()));
  const Job lost = started(*g_store, submit_notified(*g_store, 1));
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  ASSERT_OK(g_store->runner_recorded(lost.id, RunnerRef{int32_t(child), 99}, 0, 0, nullptr));
  std::vector<LostJob> ended;
  ASSERT_OK(g_store->detect_lost(Instant::now(), 0, &ended));
  ck_assert_uint_eq(ended.size(), 1);
  const Job expired = submit_notified(*g_store, 1);
  ASSERT_OK(g_store->expire(expired.id, Instant::now()));
  const Job unfinished = submit_notified(*g_store, 1);
  std::set<uint64_t> due;
  for (const NotificationClaim& c : claim_due(*g_store)) due.insert(c.job.id);
  ck_assert(due == (std::set<uint64_t>{finished.id, unlaunched.id, lost.id, expired.id}));
  ck_assert(!due.count(unfinished.id));
}
END_TEST

START_TEST(a_notification_leaves_the_store_with_its_job) {
  const Job a = submit_notified(*g_store, 1);
  ASSERT_OK(g_store->expire(a.id, Instant::now()));
  std::vector<NotificationClaim> claims = claim_due(*g_store);
  ck_assert_uint_eq(claims.size(), 1);
  std::vector<uint64_t> dropped;
  ASSERT_OK(g_store->trim_history(0, &dropped));
  ck_assert_uint_eq(dropped.size(), 1);
  const Instant now = Instant::now();
  ASSERT_TEXT_EQ(
      code_of(g_store->record_notification(claims[0], 200, after_attempt(1, 200, now.mono), now)),
      kNotFound);
}
END_TEST

START_TEST(listings_filter_and_go_newest_first) {
  std::vector<uint64_t> web;
  for (int i = 0; i < 5; ++i) web.push_back(submit_new(*g_store, "web").id);
  const Job db = submit_new(*g_store, "db");
  std::vector<Job> jobs;
  JobsQuery q;
  q.target = "web";
  q.limit = 3;
  ASSERT_OK(g_store->list(q, nullptr, &jobs));
  ck_assert_uint_eq(jobs.size(), 3);
  ck_assert_uint_eq(jobs[0].id, web[4]);
  ck_assert_uint_eq(jobs[2].id, web[2]);
  q.before = web[2];
  ASSERT_OK(g_store->list(q, nullptr, &jobs));
  ck_assert_uint_eq(jobs.size(), 2);
  ck_assert_uint_eq(jobs[0].id, web[1]);
  JobsQuery all;
  ASSERT_OK(g_store->list(
      all, [](std::string_view t) { return t == "db"; }, &jobs));
  ck_assert_uint_eq(jobs.size(), 1);
  ck_assert_uint_eq(jobs[0].id, db.id);
  std::vector<Job> newest;
  ASSERT_OK(g_store->newest_per_target({"web", "db", "none"}, &newest));
  ck_assert_uint_eq(newest.size(), 2);
  for (const Job& j : newest) ck_assert_uint_eq(j.id, j.target == "web" ? web[4] : db.id);
}
END_TEST

START_TEST(the_overview_holds_the_unfinished_a_history_page_and_each_targets_newest) {
  Job out;
  RunnerRef nudge;
  const Job db_old = submit_new(*g_store, "db");
  ASSERT_OK(g_store->cancel(db_old.id, std::nullopt, Instant::now(), &out, &nudge));
  std::vector<uint64_t> web;
  for (int i = 0; i < 3; ++i) {
    const Job j = submit_new(*g_store, "web");
    ASSERT_OK(g_store->cancel(j.id, std::nullopt, Instant::now(), &out, &nudge));
    web.push_back(j.id);
  }
  const Job pending = submit_new(*g_store, "web");
  const Job hidden = submit_new(*g_store, "secret");
  const auto readable = [](std::string_view t) { return t != "secret"; };
  deploy::Overview overview;
  ASSERT_OK(g_store->overview(deploy::HistoryPage{1, std::nullopt, std::nullopt, 0}, readable,
                              &overview));
  std::set<uint64_t> ids;
  for (const Job& j : overview.jobs) ids.insert(j.id);
  // The newest finished (web[2]) on the page, db's newest finished, the
  // unfinished one; older ones below the page.
  ck_assert(ids == (std::set<uint64_t>{db_old.id, web[2], pending.id}));
  ck_assert(overview.history == (std::set<uint64_t>{web[2]}));
  ck_assert(overview.older);
  ck_assert(!ids.count(hidden.id));
  ck_assert_uint_eq(overview.seen, g_store->change_seq());
  // A page of one target, below an id: web[1], then web[0] is older.
  ASSERT_OK(g_store->overview(deploy::HistoryPage{1, std::string("web"), std::nullopt, web[2]},
                              readable, &overview));
  ck_assert(overview.history == (std::set<uint64_t>{web[1]}));
  ck_assert(overview.older);
  ASSERT_OK(g_store->overview(deploy::HistoryPage{5, std::string("db"), std::nullopt, 0}, readable,
                              &overview));
  ck_assert(overview.history == (std::set<uint64_t>{db_old.id}));
  ck_assert(!overview.older);
}
END_TEST

START_TEST(changes_since_a_number_are_the_jobs_changed_after_it_in_order) {
  const Job a = submit_new(*g_store, "web");
  const uint64_t mark = g_store->change_seq();
  const Job b = submit_new(*g_store, "web");
  started(*g_store, a);
  std::vector<Job> changed;
  uint64_t now = 0;
  ASSERT_OK(g_store->changes_since(mark, &changed, &now));
  ck_assert_uint_eq(changed.size(), 2);
  ck_assert_uint_eq(changed[0].id, b.id);
  ck_assert_uint_eq(changed[1].id, a.id);
  ck_assert_uint_eq(now, g_store->change_seq());
  ck_assert_uint_gt(now, mark);
}
END_TEST

START_TEST(trimming_keeps_the_newest_finished_jobs) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 4; ++i) {
    Job out;
    RunnerRef nudge;
    const Job j = submit_new(*g_store, "web");
    ASSERT_OK(g_store->cancel(j.id, std::nullopt, Instant::now(), &out, &nudge));
    ids.push_back(j.id);
  }
  const Job pending = submit_new(*g_store, "web");
  std::vector<uint64_t> dropped;
  ASSERT_OK(g_store->trim_history(2, &dropped));
  std::sort(dropped.begin(), dropped.end());
  ck_assert(dropped == (std::vector<uint64_t>{ids[0], ids[1]}));
  Job out;
  ASSERT_TEXT_EQ(code_of(g_store->get(ids[0], &out)), kNotFound);
  ASSERT_OK(g_store->get(ids[3], &out));
  ASSERT_OK(g_store->get(pending.id, &out));
  // The counters keep what left the history.
  ck_assert_uint_eq(finished_count(*g_store, JobState::canceled), 4);
}
END_TEST

START_TEST(a_wait_ends_at_a_change_made_by_another_process) {
  const uint64_t seen = g_store->change_seq();
  const pid_t child = fork();
  if (child == 0) {
    usleep(100000);
    auto store = g_factory.attach();
    SubmitResult r;
    _exit(store->submit(submission("web"), Instant::now(), &r).is_ok() ? 0 : 1);
  }
  ck_assert(g_store->wait_for_change(seen, 30000000));
  int status = 0;
  waitpid(child, &status, 0);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ck_assert(!g_store->wait_for_change(g_store->change_seq(), 1000));
}
END_TEST

// Processes and threads submit, start and finish at once; every finish is
// tried twice (by two threads): the counters are exact, ids unique and
// increasing per worker, and no job is finished twice.
START_TEST(concurrent_processes_and_threads_lose_no_update) {
  constexpr int kProcesses = 3, kThreads = 2, kJobs = 30;
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t child = fork();
    if (child == 0) {
      close(fds[0]);
      auto store = g_factory.attach();
      std::atomic<int> errors{0};
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
          uint64_t last = 0;
          for (int i = 0; i < kJobs; ++i) {
            SubmitResult r;
            // Half the submissions share a target and may join each other.
            const std::string target = i % 2 ? "shared" : "w" + std::to_string(p * 10 + t);
            if (!store->submit(submission(target, i % 2 ? 1000000 : 0, 1000), Instant::now(), &r)
                     .is_ok()) {
              ++errors;
              continue;
            }
            if (r.kind != SubmissionDecision::Kind::new_job) continue;
            if (r.job.id <= last) ++errors;
            last = r.job.id;
            if (write(fds[1], &r.job.id, sizeof r.job.id) != sizeof r.job.id) ++errors;
          }
        });
      for (auto& th : threads) th.join();
      _exit(errors == 0 ? 0 : 1);
    }
    children.push_back(child);
  }
  close(fds[1]);
  std::vector<uint64_t> ids;
  uint64_t id = 0;
  while (read(fds[0], &id, sizeof id) == sizeof id) ids.push_back(id);
  close(fds[0]);
  for (pid_t c : children) {
    int status = 0;
    waitpid(c, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::set<uint64_t> unique(ids.begin(), ids.end());
  ck_assert_uint_eq(unique.size(), ids.size());
  StoreCounters c;
  ASSERT_OK(g_store->counters(&c));
  ck_assert_uint_eq(c.counters.accepted, ids.size());
  ck_assert_uint_eq(c.counters.accepted + c.counters.coalesced,
                    uint64_t(kProcesses * kThreads * kJobs));

  // Start every job, then let two processes race to finish each one.
  for (uint64_t job_id : ids) {
    Job out;
    if (g_store->get(job_id, &out).is_ok() && out.state == JobState::waiting)
      ASSERT_OK(g_store->ready(job_id, Instant::now()));
    ASSERT_OK(g_store->start(job_id, Instant::now(), &out));
  }
  ck_assert_int_eq(pipe(fds), 0);
  children.clear();
  for (int p = 0; p < 2; ++p) {
    const pid_t child = fork();
    if (child == 0) {
      close(fds[0]);
      auto store = g_factory.attach();
      for (uint64_t job_id : ids) {
        const Status st = store->finish(job_id, RunnerRef{}, Outcome{JobState::succeeded, 0, {}},
                                        RunnerReport{}, Instant::now(), 0);
        if (st.is_ok() && write(fds[1], &job_id, sizeof job_id) != sizeof job_id) _exit(2);
        if (!st.is_ok() && st.code() != kNotOwner) _exit(1);
      }
      _exit(0);
    }
    children.push_back(child);
  }
  close(fds[1]);
  std::vector<uint64_t> finished;
  while (read(fds[0], &id, sizeof id) == sizeof id) finished.push_back(id);
  close(fds[0]);
  for (pid_t ch : children) {
    int status = 0;
    waitpid(ch, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::sort(finished.begin(), finished.end());
  ck_assert(std::adjacent_find(finished.begin(), finished.end()) == finished.end());
  ck_assert_uint_eq(finished.size(), ids.size());
  ck_assert_uint_eq(finished_count(*g_store, JobState::succeeded), ids.size());
}
END_TEST

inline Suite* suite(const char* engine) {
  static std::string name;  // Check keeps the pointer
  name = std::string("job store conformance: ") + engine;
  Suite* s = suite_create(name.c_str());
  TCase* tc = test::case_with_fixture("contracts", set_up, tear_down, 60);
  tcase_add_test(tc, a_submission_is_a_new_job_with_a_growing_id_and_counted_accepted);
  tcase_add_test(tc, a_job_never_starts_before_its_submission);
  tcase_add_test(tc, a_submission_within_the_quiet_window_joins_the_waiting_job);
  tcase_add_test(tc, a_full_queue_refuses_and_counts_the_rejection);
  tcase_add_test(tc, a_withdrawn_job_leaves_the_store_and_the_accepted_count);
  tcase_add_test(tc, ready_queues_a_waiting_job_once);
  tcase_add_test(tc, start_claims_a_queued_job_once);
  tcase_add_test(tc, a_job_names_its_node_once_it_started);
  tcase_add_test(tc, the_scheduler_pass_applies_its_decision_in_one_step);
  tcase_add_test(tc, the_runner_records_itself_and_its_progress);
  tcase_add_test(tc, a_job_is_finished_once_by_its_runner);
  tcase_add_test(tc, the_runner_learns_of_a_cancel_when_it_records_itself);
  tcase_add_test(tc, a_report_changes_only_what_it_names_and_wakes_only_for_what_shows);
  tcase_add_test(tc, finish_carries_the_last_report_with_the_outcome);
  tcase_add_test(tc, stages_and_outputs_are_kept_with_the_job_and_fenced);
  tcase_add_test(tc, output_appended_by_the_runner_is_read_back_by_anyone);
  tcase_add_test(tc, a_trimmed_job_takes_its_output_with_it);
  tcase_add_test(tc, a_launch_failure_ends_the_job_failed_and_unstart_requeues);
  tcase_add_test(tc, a_lost_job_is_never_written_by_its_runner_afterwards);
  tcase_add_test(tc, cancel_ends_a_pending_job_flags_a_running_one_and_refuses_a_finished_one);
  tcase_add_test(tc, a_cancel_records_who_asked_first_and_says_so_in_the_log);
  tcase_add_test(tc, a_new_job_supersedes_the_older_ones_of_its_target_and_group);
  tcase_add_test(tc, a_used_idempotency_key_returns_its_job_and_changes_nothing);
  tcase_add_test(tc, notifications_are_pending_until_the_job_ends_then_claimed_once);
  tcase_add_test(tc, every_way_a_job_ends_makes_its_notifications_due);
  tcase_add_test(tc, a_notification_leaves_the_store_with_its_job);
  tcase_add_test(tc, listings_filter_and_go_newest_first);
  tcase_add_test(tc, the_overview_holds_the_unfinished_a_history_page_and_each_targets_newest);
  tcase_add_test(tc, changes_since_a_number_are_the_jobs_changed_after_it_in_order);
  tcase_add_test(tc, trimming_keeps_the_newest_finished_jobs);
  tcase_add_test(tc, a_wait_ends_at_a_change_made_by_another_process);
  suite_add_tcase(s, tc);
  TCase* concurrency = test::case_with_fixture("concurrency", set_up, tear_down, 120);
  tcase_add_test(concurrency, concurrent_processes_and_threads_lose_no_update);
  suite_add_tcase(s, concurrency);
  return s;
}

}  // namespace deploy::conformance
