#include "scheduler.h"

#include <algorithm>
#include <utility>

namespace deploy {

namespace {

bool is_pending(const PendingJob& job) {
  return job.state == JobState::waiting || job.state == JobState::queued;
}

// A waiting job stops taking triggers at the instant its quiet window ends,
// the same instant schedule() makes it ready (not_before <= now). Without
// this, a trigger at exactly not_before would delay the job or not depending
// on whether the POST handler or the scheduler process took the lock first.
// Only a job of the same group takes them: `vm=a` never joins `vm=b`.
bool takes_triggers(const PendingJob& job, const std::string& target, const std::string& group,
                    Micros now) {
  return job.state == JobState::waiting && job.target == target && job.group == group &&
         job.not_before > now;
}

// The instant a pending job expires, or nullopt if it never does.
std::optional<Micros> expiry_deadline(const PendingJob& job, const TargetPolicy& policy) {
  if (policy.queue_timeout <= 0) return std::nullopt;
  return job.submitted_at + policy.queue_timeout;
}

// The earliest of the quiet window after `last_trigger` and the max wait
// after `first_trigger`; a max wait of 0 is no cap.
Micros end_of_quiet_window(const TargetPolicy& policy, Micros first_trigger, Micros last_trigger) {
  const Micros after_last = last_trigger + policy.quiet_window;
  if (policy.max_wait <= 0) return after_last;
  return std::min(after_last, first_trigger + policy.max_wait);
}

void keep_earliest(Micros& earliest, Micros candidate) {
  if (earliest == 0 || candidate < earliest) earliest = candidate;
}

}  // namespace

SubmissionDecision decide_submission(const std::vector<PendingJob>& jobs, const std::string& target,
                                     const std::string& group, const TargetPolicy& policy,
                                     const Limits& limits, Micros now) {
  SubmissionDecision decision;
  if (policy.quiet_window > 0) {
    const PendingJob* oldest_waiting = nullptr;
    for (const PendingJob& job : jobs) {
      if (takes_triggers(job, target, group, now) &&
          (!oldest_waiting || job.id < oldest_waiting->id)) {
        oldest_waiting = &job;
      }
    }
    // Joining adds no job, so it is accepted even when the queue is full.
    if (oldest_waiting) {
      decision.kind = SubmissionDecision::Kind::coalesce;
      decision.job_id = oldest_waiting->id;
      decision.state = JobState::waiting;
      decision.not_before = end_of_quiet_window(policy, oldest_waiting->submitted_at, now);
      return decision;
    }
  }

  const auto pending = std::count_if(jobs.begin(), jobs.end(), is_pending);
  if (static_cast<uint64_t>(pending) >= limits.queue_limit) {
    decision.kind = SubmissionDecision::Kind::queue_full;
    return decision;
  }

  decision.kind = SubmissionDecision::Kind::new_job;
  if (policy.quiet_window > 0) {
    decision.state = JobState::waiting;
    decision.not_before = end_of_quiet_window(policy, now, now);
  } else {
    decision.state = JobState::queued;
    decision.not_before = 0;
  }
  return decision;
}

ScheduleDecision schedule(const std::vector<PendingJob>& jobs,
                          const std::map<std::string, TargetPolicy>& policies, const Limits& limits,
                          Micros now) {
  std::vector<const PendingJob*> by_age;
  by_age.reserve(jobs.size());
  for (const PendingJob& job : jobs) by_age.push_back(&job);
  std::sort(by_age.begin(), by_age.end(),
            [](const PendingJob* a, const PendingJob* b) { return a->id < b->id; });

  // Running jobs of a target no longer configured still hold a global slot.
  // DeployConcurrency counts the running jobs of one group of one target, on
  // every node; DeployMaxRunning those of this node.
  uint32_t running = 0;
  std::map<std::pair<std::string, std::string>, uint32_t> running_of_group;
  for (const PendingJob* job : by_age) {
    if (job->state != JobState::running) continue;
    if (!job->elsewhere) ++running;
    ++running_of_group[{job->target, job->group}];
  }

  ScheduleDecision decision;
  for (const PendingJob* job : by_age) {
    if (!is_pending(*job)) continue;
    const auto policy = policies.find(job->target);
    if (policy == policies.end()) {
      decision.expire.push_back(job->id);
      continue;
    }
    const std::optional<Micros> deadline = expiry_deadline(*job, policy->second);
    if (deadline && *deadline <= now) {
      decision.expire.push_back(job->id);
      continue;
    }

    const bool ready = job->state == JobState::queued || job->not_before <= now;
    if (!ready) {
      keep_earliest(decision.next_due, job->not_before);
      if (deadline) keep_earliest(decision.next_due, *deadline);
      continue;
    }
    if (job->state == JobState::waiting) decision.ready.push_back(job->id);

    const uint32_t concurrency = policy->second.concurrency;
    uint32_t& running_here = running_of_group[{job->target, job->group}];
    const bool slot_free =
        running < limits.max_running && (concurrency == 0 || running_here < concurrency);
    if (slot_free) {
      decision.start.push_back(job->id);
      ++running;
      ++running_here;
    } else if (deadline) {
      keep_earliest(decision.next_due, *deadline);
    }
  }
  return decision;
}

}  // namespace deploy
