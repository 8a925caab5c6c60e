// The `file` engine of the job store (file_store.h).
#include "file_store.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "job_details.h"

namespace deploy {
namespace {

// A slot's state is the notification's (core/notification.h).
static_assert(uint8_t(DeliveryState::pending) == uint8_t(NotificationState::pending) &&
              uint8_t(DeliveryState::delivered) == uint8_t(NotificationState::delivered) &&
              uint8_t(DeliveryState::failed) == uint8_t(NotificationState::failed));

bool in_state(const JobRecord* r, JobState s) { return r && r->state == uint8_t(s); }

// Whether `r` is still run by `runner`: the fence of a runner's writes. A
// runner that has not recorded itself yet (pid 0) is the launcher's.
bool record_run_by(const JobRecord* r, const RunnerRef& runner) {
  return in_state(r, JobState::running) && r->runner_pid == runner.runner_pid &&
         r->runner_start_ticks == runner.runner_start_ticks;
}

// A runner is alive when its pid exists and is still the process it was.
// `now` and `quiet_since` are monotonic. A runner cannot record itself
// while the table lock is held elsewhere: its silence counts from when the
// scheduler last got the lock after it was busy, if that is later than the
// job's start.
bool runner_alive(const JobRecord& r, Micros now, Micros quiet_since) {
  const Micros silent = now - std::max(r.started_mono, quiet_since);
  if (r.runner_pid <= 0) return silent < FileStore::kRunnerSilenceLimit;
  const uint64_t ticks = process_start_ticks(r.runner_pid);
  if (ticks == 0) return false;
  if (r.runner_start_ticks == 0) return silent < FileStore::kRunnerSilenceLimit;
  return ticks == r.runner_start_ticks;
}

std::string_view record_target(const JobRecord& r) {
  return std::string_view(r.target, strnlen(r.target, sizeof r.target));
}

std::vector<PendingJob> pending_jobs(JobTable::Lock& lock, const GroupByOf& group_by) {
  std::vector<PendingJob> jobs;
  lock.for_each_unfinished([&](JobRecord& r) {
    jobs.push_back(pending_job(r, group_by ? group_by(record_target(r)) : std::nullopt));
  });
  return jobs;
}

// The job becomes running, started `now`, with no runner yet (the
// launcher's until its runner records itself). Never before its
// submission: `now` is the pass's, which may have begun before the pass got
// the lock and the submission was recorded meanwhile.
void claim(JobTable::Lock& lock, JobRecord* r, const Instant& now) {
  r->state = uint8_t(JobState::running);
  r->started_at = std::max(now.wall, r->submitted_at);
  r->started_mono = now.mono;
  r->runner_pid = 0;
  r->runner_start_ticks = 0;
  lock.commit(r);
}

}  // namespace

// Holds the table for one operation; busy() is the Status to return when
// it could not be had.
class FileStoreLock : public JobTable::Lock {
 public:
  FileStoreLock(JobTable& table, Micros timeout) : JobTable::Lock(table, timeout) {}
  Status busy() const { return Status::error(status().message(), kStoreBusy); }
};

Job FileStore::job_of(const JobRecord& r) const {
  Job job = record_to_job(r);
  if (job.started_at != 0 && !node_.empty()) job.node = node_;
  // Only a job that set stages or outputs has the file: most reads open none.
  // It is anyone's to write (as the table): a damaged one shows none.
  std::string details;
  if ((r.flags & kRecordHasDetails) && table_.read_details(r.id, &details))
    decode_details(details, &job.stages, &job.outputs);
  return job;
}

Status FileStore::submit(const NewSubmission& s, const Instant& now, SubmitResult* out) {
  const bool room = table_.has_room_for_a_job();
  out->duplicate = false;
  out->superseded.clear();
  out->needs_flush = true;
  uint64_t evicted = 0;
  {
    FileStoreLock lock(table_, lock_timeout_);
    if (!lock.held()) return lock.busy();
    if (s.idempotency_key) {
      if (JobRecord* same = find_by_key(lock, s.target, *s.idempotency_key)) {
        out->duplicate = true;
        out->job = job_of(*same);
        return Status::ok();
      }
    }
    const SubmissionDecision d = decide_submission(pending_jobs(lock, s.group_by), s.target,
                                                   s.group, s.policy, s.limits, now.mono);
    // The wall time of not_before is written with it, once (job JSON stays
    // the same until the job changes).
    const Micros not_before_wall = d.not_before ? now.wall_of(d.not_before) : 0;
    out->kind = d.kind;
    JobRecord* rec = nullptr;
    if (d.kind == SubmissionDecision::Kind::coalesce) {
      // Found by pending_jobs under this lock; checked again all the same.
      rec = lock.find(d.job_id);
      if (!rec) out->kind = SubmissionDecision::Kind::queue_full;
    }
    if (rec && d.kind == SubmissionDecision::Kind::coalesce) {
      out->needs_flush =
          load_params(*rec) != s.params || rec->params_seq > lock.header().durable_seq;
      rec->requests++;
      rec->not_before_mono = d.not_before;
      rec->not_before = not_before_wall;
      lock.header().counters.coalesced++;
    } else if (d.kind == SubmissionDecision::Kind::new_job) {
      if (!room)
        return Status::error("the file system of DeployStateDir " + table_.state_dir() + " is full",
                             kStoreFull);
      bool damaged = false;
      rec = lock.allocate(&evicted, &damaged);
      if (damaged)
        return Status::error(
            "the header of the job table is damaged (its next job id is out of range); restart "
            "httpd to repair it",
            kStoreDamaged);
      if (!rec) out->kind = SubmissionDecision::Kind::queue_full;  // every slot busy
    }
    if (!rec) {
      lock.count_rejection(Rejection::queue_full);
      return Status::ok();
    }
    if (out->needs_flush) {
      store_params(*rec, s.params);  // validate_params checked that they fit
      rec->params_seq = lock.next_change_seq();
    }
    if (out->kind == SubmissionDecision::Kind::new_job) {
      store_text(rec->target, sizeof rec->target, s.target);
      rec->state = uint8_t(d.state);
      rec->not_before_mono = d.not_before;
      rec->not_before = not_before_wall;
      rec->submitted_at = now.wall;
      rec->submitted_mono = now.mono;
      if (s.submitted_by) {
        rec->has_submitted_by = 1;
        store_text(rec->submitted_by, sizeof rec->submitted_by, *s.submitted_by);
      }
      if (s.idempotency_key) {
        store_text(rec->idempotency_key, sizeof rec->idempotency_key, *s.idempotency_key);
        rec->idempotency_key_size = uint16_t(strlen(rec->idempotency_key));
      }
      rec->notification_count = uint8_t(std::min<size_t>(s.notifications, kNotificationsMax));
      for (size_t i = 0; i < rec->notification_count; ++i)
        rec->notifications[i].state = uint8_t(DeliveryState::pending);
      lock.header().counters.accepted++;
    }
    lock.commit(rec);
    out->job = job_of(*rec);
    if (out->kind == SubmissionDecision::Kind::new_job && s.supersede != Supersede::off)
      supersede_older(lock, *rec, s, now, &out->superseded);
  }
  if (evicted) table_.drop_log(evicted);
  return Status::ok();
}

Status FileStore::withdraw(uint64_t id) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  JobRecord* r = lock.find(id);
  if (!in_state(r, JobState::waiting) && !in_state(r, JobState::queued))
    return job_not_found(id, "is neither waiting nor queued");
  lock.release(r);
  if (lock.header().counters.accepted > 0) lock.header().counters.accepted--;
  return Status::ok();
}

