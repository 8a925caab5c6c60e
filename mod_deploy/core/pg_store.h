// The `postgresql` engine of the job store (job_store.h): the jobs of
// several httpd nodes in one database (issue 15; docs/cluster.md).
//
// Connections: one per process for the operations, guarded by a mutex (the
// threads of an httpd child take turns; each operation is one short
// transaction, its statements pipelined and prepared, or one statement of
// its own for a read that one snapshot answers), and one more for LISTEN, used only by the waits:
// one waiting thread polls it, the others sleep until it hears a notification (or for the
// fallback's second). Both connect lazily, on the first call, and again on the call after a failure
// (so a store made before a fork connects in each process that uses it, if it made no call before):
// a server that cannot be reached is kStoreUnavailable, never an exception, and the CONNINFO is
// never part of a message (it may hold a password).
//
// Every transition is one transaction that first takes one transaction-level
// advisory lock (kTransitionLock): transitions of the whole cluster are
// serialized, so decide_submission and the scheduler's decision read
// exactly the unfinished jobs they change (coalescing, DeployQueueLimit and
// DeployConcurrency are exact across nodes), and the change number of
// deploy_meta, bumped in each, orders the changes as they committed. A wait
// on that lock, like every statement, is bounded (kStatementTimeout): past
// it the operation is kStoreBusy. The submissions the threads of one process
// make while another is being decided are decided together next, in their
// order, in one such transaction (group commit: submit_together).
//
// One kind of transition holds that lock shared instead: the join of a
// waiting job (try_join). A join changes only the job it joins (its
// parameters, requests and not_before), never a state, so joins exclude
// each other from nothing that they decide on; every other transition holds
// the lock exclusively and excludes them all. A burst of triggers (a
// webhook storm) is decided on every node and child at once, each join
// exact: what its read of the waiting jobs decided holds until it commits.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "job_store.h"

namespace deploy {

class PgConnection;

class PgStore : public JobStore {
 public:
  // `conninfo`: a libpq connection string (DeployStore); `node`: this node's
  // name (DeployNodeName), which the jobs it runs carry; `lease`: how long a
  // running job's lease lasts without a heartbeat (DeployLease), measured
  // on the database's clock.
  PgStore(std::string conninfo, std::string node, Micros lease);
  ~PgStore() override;

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

  // The writer keeps what it is given in memory and writes it to
  // deploy_output in chunks at flush() and close(), fenced on the runner:
  // while the database cannot be reached it holds up to kOutputBuffer bytes
  // (later output is lost and counted, and the last line says so). It uses
  // the store's connection: the store outlives its writers.
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

  uint64_t change_seq() override;
  bool wait_for_change(uint64_t seen, Micros timeout) override;
  uint64_t output_seq() override;
  bool wait_for_output(uint64_t seen, Micros timeout) override;
  // A pass reads the unfinished jobs from the database: a join storm would
  // make one read per join.
  Micros min_decision_interval() const override { return 5000; }
  // Every transaction commits with synchronous_commit on: nothing to add.
  Status make_durable() override { return Status::ok(); }

  // The schema version this build creates and reads (deploy_schema_version).
  static constexpr int kSchemaVersion = 2;
  // The bound of every statement, and of the wait for the transition lock.
  static constexpr int kStatementTimeoutMs = 5000;
  // Output held by a writer while the database cannot be reached.
  static constexpr size_t kOutputBuffer = size_t(16) << 20;
  // The largest row of deploy_output.
  static constexpr size_t kOutputChunk = size_t(1) << 20;
  // The NOTIFY channel of every transition.
  static constexpr char kChannel[] = "deploy_changes";

 public:
  class Tx;  // of pg_store.cc

 private:
  class Output;
  // What transact() runs: one statement of its own (a read that one
  // snapshot answers: no BEGIN, no COMMIT), a read of several statements (a
  // REPEATABLE READ READ ONLY transaction), a transaction that writes, or
  // one that joins a waiting job (a write holding the transition lock
  // shared).
  enum class Kind { single, read, write, join };
  // One transaction: `write` ones hold the transition lock unless not a
  // `transition` (the output's, which lock the job's row). `timeout` (0:
  // kStatementTimeoutMs) bounds the wait for the connection, the lock and
  // each statement.
  template <class F>
  Status transact(Kind kind, F&& body, Micros timeout = 0, bool transition = true);
  Status connect_locked();
  // Group commit of the submissions of this process's threads (submit).
  struct Submission;
  void submit_together(const std::vector<Submission*>& batch);
  Status submit_one(const NewSubmission& s, const Instant& now, SubmitResult* out);
  Status try_join(const NewSubmission& s, const Instant& now, SubmitResult* out, bool* joined);
  Status cancel_unfinished(Tx& tx, uint64_t id, const std::optional<std::string>& by,
                           uint64_t superseded_by, const Instant& now, Job* out, RunnerRef* nudge);
  uint64_t read_seq(const char* column);
  bool wait_for(const char* column, uint64_t seen, Micros timeout);

  std::string conninfo_;
  std::string node_;
  Micros lease_;
  std::timed_mutex mutex_;  // guards conn_
  std::unique_ptr<PgConnection> conn_;
  std::mutex listen_mutex_;  // guards listener_, held by the thread that polls it
  std::unique_ptr<PgConnection> listener_;
  std::mutex submit_mutex_;  // guards submissions_ and submitting_
  std::condition_variable submitted_;
  std::vector<Submission*> submissions_;  // waiting to be decided, in their order
  bool submitting_ = false;               // a thread decides a batch now
  std::mutex wake_mutex_;                 // guards wakes_
  std::condition_variable wake_;
  uint64_t wakes_ = 0;  // notifications heard by the polling thread
};

}  // namespace deploy
