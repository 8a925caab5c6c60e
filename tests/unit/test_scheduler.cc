// The coalescing and scheduling policy, replayed with time as an argument.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "scheduler.h"
#include "unit_test.h"

namespace {

using deploy::JobState;
using deploy::Limits;
using deploy::Micros;
using deploy::PendingJob;
using deploy::ScheduleDecision;
using deploy::SubmissionDecision;
using deploy::TargetPolicy;
using Kind = SubmissionDecision::Kind;
using Ids = std::vector<uint64_t>;

constexpr Micros seconds(int64_t n) { return n * 1'000'000; }

// The job table reduced to what the policy sees, plus what a test wants to
// observe. It applies the decisions the way the POST handler and the
// scheduler process do.
struct Simulation {
  std::map<std::string, TargetPolicy> policies;
  Limits limits;
  std::vector<PendingJob> jobs;  // unfinished
  std::map<uint64_t, uint32_t> requests;
  std::map<uint64_t, Micros> started_at;
  uint64_t next_id = 1;

  // Only configured targets accept submissions: a target triggered here
  // becomes configured, with the default policy unless a test set one.
  // `group`: the submission's group (job_group of its params).
  SubmissionDecision trigger(const std::string& target, Micros now, const std::string& group = "") {
    const SubmissionDecision decision =
        deploy::decide_submission(jobs, target, group, policies[target], limits, now);
    switch (decision.kind) {
      case Kind::coalesce:
        job(decision.job_id).not_before = decision.not_before;
        ++requests[decision.job_id];
        break;
      case Kind::new_job:
        jobs.push_back({next_id, target, decision.state, now, decision.not_before, group});
        requests[next_id] = 1;
        ++next_id;
        break;
      case Kind::queue_full:
        break;
    }
    return decision;
  }

  ScheduleDecision tick(Micros now) {
    const ScheduleDecision decision = deploy::schedule(jobs, policies, limits, now);
    for (uint64_t id : decision.expire) finish(id);
    for (uint64_t id : decision.ready) job(id).state = JobState::queued;
    for (uint64_t id : decision.start) {
      job(id).state = JobState::running;
      started_at[id] = now;
    }
    return decision;
  }

  // Triggers `target` at each time in `triggers` (ascending). The scheduler
  // runs after every trigger, as a change wakes it, and at every next_due
  // it asks for, until nothing more is due.
  void replay(const std::string& target, const std::vector<Micros>& triggers) {
    std::vector<std::pair<Micros, std::string>> ungrouped;
    for (Micros t : triggers) ungrouped.emplace_back(t, "");
    replay(target, ungrouped);
  }

  // The same with the group of each trigger.
  void replay(const std::string& target,
              const std::vector<std::pair<Micros, std::string>>& triggers) {
    size_t next_trigger = 0;
    Micros due = 0;
    for (int step = 0; next_trigger < triggers.size() || due != 0; ++step) {
      ck_assert_msg(step < 1000, "the scheduler keeps asking to be woken");
      Micros now = due;
      if (next_trigger < triggers.size() && (due == 0 || triggers[next_trigger].first <= due)) {
        const auto& [at, group] = triggers[next_trigger++];
        now = at;
        trigger(target, now, group);
      }
      const Micros next_due = tick(now).next_due;
      ck_assert_msg(next_due == 0 || next_due > now, "next_due %lld is not after now %lld",
                    static_cast<long long>(next_due), static_cast<long long>(now));
      due = next_due;
    }
  }

  void add(uint64_t id, const std::string& target, JobState state, Micros submitted_at = 0,
           Micros not_before = 0, const std::string& group = "") {
    jobs.push_back({id, target, state, submitted_at, not_before, group});
    next_id = std::max(next_id, id + 1);
  }

  void finish(uint64_t id) {
    std::erase_if(jobs, [id](const PendingJob& j) { return j.id == id; });
  }