Status FileStore::count_rejection(Rejection why) {
  if (why == Rejection::busy) {
    table_.count_busy_rejection();  // counted when the table is free again
    return Status::ok();
  }
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  lock.count_rejection(why);
  return Status::ok();
}

Status FileStore::count_ignored() {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  lock.header().submissions_ignored++;
  lock.commit_header();
  return Status::ok();
}

Status FileStore::schedule_pass(
    const GroupByOf& group_by,
    const std::function<ScheduleDecision(const std::vector<PendingJob>&)>& decide,
    const Instant& now, ScheduleDecision* decision, std::vector<Job>* started, uint64_t* seen) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  *decision = decide(pending_jobs(lock, group_by));
  // find() checks each record again: a process that ignores the lock may
  // have damaged one since it was read above.
  for (uint64_t id : decision->expire) {
    JobRecord* r = lock.find(id);
    if (in_state(r, JobState::waiting) || in_state(r, JobState::queued))
      lock.finish(r, JobState::expired, now);
  }
  for (uint64_t id : decision->ready) {
    JobRecord* r = lock.find(id);
    if (!in_state(r, JobState::waiting)) continue;
    r->state = uint8_t(JobState::queued);
    lock.commit(r);
  }
  for (uint64_t id : decision->start) {
    JobRecord* r = lock.find(id);
    if (!in_state(r, JobState::queued) && !in_state(r, JobState::waiting)) continue;
    claim(lock, r, now);
    started->push_back(job_of(*r));
  }
  if (seen) *seen = table_.change_seq();
  return Status::ok();
}

