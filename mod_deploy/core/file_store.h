// The `file` engine of the job store (job_store.h): the table file of one
// host (job_table.h). Each operation is one hold of the table lock; a lock
// not had within its timeout is kStoreBusy.
#pragma once

#include "job_store.h"
#include "job_table.h"

namespace deploy {

class FileStore : public JobStore {
 public:
  // `table` outlives the store; `lock_timeout` bounds every wait for it.
  // `node` (DeployNodeName) is every started job's node: the table file
  // holds one node's jobs, so the name is not stored.
  explicit FileStore(JobTable& table, std::string node = {}, Micros lock_timeout = kLockTimeout)
      : table_(table), node_(std::move(node)), lock_timeout_(lock_timeout) {}

  Status submit(const NewSubmission& s, const Instant& now, SubmitResult* out) override;
  Status withdraw(uint64_t id) override;
  Status count_rejection(Rejection why) override;
  Status count_ignored() override;
  Status schedule_pass(
      const GroupByOf& group_by,
      const std::function<ScheduleDecision(const std::vector<PendingJob>&)>& decide,
      const Instant& now, ScheduleDecision* decision, std::vector<Job>* started,
      uint64_t* seen) override;
  Status ready(uint64_t id, const Instant& now) override;
  Status start(uint64_t id, const Instant& now, Job* out) override;
  Status runner_recorded(uint64_t id, const RunnerRef& runner, int32_t job_pid, Micros timeout,
                         bool* cancel_requested) override;
  Status record_progress(uint64_t id, const RunnerRef& runner, const RunnerReport& report,
                         Micros timeout, bool* cancel_requested) override;
  Status cancel(uint64_t id, const std::optional<std::string>& by, const Instant& now, Job* out,
                RunnerRef* nudge) override;
  Status finish(uint64_t id, const RunnerRef& runner, const Outcome& outcome,
                const RunnerReport& last, const Instant& now, Micros timeout) override;
  Status launch_failed(uint64_t id, const Instant& now) override;
  Status unstart(uint64_t id) override;
  Status detect_lost(const Instant& now, Micros quiet_since, std::vector<LostJob>* ended) override;
  Status expire(uint64_t id, const Instant& now) override;
  Status trim_history(uint32_t keep, std::vector<uint64_t>* dropped) override;

  Status claim_notifications(const Instant& now, size_t max, std::vector<NotificationClaim>* out,
                             Micros* next_due) override;
  Status record_notification(const NotificationClaim& claim, std::optional<int> status,
                             const NotificationDecision& decision, const Instant& now) override;

  Status open_output(uint64_t id, const RunnerRef& runner,
                     std::unique_ptr<JobOutput>* out) override;
  Status read_output(uint64_t id, uint64_t offset, size_t max, std::string* out) override;
  Status output_size(uint64_t id, uint64_t* size) override;

  Status get(uint64_t id, Job* out) override;
  Status list(const JobsQuery& query, const TargetFilter& readable, std::vector<Job>* out) override;
  Status newest_per_target(const std::vector<std::string>& targets, std::vector<Job>* out) override;
  Status overview(const HistoryPage& page, const TargetFilter& readable, Overview* out) override;
  Status unfinished(const GroupByOf& group_by, std::vector<PendingJob>* jobs) override;
  Status changes_since(uint64_t since, std::vector<Job>* changed, uint64_t* now) override;
  Status counters(StoreCounters* out) override;

  uint64_t change_seq() override { return table_.change_seq(); }
  bool wait_for_change(uint64_t seen, Micros timeout) override {
    return table_.wait_for_change(seen, timeout);
  }
  uint64_t output_seq() override { return table_.output_seq(); }
  bool wait_for_output(uint64_t seen, Micros timeout) override {
    return table_.wait_for_output(seen, timeout);
  }
  // A pass reads shared memory: a quarter of a millisecond apart.
  Micros min_decision_interval() const override { return 250; }
  Status make_durable() override { return table_.make_durable(); }

  // A running job's runner is gone: its pid ended or names another process,
  // or it recorded none for longer than this since the job started (or
  // since the store was last busy): a runner records itself within moments
  // of its start; one that has not after this long never will (its
  // scheduler died before spawning it).
  static constexpr Micros kRunnerSilenceLimit = 5000000;

 private:
  // The record as a Job, with its node once it started.
  Job job_of(const JobRecord& r) const;
  RunnerRef cancel_unfinished(JobTable::Lock& lock, JobRecord* r,
                              const std::optional<std::string>& by, uint64_t superseded_by,
                              const Instant& now);
  void supersede_older(JobTable::Lock& lock, const JobRecord& r, const NewSubmission& s,
                       const Instant& now, std::vector<SupersededJob>* superseded);
  JobRecord* find_by_key(JobTable::Lock& lock, std::string_view target, std::string_view key);

  void apply_details(JobRecord* r, const RunnerReport& report, bool* visible);

  JobTable& table_;
  std::string node_;
  Micros lock_timeout_;
};

}  // namespace deploy
