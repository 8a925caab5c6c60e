// The scheduling policy: where a submission goes and which jobs change state
// now. Pure functions of the jobs, the settings and `now`; the callers (the
// POST handler and the scheduler process) apply the decisions under the
// table lock. Nothing here sleeps, reads a clock or touches a file.
//
// Every time here, `now`, the jobs' times and next_due included, is on the
// monotonic clock (clock.h): a step of the wall clock changes no decision.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "directive_specs.h"
#include "job.h"

namespace deploy {

// A TargetPolicy{} and Limits{} hold the directives' defaults
// (directive_specs.h).
struct TargetPolicy {
  // DeployWaitChangeNotification (0: off)
  Micros quiet_window = directive_default<Micros>("DeployWaitChangeNotification");
  // DeployMaxWaitChangeNotification (0: no cap)
  Micros max_wait = directive_default<Micros>("DeployMaxWaitChangeNotification");
  Micros queue_timeout = directive_default<Micros>("DeployQueueTimeout");  // 0: never
  // DeployConcurrency per group (0: only the global limit)
  uint32_t concurrency = directive_default<uint32_t>("DeployConcurrency");
  // DeployGroupBy: the parameter whose value groups the target's jobs (none:
  // one group). Coalescing and DeployConcurrency hold per group.
  std::optional<std::string> group_by;
};

struct Limits {
  uint32_t max_running = directive_default<uint32_t>("DeployMaxRunning");
  uint32_t queue_limit = directive_default<uint32_t>("DeployQueueLimit");
};

// The scheduling facts of one unfinished job.
struct PendingJob {
  uint64_t id = 0;
  std::string target;
  JobState state = JobState::queued;
  Micros submitted_at = 0;  // first trigger (monotonic)
  Micros not_before = 0;    // while waiting (monotonic)
  std::string group;        // within the target (job_group; "" without DeployGroupBy)
  // Running on another node of a cluster (docs/cluster.md): it counts for
  // DeployConcurrency (the cluster's), not for DeployMaxRunning (this node's).
  bool elsewhere = false;
};

struct SubmissionDecision {
  enum class Kind { new_job, coalesce, queue_full } kind = Kind::new_job;
  uint64_t job_id = 0;                // the waiting job joined (coalesce)
  JobState state = JobState::queued;  // of the new job
  Micros not_before = 0;              // new value (monotonic; 0: none)
};

// `jobs` holds the unfinished jobs of every target; `group` is the
// submission's (job_group of its params, "" without DeployGroupBy).
SubmissionDecision decide_submission(const std::vector<PendingJob>& jobs, const std::string& target,
                                     const std::string& group, const TargetPolicy& policy,
                                     const Limits& limits, Micros now);

struct ScheduleDecision {
  std::vector<uint64_t> expire;  // waiting or queued past their queue timeout, or target gone
  std::vector<uint64_t> ready;   // waiting whose quiet window ended: now queued
  std::vector<uint64_t> start;   // to start now, oldest first
  Micros next_due = 0;           // when to decide again at the latest (0: only on a change)
};

// `policies` holds every configured target; a job whose target is missing expires.
ScheduleDecision schedule(const std::vector<PendingJob>& jobs,
                          const std::map<std::string, TargetPolicy>& policies, const Limits& limits,
                          Micros now);

}  // namespace deploy