Status FileStore::ready(uint64_t id, const Instant&) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  JobRecord* r = lock.find(id);
  if (!in_state(r, JobState::waiting)) return job_not_found(id, "is not waiting");
  r->state = uint8_t(JobState::queued);
  lock.commit(r);
  return Status::ok();
}

Status FileStore::start(uint64_t id, const Instant& now, Job* out) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  JobRecord* r = lock.find(id);
  if (!in_state(r, JobState::queued)) return job_not_found(id, "is not queued");
  claim(lock, r, now);
  *out = job_of(*r);
  return Status::ok();
}

Status FileStore::runner_recorded(uint64_t id, const RunnerRef& runner, int32_t job_pid,
                                  Micros timeout, bool* cancel_requested) {
  FileStoreLock lock(table_, timeout > 0 ? timeout : lock_timeout_);
  if (!lock.held()) return lock.busy();
  JobRecord* r = lock.find(id);
  // Taken only from the launcher (no runner yet), or by the same runner.
  if (!record_run_by(r, RunnerRef{}) && !record_run_by(r, runner)) return job_not_owned(id);
  r->runner_pid = runner.runner_pid;
  r->runner_start_ticks = runner.runner_start_ticks;
  if (job_pid > 0) r->job_pid = job_pid;
  lock.commit_quiet(r);
  if (cancel_requested) *cancel_requested = r->cancel_requested != 0;
  return Status::ok();
}

namespace {

// Writes `report` into the record: whether it changed what a client sees
// (*visible) or only pids and the log size (*quiet). An unchanged value is
// no change: a job repeating its progress line must not wake every watcher.
void apply_report(JobRecord* r, const RunnerReport& report, bool* visible, bool* quiet) {
  if (report.job_pid > 0 && r->job_pid != report.job_pid) {
    r->job_pid = report.job_pid;
    *quiet = true;
  }
  if (report.progress >= 0 && report.progress <= 100 && r->progress != report.progress) {
    r->progress = int8_t(report.progress);
    *visible = true;
  }
  if (report.stage && !(r->has_stage && std::string_view(r->stage) == *report.stage)) {
    store_text(r->stage, sizeof r->stage, *report.stage);
    r->has_stage = 1;
    *visible = true;
  }
  if (report.log_incomplete && !r->log_incomplete) {
    r->log_incomplete = 1;
    *visible = true;
  }
  if (r->log_size != report.log_size) {
    r->log_size = report.log_size;
    *quiet = true;
  }
}

}  // namespace

// The stages and outputs of `report` into the job's details file, under the
// lock of the fenced transition (a runner that lost its job never gets
// here), before the record says the file is there. An unchanged value is no
// change. A file that cannot be written (a full disk) leaves the job as it
// was: like lost output, never a failed job.
void FileStore::apply_details(JobRecord* r, const RunnerReport& report, bool* visible) {
  if (!report.stages && !report.outputs) return;
  Job now = job_of(*r);
  const std::vector<Stage>& stages = report.stages ? *report.stages : now.stages;
  const Outputs& outputs = report.outputs ? *report.outputs : now.outputs;
  if (stages == now.stages && outputs == now.outputs) return;
  if (!table_.write_details(r->id, encode_details(stages, outputs)).is_ok()) return;
  r->flags |= kRecordHasDetails;
  *visible = true;
}