  PendingJob& job(uint64_t id) {
    for (PendingJob& j : jobs) {
      if (j.id == id) return j;
    }
    ck_abort_msg("no unfinished job %llu", static_cast<unsigned long long>(id));
    std::abort();
  }
};

TargetPolicy quiet_window(Micros wait, Micros max_wait = 0) {
  TargetPolicy policy;
  policy.quiet_window = wait;
  policy.max_wait = max_wait;
  return policy;
}

// Triggers of `group` every `every` from `first` to `last` (inclusive).
std::vector<std::pair<Micros, std::string>> every(Micros first, Micros last, Micros every,
                                                  const std::string& group) {
  std::vector<std::pair<Micros, std::string>> triggers;
  for (Micros t = first; t <= last; t += every) triggers.emplace_back(t, group);
  return triggers;
}

// Two trigger sequences merged in time order.
std::vector<std::pair<Micros, std::string>> interleaved(
    std::vector<std::pair<Micros, std::string>> a,
    const std::vector<std::pair<Micros, std::string>>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::stable_sort(a.begin(), a.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  return a;
}

TargetPolicy concurrency(uint32_t n) {
  TargetPolicy policy;
  policy.concurrency = n;
  return policy;
}

TargetPolicy queue_timeout(Micros timeout) {
  TargetPolicy policy;
  policy.queue_timeout = timeout;
  return policy;
}

std::string name(Kind kind) {
  switch (kind) {
    case Kind::new_job:
      return "new_job";
    case Kind::coalesce:
      return "coalesce";
    case Kind::queue_full:
      return "queue_full";
  }
  return "kind " + std::to_string(static_cast<int>(kind));
}

// Not deploy::state_name, so that a broken name table cannot hide a broken schedule.
std::string name(JobState state) {
  switch (state) {
    case JobState::waiting:
      return "waiting";
    case JobState::queued:
      return "queued";
    case JobState::running:
      return "running";
    default:
      return "state " + std::to_string(static_cast<int>(state));
  }
}

// ck_assert_str_eq keeps only the pointer, so the name must outlive the check.
#define ck_assert_name(actual, expected)             \
  do {                                               \
    const std::string actual_name = name(actual);    \
    ck_assert_str_eq(actual_name.c_str(), expected); \
  } while (0)

std::string text(const Ids& ids) {
  std::string out = "{";
  for (uint64_t id : ids) out += (out.size() > 1 ? ", " : "") + std::to_string(id);
  return out + "}";
}

#define ck_assert_ids(actual, ...)                                            \
  do {                                                                        \
    const Ids expected_ids = __VA_ARGS__;                                     \
    ck_assert_msg((actual) == expected_ids, "%s is %s, expected %s", #actual, \
                  text(actual).c_str(), text(expected_ids).c_str());          \
  } while (0)

// --- Coalescing: SPEC's example and its boundaries ---

START_TEST(coalesced_job_starts_wait_after_last_trigger) {
  Simulation sim;
  sim.policies["webapp"] = quiet_window(seconds(5));
  std::vector<Micros> triggers;
  for (int64_t t = 0; t <= 36; t += 4) triggers.push_back(seconds(t));

  sim.replay("webapp", triggers);

  ck_assert_uint_eq(sim.next_id, 2);
  ck_assert_uint_eq(sim.requests[1], 10);
  ck_assert_int_eq(sim.started_at[1], seconds(41));
}
END_TEST

START_TEST(max_wait_starts_job_and_later_triggers_form_second_job) {
  Simulation sim;
  sim.policies["webapp"] = quiet_window(seconds(5), seconds(30));
  sim.policies["webapp"].concurrency = 2;  // the first job is still running at 41 s
  std::vector<Micros> triggers;
  for (int64_t t = 0; t <= 36; t += 4) triggers.push_back(seconds(t));

  sim.replay("webapp", triggers);

  ck_assert_uint_eq(sim.next_id, 3);
  ck_assert_uint_eq(sim.requests[1], 8);  // 0, 4, …, 28 s
  ck_assert_int_eq(sim.started_at[1], seconds(30));
  ck_assert_uint_eq(sim.requests[2], 2);  // 32 and 36 s
  ck_assert_int_eq(sim.started_at[2], seconds(41));
}
END_TEST

START_TEST(equal_max_wait_gives_fixed_window_from_first_trigger) {
  Simulation sim;
  sim.policies["webapp"] = quiet_window(seconds(10), seconds(10));
  sim.policies["webapp"].concurrency = 2;  // the first job is still running at 22 s

  sim.replay("webapp", {seconds(0), seconds(3), seconds(6), seconds(9), seconds(12)});

  ck_assert_uint_eq(sim.requests[1], 4);
  ck_assert_int_eq(sim.started_at[1], seconds(10));
  ck_assert_uint_eq(sim.requests[2], 1);
  ck_assert_int_eq(sim.started_at[2], seconds(22));
}
END_TEST

START_TEST(trigger_just_before_not_before_joins_waiting_job) {
  Simulation sim;
  sim.policies["webapp"] = quiet_window(seconds(5));
  sim.trigger("webapp", seconds(0));

  const SubmissionDecision decision = sim.trigger("webapp", seconds(5) - 1);

  ck_assert_name(decision.kind, "coalesce");
  ck_assert_uint_eq(decision.job_id, 1);
  ck_assert_int_eq(decision.not_before, seconds(10) - 1);
}
END_TEST

START_TEST(trigger_exactly_at_not_before_starts_new_job) {
  Simulation sim;
  sim.policies["webapp"] = quiet_window(seconds(5));
  sim.trigger("webapp", seconds(0));

  // The scheduler has not run yet; the job's quiet window has ended anyway.
  const SubmissionDecision decision = sim.trigger("webapp", seconds(5));

  ck_assert_name(decision.kind, "new_job");
  ck_assert_name(decision.state, "waiting");
  ck_assert_int_eq(decision.not_before, seconds(10));
  ck_assert_ids(sim.tick(seconds(5)).start, {1});
}
END_TEST

START_TEST(waiting_job_is_ready_exactly_at_not_before) {
  Simulation sim;
  sim.policies["webapp"] = quiet_window(seconds(5));
  sim.trigger("webapp", seconds(0));

  const ScheduleDecision before = sim.tick(seconds(5) - 1);
  ck_assert_ids(before.ready, {});
  ck_assert_ids(before.start, {});
  ck_assert_int_eq(before.next_due, seconds(5));

  const ScheduleDecision at = sim.tick(seconds(5));
  ck_assert_ids(at.ready, {1});
  ck_assert_ids(at.start, {1});
  ck_assert_int_eq(at.next_due, 0);
}
END_TEST

START_TEST(new_job_waits_quiet_window_capped_by_max_wait) {
  const Limits limits;
  const SubmissionDecision uncapped =
      deploy::decide_submission({}, "webapp", "", quiet_window(seconds(5)), limits, seconds(100));
  ck_assert_name(uncapped.kind, "new_job");
  ck_assert_name(uncapped.state, "waiting");
  ck_assert_int_eq(uncapped.not_before, seconds(105));

  // DeployMaxWait below the wait is refused by the configuration; the policy still caps.
  const SubmissionDecision capped = deploy::decide_submission(
      {}, "webapp", "", quiet_window(seconds(5), seconds(3)), limits, seconds(100));
  ck_assert_int_eq(capped.not_before, seconds(103));
}
END_TEST

START_TEST(without_quiet_window_submission_is_queued_at_once) {
  Simulation sim;
  sim.add(1, "webapp", JobState::waiting, 0, seconds(5));  // left from before a reload

  const SubmissionDecision decision = sim.trigger("webapp", seconds(1));

  ck_assert_name(decision.kind, "new_job");
  ck_assert_name(decision.state, "queued");
  ck_assert_int_eq(decision.not_before, 0);
}
END_TEST

START_TEST(coalescing_joins_oldest_waiting_job_of_same_target) {
  Simulation sim;
  sim.policies["webapp"] = quiet_window(seconds(5), seconds(30));
  sim.add(1, "webapp", JobState::queued, seconds(0));
  sim.add(2, "other", JobState::waiting, seconds(1), seconds(6));
  sim.add(4, "webapp", JobState::waiting, seconds(3), seconds(8));
  sim.add(3, "webapp", JobState::waiting, seconds(2), seconds(7));

  const SubmissionDecision decision = sim.trigger("webapp", seconds(4));

  ck_assert_name(decision.kind, "coalesce");
  ck_assert_uint_eq(decision.job_id, 3);
  ck_assert_int_eq(decision.not_before, seconds(9));
}
END_TEST

START_TEST(submission_after_job_left_waiting_starts_new_job) {
  Simulation sim;
  sim.policies["webapp"] = quiet_window(seconds(5));
  sim.trigger("webapp", seconds(0));
  sim.tick(seconds(5));
  ck_assert_name(sim.job(1).state, "running");

  const SubmissionDecision decision = sim.trigger("webapp", seconds(6));

  ck_assert_name(decision.kind, "new_job");
  ck_assert_int_eq(decision.not_before, seconds(11));
}
END_TEST

// --- Groups (DeployGroupBy): SPEC's example per group ---

START_TEST(interleaved_groups_never_merge_and_each_starts_wait_after_its_last_trigger) {
  Simulation sim;
  sim.policies["vm"] = quiet_window(seconds(5));
  // vm=a at 0, 4, …, 36 s; vm=b at 2, 6, …, 38 s.
  sim.replay("vm", interleaved(every(seconds(0), seconds(36), seconds(4), "a"),
                               every(seconds(2), seconds(38), seconds(4), "b")));

  ck_assert_uint_eq(sim.next_id, 3);
  ck_assert_str_eq(sim.job(1).group.c_str(), "a");
  ck_assert_uint_eq(sim.requests[1], 10);
  ck_assert_int_eq(sim.started_at[1], seconds(41));
  ck_assert_str_eq(sim.job(2).group.c_str(), "b");
  ck_assert_uint_eq(sim.requests[2], 10);
  ck_assert_int_eq(sim.started_at[2], seconds(43));  // while job 1 runs: concurrency 1 per group
}
END_TEST

START_TEST(max_wait_holds_per_group_and_later_triggers_form_a_second_job_of_their_group) {
  Simulation sim;
  sim.policies["vm"] = quiet_window(seconds(5), seconds(30));
  sim.policies["vm"].concurrency = 2;  // each group's first job still runs at its second's start
  sim.replay("vm", interleaved(every(seconds(0), seconds(36), seconds(4), "a"),
                               every(seconds(2), seconds(38), seconds(4), "b")));

  ck_assert_uint_eq(sim.next_id, 5);
  ck_assert_str_eq(sim.job(1).group.c_str(), "a");
  ck_assert_uint_eq(sim.requests[1], 8);  // 0, 4, …, 28 s
  ck_assert_int_eq(sim.started_at[1], seconds(30));
  ck_assert_str_eq(sim.job(2).group.c_str(), "b");
  ck_assert_uint_eq(sim.requests[2], 8);  // 2, 6, …, 30 s
  ck_assert_int_eq(sim.started_at[2], seconds(32));
  ck_assert_str_eq(sim.job(3).group.c_str(), "a");
  ck_assert_uint_eq(sim.requests[3], 2);  // 32 and 36 s
  ck_assert_int_eq(sim.started_at[3], seconds(41));
  ck_assert_str_eq(sim.job(4).group.c_str(), "b");
  ck_assert_uint_eq(sim.requests[4], 2);  // 34 and 38 s
  ck_assert_int_eq(sim.started_at[4], seconds(43));
}
END_TEST

START_TEST(coalescing_joins_only_the_oldest_waiting_job_of_the_same_group) {
  Simulation sim;
  sim.policies["vm"] = quiet_window(seconds(5));
  sim.add(1, "vm", JobState::waiting, seconds(0), seconds(5), "a");
  sim.add(2, "vm", JobState::waiting, seconds(1), seconds(6), "");
  sim.add(3, "vm", JobState::waiting, seconds(2), seconds(7), "b");
  sim.add(4, "other", JobState::waiting, seconds(2), seconds(7), "c");

  const SubmissionDecision b = sim.trigger("vm", seconds(3), "b");
  ck_assert_name(b.kind, "coalesce");
  ck_assert_uint_eq(b.job_id, 3);
  const SubmissionDecision absent = sim.trigger("vm", seconds(3), "");
  ck_assert_name(absent.kind, "coalesce");
  ck_assert_uint_eq(absent.job_id, 2);
  // A group that only another target has starts a job of its own.
  const SubmissionDecision c = sim.trigger("vm", seconds(3), "c");
  ck_assert_name(c.kind, "new_job");
  ck_assert_name(c.state, "waiting");
  ck_assert_int_eq(sim.job(1).not_before, seconds(5));  // vm=a was never joined
}
END_TEST

START_TEST(concurrency_holds_per_group_so_other_groups_run_in_parallel) {
  Simulation sim;
  sim.policies["vm"] = concurrency(1);
  sim.trigger("vm", seconds(0), "a");
  sim.trigger("vm", seconds(1), "a");
  sim.trigger("vm", seconds(2), "b");

  ck_assert_ids(sim.tick(seconds(2)).start, {1, 3});
  ck_assert_ids(sim.tick(seconds(3)).start, {});  // a second vm=a queues

  sim.finish(1);
  ck_assert_ids(sim.tick(seconds(4)).start, {2});
}
END_TEST

START_TEST(oldest_first_passes_over_full_groups) {
  Simulation sim;
  sim.limits.max_running = 3;
  sim.policies["vm"] = concurrency(1);
  sim.add(1, "vm", JobState::running, 0, 0, "a");
  sim.add(2, "vm", JobState::queued, 0, 0, "a");
  sim.add(5, "vm", JobState::queued, 0, 0, "c");  // the table's order is not the age order
  sim.add(3, "vm", JobState::queued, 0, 0, "b");
  sim.add(4, "vm", JobState::queued, 0, 0, "a");
  sim.add(6, "vm", JobState::queued, 0, 0, "b");

  ck_assert_ids(sim.tick(seconds(1)).start, {3, 5});
}
END_TEST

START_TEST(global_limit_holds_across_groups) {
  Simulation sim;
  sim.limits.max_running = 2;
  sim.policies["vm"] = concurrency(1);
  sim.trigger("vm", seconds(0), "a");
  sim.trigger("vm", seconds(1), "b");
  sim.trigger("vm", seconds(2), "c");

  ck_assert_ids(sim.tick(seconds(2)).start, {1, 2});
  ck_assert_ids(sim.tick(seconds(3)).start, {});

  sim.finish(1);
  ck_assert_ids(sim.tick(seconds(4)).start, {3});
}
END_TEST

// --- The queue limit ---

START_TEST(queue_full_counts_waiting_and_queued_jobs_of_all_targets) {
  Simulation sim;
  sim.limits.queue_limit = 2;
  sim.policies["a"] = quiet_window(seconds(5));
  sim.add(1, "a", JobState::waiting, 0, seconds(5));
  sim.add(2, "b", JobState::queued);
  sim.add(3, "c", JobState::running);

  ck_assert_name(sim.trigger("c", seconds(1)).kind, "queue_full");
  ck_assert_uint_eq(sim.next_id, 4);  // nothing recorded

  sim.finish(2);
  ck_assert_name(sim.trigger("c", seconds(1)).kind, "new_job");
}
END_TEST

START_TEST(coalescing_is_accepted_when_queue_is_full) {
  Simulation sim;
  sim.limits.queue_limit = 1;
  sim.policies["a"] = quiet_window(seconds(5));
  sim.trigger("a", seconds(0));
  ck_assert_name(sim.trigger("b", seconds(1)).kind, "queue_full");

  const SubmissionDecision decision = sim.trigger("a", seconds(2));

  ck_assert_name(decision.kind, "coalesce");
  ck_assert_uint_eq(decision.job_id, 1);
  ck_assert_uint_eq(sim.requests[1], 2);
}
END_TEST

// --- Starting jobs ---

START_TEST(global_limit_caps_running_jobs_of_all_targets) {
  Simulation sim;
  sim.limits.max_running = 3;
  for (const char* target : {"a", "b", "c", "d", "e"}) sim.policies[target] = concurrency(1);
  sim.add(1, "a", JobState::running);
  sim.add(2, "b", JobState::queued);
  sim.add(3, "c", JobState::queued);
  sim.add(4, "d", JobState::queued);
  sim.add(5, "e", JobState::queued);

  ck_assert_ids(sim.tick(seconds(1)).start, {2, 3});
  ck_assert_ids(sim.tick(seconds(2)).start, {});

  sim.finish(1);
  ck_assert_ids(sim.tick(seconds(3)).start, {4});
}
END_TEST

START_TEST(concurrency_one_serializes_target) {
  Simulation sim;
  sim.policies["webapp"] = concurrency(1);
  sim.trigger("webapp", seconds(0));
  sim.trigger("webapp", seconds(1));

  ck_assert_ids(sim.tick(seconds(1)).start, {1});
  ck_assert_ids(sim.tick(seconds(2)).start, {});

  sim.finish(1);
  ck_assert_ids(sim.tick(seconds(3)).start, {2});
}
END_TEST

START_TEST(concurrency_zero_uses_only_global_limit) {
  Simulation sim;
  sim.limits.max_running = 3;
  sim.policies["webapp"] = concurrency(0);
  for (int t = 0; t < 5; ++t) sim.trigger("webapp", seconds(t));

  ck_assert_ids(sim.tick(seconds(5)).start, {1, 2, 3});
}
END_TEST

START_TEST(oldest_first_passes_over_full_target) {
  Simulation sim;
  sim.limits.max_running = 3;
  sim.policies["a"] = concurrency(1);
  sim.policies["b"] = concurrency(1);
  sim.policies["c"] = concurrency(1);
  sim.add(1, "a", JobState::running);
  sim.add(2, "a", JobState::queued);
  sim.add(5, "c", JobState::queued);  // the table's order is not the age order
  sim.add(3, "b", JobState::queued);
  sim.add(4, "a", JobState::queued);
  sim.add(6, "b", JobState::queued);

  const ScheduleDecision decision = sim.tick(seconds(1));

  ck_assert_ids(decision.start, {3, 5});
  ck_assert_ids(decision.ready, {});  // they were queued already
}
END_TEST

START_TEST(running_job_of_removed_target_holds_global_slot) {
  Simulation sim;
  sim.limits.max_running = 1;
  sim.policies["a"] = concurrency(1);
  sim.add(1, "gone", JobState::running);
  sim.add(2, "a", JobState::queued);

  const ScheduleDecision decision = sim.tick(seconds(1));

  ck_assert_ids(decision.start, {});
  ck_assert_ids(decision.expire, {});
}
END_TEST

START_TEST(ready_job_of_full_target_stays_queued) {
  Simulation sim;
  sim.policies["webapp"] = quiet_window(seconds(5));
  sim.add(1, "webapp", JobState::running);
  sim.trigger("webapp", seconds(0));

  const ScheduleDecision decision = sim.tick(seconds(5));

  ck_assert_ids(decision.ready, {2});
  ck_assert_ids(decision.start, {});
  ck_assert_name(sim.job(2).state, "queued");
}
END_TEST

// --- Expiry ---

START_TEST(queued_job_expires_exactly_at_queue_timeout) {
  Simulation sim;
  sim.policies["webapp"] = queue_timeout(seconds(600));
  sim.add(1, "webapp", JobState::running);
  sim.add(2, "webapp", JobState::queued, seconds(10));

  const ScheduleDecision before = sim.tick(seconds(610) - 1);
  ck_assert_ids(before.expire, {});
  ck_assert_int_eq(before.next_due, seconds(610));

  const ScheduleDecision at = sim.tick(seconds(610));
  ck_assert_ids(at.expire, {2});
  ck_assert_ids(at.start, {});
  ck_assert_int_eq(at.next_due, 0);
}
END_TEST

START_TEST(waiting_job_expires_at_queue_timeout_before_its_window_ends) {
  Simulation sim;
  sim.policies["webapp"] = quiet_window(seconds(10));
  sim.policies["webapp"].queue_timeout = seconds(10);
  sim.trigger("webapp", seconds(0));
  sim.trigger("webapp", seconds(4));  // not_before 14 s, past the deadline at 10 s

  ck_assert_int_eq(sim.tick(seconds(4)).next_due, seconds(10));

  const ScheduleDecision decision = sim.tick(seconds(10));
  ck_assert_ids(decision.expire, {1});
  ck_assert_ids(decision.ready, {});
  ck_assert_ids(decision.start, {});
}
END_TEST

START_TEST(queue_timeout_zero_never_expires) {
  Simulation sim;
  sim.policies["webapp"] = queue_timeout(0);
  sim.add(1, "webapp", JobState::running);
  sim.add(2, "webapp", JobState::queued);

  const ScheduleDecision decision = sim.tick(seconds(1'000'000));

  ck_assert_ids(decision.expire, {});
  ck_assert_int_eq(decision.next_due, 0);
}
END_TEST

START_TEST(job_of_unknown_target_expires) {
  Simulation sim;
  sim.policies["a"] = TargetPolicy{};
  sim.add(1, "gone", JobState::waiting, 0, seconds(50));
  sim.add(2, "gone", JobState::queued);
  sim.add(3, "a", JobState::queued);

  const ScheduleDecision decision = sim.tick(seconds(1));

  ck_assert_ids(decision.expire, {1, 2});
  ck_assert_ids(decision.start, {3});
  ck_assert_int_eq(decision.next_due, 0);
}
END_TEST

// --- When to decide again ---

START_TEST(next_due_is_earliest_window_end_or_expiry) {
  Simulation sim;
  sim.policies["a"] = quiet_window(seconds(30));
  sim.policies["a"].queue_timeout = seconds(100);
  sim.policies["b"] = queue_timeout(seconds(20));
  sim.policies["c"] = quiet_window(seconds(25));
  sim.add(1, "b", JobState::running);
  sim.add(2, "a", JobState::waiting, seconds(0), seconds(30));
  sim.add(3, "b", JobState::queued, seconds(5));  // blocked; expires at 25 s
  sim.add(4, "c", JobState::waiting, seconds(2), seconds(27));

  ck_assert_int_eq(sim.tick(seconds(6)).next_due, seconds(25));
  ck_assert_int_eq(sim.tick(seconds(25)).next_due, seconds(27));  // job 3 expired
  ck_assert_int_eq(sim.tick(seconds(27)).next_due, seconds(30));  // job 4 started
  // Job 2 started at 30 s: its expiry at 100 s no longer matters.
  ck_assert_int_eq(sim.tick(seconds(30)).next_due, 0);
}
END_TEST

START_TEST(next_due_counts_jobs_behind_full_global_limit) {
  Simulation sim;
  sim.limits.max_running = 1;
  sim.policies["a"] = TargetPolicy{};
  sim.policies["b"] = queue_timeout(seconds(20));
  sim.policies["c"] = quiet_window(seconds(10));
  sim.add(1, "a", JobState::running);
  sim.add(2, "b", JobState::queued, seconds(0));
  sim.add(3, "c", JobState::waiting, seconds(0), seconds(10));

  ck_assert_int_eq(sim.tick(seconds(1)).next_due, seconds(10));
  ck_assert_int_eq(sim.tick(seconds(10)).next_due, seconds(20));  // job 3 queued behind job 1
}
END_TEST

START_TEST(next_due_is_zero_with_nothing_pending) {
  const ScheduleDecision decision = deploy::schedule({}, {}, Limits{}, seconds(1));

  ck_assert_ids(decision.expire, {});
  ck_assert_ids(decision.ready, {});
  ck_assert_ids(decision.start, {});
  ck_assert_int_eq(decision.next_due, 0);
}
END_TEST

// A cluster: a job running on another node takes its target's
// DeployConcurrency slot, not one of this node's DeployMaxRunning.
START_TEST(a_job_running_on_another_node_holds_a_concurrency_slot_not_a_local_one) {
  std::map<std::string, deploy::TargetPolicy> policies;
  policies["web"].concurrency = 1;
  policies["db"].concurrency = 0;
  Limits limits;
  limits.max_running = 1;
  std::vector<PendingJob> jobs = {{1, "web", JobState::running, 0, 0, "", true},
                                  {2, "web", JobState::queued, 0, 0, "", false},
                                  {3, "db", JobState::queued, 0, 0, "", false}};
  ck_assert_ids(deploy::schedule(jobs, policies, limits, seconds(1)).start, {3});
  jobs[0].elsewhere = false;  // running here: this node is full
  ck_assert_ids(deploy::schedule(jobs, policies, limits, seconds(1)).start, {});
}
END_TEST

Suite* scheduler_suite() {
  Suite* suite = suite_create("scheduler");

  TCase* coalescing = tcase_create("coalescing");
  tcase_add_test(coalescing, coalesced_job_starts_wait_after_last_trigger);
  tcase_add_test(coalescing, max_wait_starts_job_and_later_triggers_form_second_job);
  tcase_add_test(coalescing, equal_max_wait_gives_fixed_window_from_first_trigger);
  tcase_add_test(coalescing, trigger_just_before_not_before_joins_waiting_job);
  tcase_add_test(coalescing, trigger_exactly_at_not_before_starts_new_job);
  tcase_add_test(coalescing, waiting_job_is_ready_exactly_at_not_before);
  tcase_add_test(coalescing, new_job_waits_quiet_window_capped_by_max_wait);
  tcase_add_test(coalescing, without_quiet_window_submission_is_queued_at_once);
  tcase_add_test(coalescing, coalescing_joins_oldest_waiting_job_of_same_target);
  tcase_add_test(coalescing, submission_after_job_left_waiting_starts_new_job);
  suite_add_tcase(suite, coalescing);

  TCase* groups = tcase_create("groups");
  tcase_add_test(groups,
                 interleaved_groups_never_merge_and_each_starts_wait_after_its_last_trigger);
  tcase_add_test(groups,
                 max_wait_holds_per_group_and_later_triggers_form_a_second_job_of_their_group);
  tcase_add_test(groups, coalescing_joins_only_the_oldest_waiting_job_of_the_same_group);
  tcase_add_test(groups, concurrency_holds_per_group_so_other_groups_run_in_parallel);
  tcase_add_test(groups, oldest_first_passes_over_full_groups);
  tcase_add_test(groups, global_limit_holds_across_groups);
  suite_add_tcase(suite, groups);

  TCase* queue_limit = tcase_create("queue_limit");
  tcase_add_test(queue_limit, queue_full_counts_waiting_and_queued_jobs_of_all_targets);
  tcase_add_test(queue_limit, coalescing_is_accepted_when_queue_is_full);
  suite_add_tcase(suite, queue_limit);

  TCase* starting = tcase_create("starting");
  tcase_add_test(starting, global_limit_caps_running_jobs_of_all_targets);
  tcase_add_test(starting, concurrency_one_serializes_target);
  tcase_add_test(starting, concurrency_zero_uses_only_global_limit);
  tcase_add_test(starting, oldest_first_passes_over_full_target);
  tcase_add_test(starting, running_job_of_removed_target_holds_global_slot);
  tcase_add_test(starting, ready_job_of_full_target_stays_queued);
  suite_add_tcase(suite, starting);

  TCase* expiry = tcase_create("expiry");
  tcase_add_test(expiry, queued_job_expires_exactly_at_queue_timeout);
  tcase_add_test(expiry, waiting_job_expires_at_queue_timeout_before_its_window_ends);
  tcase_add_test(expiry, queue_timeout_zero_never_expires);
  tcase_add_test(expiry, job_of_unknown_target_expires);
  suite_add_tcase(suite, expiry);

  TCase* next_due = tcase_create("next_due");
  tcase_add_test(next_due, next_due_is_earliest_window_end_or_expiry);
  tcase_add_test(next_due, next_due_counts_jobs_behind_full_global_limit);
  tcase_add_test(next_due, next_due_is_zero_with_nothing_pending);
  tcase_add_test(next_due, a_job_running_on_another_node_holds_a_concurrency_slot_not_a_local_one);
  suite_add_tcase(suite, next_due);

  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(scheduler_suite);