Status FileStore::record_progress(uint64_t id, const RunnerRef& runner, const RunnerReport& report,
                                  Micros timeout, bool* cancel_requested) {
  FileStoreLock lock(table_, timeout > 0 ? timeout : lock_timeout_);
  if (!lock.held()) return lock.busy();
  JobRecord* r = lock.find(id);
  if (!record_run_by(r, runner)) return job_not_owned(id);
  bool visible = false, quiet = false;
  apply_report(r, report, &visible, &quiet);
  apply_details(r, report, &visible);
  if (visible)
    lock.commit(r);
  else if (quiet)
    lock.commit_quiet(r);
  if (cancel_requested) *cancel_requested = r->cancel_requested != 0;
  return Status::ok();
}

Status FileStore::cancel(uint64_t id, const std::optional<std::string>& by, const Instant& now,
                         Job* out, RunnerRef* nudge) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  JobRecord* r = lock.find(id);
  if (!r) return job_not_found(id, "does not exist");
  const JobState s = JobState(r->state);
  *nudge = RunnerRef{};
  if (is_final(s)) {
    *out = job_of(*r);
    return Status::error(
        "job " + std::to_string(id) + " has already finished (" + std::string(state_name(s)) + ")",
        kConflict);
  }
  *nudge = cancel_unfinished(lock, r, by, 0, now);
  *out = job_of(*r);
  return Status::ok();
}

// Cancels an unfinished job (cancel, supersede): a waiting or queued one
// ends canceled; a running one gets the flag its runner reads. The first
// cancel's user and superseding job are kept. The runner to nudge.
RunnerRef FileStore::cancel_unfinished(JobTable::Lock& lock, JobRecord* r,
                                       const std::optional<std::string>& by, uint64_t superseded_by,
                                       const Instant& now) {
  RunnerRef nudge;
  if (!r->cancel_requested) {
    if (by) {
      r->has_canceled_by = 1;
      store_text(r->canceled_by, sizeof r->canceled_by, *by);
    }
    r->superseded_by = superseded_by;
  }
  if (JobState(r->state) == JobState::running) {
    // The runner owns a running job: it sees the flag (and the nudge).
    r->cancel_requested = 1;
    nudge = runner_to_signal(RunnerRef{r->runner_pid, r->runner_start_ticks});
    lock.commit(r);
  } else {
    lock.finish(r, JobState::canceled, now);
    // No runner writes its log: the line is the transition's (a log that
    // cannot be written loses it, as it would lose a runner's).
    const int fd = table_.open_log(r->id);
    if (fd >= 0) {
      const std::string line = cancel_note(
          r->has_canceled_by ? std::optional<std::string>(r->canceled_by) : std::nullopt,
          r->superseded_by);
      const ssize_t written = write(fd, line.data(), line.size());
      (void)written;
      ::close(fd);
    }
  }
  return nudge;
}

// The older unfinished jobs of the new job `r`'s target and group that the
// submission supersedes, canceled with r's id as their superseded_by.
void FileStore::supersede_older(JobTable::Lock& lock, const JobRecord& r, const NewSubmission& s,
                                const Instant& now, std::vector<SupersededJob>* superseded) {
  std::vector<JobRecord*> older;
  lock.for_each_unfinished([&](JobRecord& other) {
    if (other.id >= r.id || record_target(other) != s.target || other.cancel_requested) return;
    const JobState state = JobState(other.state);
    if (state == JobState::running && s.supersede != Supersede::running) return;
    if (s.group_by && job_group(load_params(other), s.group_by(s.target)).value_or("") != s.group)
      return;
    older.push_back(&other);
  });
  std::sort(older.begin(), older.end(), [](auto* a, auto* b) { return a->id < b->id; });
  for (JobRecord* other : older) {
    const bool running = JobState(other->state) == JobState::running;
    const RunnerRef nudge = cancel_unfinished(lock, other, std::nullopt, r.id, now);
    superseded->push_back(SupersededJob{other->id, running, nudge});
  }
}

// The kept job of `target` that was submitted with idempotency key `key`.
JobRecord* FileStore::find_by_key(JobTable::Lock& lock, std::string_view target,
                                  std::string_view key) {
  JobRecord* found = nullptr;
  lock.for_each([&](JobRecord& r) {
    if (!found && r.idempotency_key_size == key.size() && record_target(r) == target &&
        memcmp(r.idempotency_key, key.data(), key.size()) == 0)
      found = &r;
  });
  return found;
}

Status FileStore::finish(uint64_t id, const RunnerRef& runner, const Outcome& outcome,
                         const RunnerReport& last, const Instant& now, Micros timeout) {
  if (!is_final(outcome.state)) return Status::error("not a final state");
  FileStoreLock lock(table_, timeout > 0 ? timeout : lock_timeout_);
  if (!lock.held()) return lock.busy();
  JobRecord* r = lock.find(id);
  if (!record_run_by(r, runner)) return job_not_owned(id);
  bool visible = false, quiet = false;
  apply_report(r, last, &visible, &quiet);
  apply_details(r, last, &visible);
  r->has_exit_code = outcome.exit_code.has_value();
  r->exit_code = outcome.exit_code.value_or(0);
  r->has_signal = outcome.signal.has_value();
  r->signal = outcome.signal.value_or(0);
  lock.finish(r, outcome.state, now);
  return Status::ok();
}

Status FileStore::launch_failed(uint64_t id, const Instant& now) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  JobRecord* r = lock.find(id);
  if (!record_run_by(r, RunnerRef{})) return job_not_owned(id);
  lock.finish(r, JobState::failed, now);
  return Status::ok();
}

Status FileStore::unstart(uint64_t id) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  JobRecord* r = lock.find(id);
  if (!record_run_by(r, RunnerRef{})) return job_not_owned(id);
  r->state = uint8_t(JobState::queued);
  r->started_at = 0;
  lock.commit(r);
  return Status::ok();
}

Status FileStore::detect_lost(const Instant& now, Micros quiet_since, std::vector<LostJob>* ended) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  lock.for_each_unfinished([&](JobRecord& r) {
    if (r.state != uint8_t(JobState::running) || runner_alive(r, now.mono, quiet_since)) return;
    lock.finish(&r, JobState::lost, now);
    ended->push_back(LostJob{job_of(r), RunnerRef{r.runner_pid, r.runner_start_ticks}});
  });
  return Status::ok();
}

Status FileStore::expire(uint64_t id, const Instant& now) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  JobRecord* r = lock.find(id);
  if (!in_state(r, JobState::waiting) && !in_state(r, JobState::queued))
    return job_not_found(id, "is neither waiting nor queued");
  lock.finish(r, JobState::expired, now);
  return Status::ok();
}

Status FileStore::trim_history(uint32_t keep, std::vector<uint64_t>* dropped) {
  std::vector<uint64_t> ids;
  {
    FileStoreLock lock(table_, lock_timeout_);
    if (!lock.held()) return lock.busy();
    std::vector<JobRecord*> finished;
    lock.for_each([&](JobRecord& r) {
      if (is_final(JobState(r.state))) finished.push_back(&r);
    });
    if (finished.size() > keep) {
      std::sort(finished.begin(), finished.end(), [](auto* a, auto* b) { return a->id > b->id; });
      for (size_t i = keep; i < finished.size(); ++i) {
        ids.push_back(finished[i]->id);
        lock.release(finished[i]);
      }
    }
  }
  for (uint64_t id : ids) table_.drop_log(id);
  if (dropped) dropped->insert(dropped->end(), ids.begin(), ids.end());
  return Status::ok();
}

Status FileStore::claim_notifications(const Instant& now, size_t max,
                                      std::vector<NotificationClaim>* out, Micros* next_due) {
  out->clear();
  *next_due = 0;
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  struct Due {
    Micros at;
    JobRecord* record;
    uint32_t index;
  };
  std::vector<Due> due;
  Micros next = 0;
  lock.for_each([&](JobRecord& r) {
    if (r.notification_count == 0 || !is_final(JobState(r.state))) return;
    for (uint32_t i = 0; i < std::min<uint32_t>(r.notification_count, kNotificationsMax); ++i) {
      const NotificationSlot& slot = r.notifications[i];
      if (slot.state != uint8_t(DeliveryState::pending) || slot.due_mono == 0) continue;
      if (slot.due_mono <= now.mono)
        due.push_back(Due{slot.due_mono, &r, i});
      else if (next == 0 || slot.due_mono < next)
        next = slot.due_mono;
    }
  });
  std::sort(due.begin(), due.end(), [](const Due& a, const Due& b) { return a.at < b.at; });
  for (size_t k = 0; k < due.size(); ++k) {
    NotificationSlot& slot = due[k].record->notifications[due[k].index];
    if (k >= max) {
      next = next == 0 ? slot.due_mono : std::min(next, slot.due_mono);
      continue;
    }
    // Held for this attempt: due again only once the hold has passed.
    slot.due_mono = now.mono + kNotificationClaimHold;
    slot.due_at = now.wall + kNotificationClaimHold;
    if (next == 0 || slot.due_mono < next) next = slot.due_mono;
    lock.commit_quiet(due[k].record);
    out->push_back(NotificationClaim{job_of(*due[k].record), due[k].index, slot.attempts + 1u});
  }
  *next_due = next;
  return Status::ok();
}

Status FileStore::record_notification(const NotificationClaim& claim, std::optional<int> status,
                                      const NotificationDecision& decision, const Instant& now) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  JobRecord* r = lock.find(claim.job.id);
  if (!r) return job_not_found(claim.job.id, "does not exist");
  NotificationSlot* slot =
      claim.index < std::min<uint32_t>(r->notification_count, kNotificationsMax)
          ? &r->notifications[claim.index]
          : nullptr;
  if (!slot || slot->state != uint8_t(DeliveryState::pending) ||
      uint32_t(slot->attempts) + 1 != claim.attempt)
    return Status::error("notification " + delivery_id(claim.job.id, claim.index) +
                             " is no longer held by this attempt",
                         kNotOwner);
  slot->state = uint8_t(decision.state);
  slot->attempts = uint8_t(std::min<uint32_t>(claim.attempt, 255));
  slot->status = status && *status > 0 && *status <= 999 ? uint16_t(*status) : 0;
  const bool again = decision.state == NotificationState::pending;
  slot->due_mono = again ? decision.retry_at : 0;
  slot->due_at = again ? now.wall_of(decision.retry_at) : 0;
  lock.commit(r);
  return Status::ok();
}

Status FileStore::get(uint64_t id, Job* out) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  const JobRecord* r = lock.find(id);
  if (!r) return job_not_found(id, "does not exist");
  *out = job_of(*r);
  return Status::ok();
}

Status FileStore::list(const JobsQuery& q, const TargetFilter& readable, std::vector<Job>* out) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  out->clear();
  if (q.limit == 0) return Status::ok();
  lock.for_each_newest_first(q.before, [&](JobRecord& r) {
    if ((!q.target || *q.target == record_target(r)) &&
        (!q.state || uint8_t(*q.state) == r.state) && (!readable || readable(record_target(r))))
      out->push_back(job_of(r));
    return out->size() < q.limit;
  });
  return Status::ok();
}

Status FileStore::newest_per_target(const std::vector<std::string>& targets,
                                    std::vector<Job>* out) {
  const std::set<std::string, std::less<>> wanted(targets.begin(), targets.end());
  std::map<std::string, Job, std::less<>> latest;
  {
    FileStoreLock lock(table_, lock_timeout_);
    if (!lock.held()) return lock.busy();
    if (wanted.empty()) return Status::ok();
    lock.for_each_newest_first(0, [&](JobRecord& r) {
      const std::string_view target = record_target(r);
      if (wanted.count(target) && !latest.count(target))
        latest.emplace(std::string(target), job_of(r));
      return latest.size() < wanted.size();
    });
  }
  out->clear();
  for (auto& [name, job] : latest) out->push_back(std::move(job));
  return Status::ok();
}

Status FileStore::overview(const HistoryPage& page, const TargetFilter& readable, Overview* out) {
  // A min-heap of ids: its top is the lowest of the page.rows + 1 kept (one
  // more than shown tells whether there is an older page).
  std::vector<uint64_t> history;
  std::map<std::string, uint64_t, std::less<>> newest;  // by target
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  *out = Overview{};
  out->seen = table_.change_seq();
  // The other finished jobs (up to DeployHistory of them) are looked at,
  // not copied.
  lock.for_each([&](JobRecord& rec) {
    if (!is_valid_state(rec.state)) return;
    const std::string_view target = record_target(rec);
    if (readable && !readable(target)) return;
    if (!is_final(JobState(rec.state))) {
      out->jobs.push_back(job_of(rec));
      return;
    }
    if ((!page.target || *page.target == target) &&
        (!page.state || uint8_t(*page.state) == rec.state) &&
        (!page.before || rec.id < page.before)) {
      history.push_back(rec.id);
      std::push_heap(history.begin(), history.end(), std::greater<>());
      if (history.size() > page.rows + 1) {
        std::pop_heap(history.begin(), history.end(), std::greater<>());
        history.pop_back();
      }
    }
    auto it = newest.find(target);
    if (it == newest.end())
      newest.emplace(target, rec.id);
    else
      it->second = std::max(it->second, rec.id);
  });
  if (history.size() > page.rows) {
    out->older = true;
    std::pop_heap(history.begin(), history.end(), std::greater<>());
    history.pop_back();
  }
  out->history.insert(history.begin(), history.end());
  std::set<uint64_t> ids = out->history;
  for (const auto& [target, id] : newest) ids.insert(id);
  for (uint64_t id : ids)
    if (JobRecord* rec = lock.find(id)) out->jobs.push_back(job_of(*rec));
  return Status::ok();
}

Status FileStore::unfinished(const GroupByOf& group_by, std::vector<PendingJob>* jobs) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  *jobs = pending_jobs(lock, group_by);
  return Status::ok();
}

Status FileStore::changes_since(uint64_t since, std::vector<Job>* changed, uint64_t* now) {
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  *now = lock.header().change_seq;
  changed->clear();
  auto take = [&](JobRecord& r) {
    if (r.change_seq > since) changed->push_back(job_of(r));
  };
  std::vector<uint64_t> ids;
  if (lock.changed_since(since, &ids)) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (uint64_t id : ids)
      if (JobRecord* r = lock.find(id)) take(*r);
  } else {
    lock.for_each(take);
  }
  std::sort(changed->begin(), changed->end(),
            [](const Job& a, const Job& b) { return a.change_seq < b.change_seq; });
  return Status::ok();
}

Status FileStore::counters(StoreCounters* out) {
  StoreCounters c;
  FileStoreLock lock(table_, lock_timeout_);
  if (!lock.held()) return lock.busy();
  const TableHeader& h = lock.header();
  c.counters = h.counters;
  c.ignored = h.submissions_ignored;
  for (size_t i = 0; i < kMaxTargetStats; ++i) {
    if (h.targets[i].target[0] == '\0') continue;
    TargetCounters t;
    t.stats = h.targets[i];
    // The header is anyone's to write: the copy's name ends, whatever it held.
    t.stats.target[sizeof t.stats.target - 1] = '\0';
    t.target = t.stats.target;
    t.last_success = h.target_last_success[i];
    c.targets.push_back(std::move(t));
  }
  lock.for_each_unfinished([&](JobRecord& r) { c.unfinished.push_back(job_of(r)); });
  *out = std::move(c);
  return Status::ok();
}

}  // namespace deploy
