// The job store: every transition of a job and every read of the jobs, each
// one atomic, behind one interface with one engine per way of keeping them:
// `file`, the table file of one host (job_table.h), and later `postgresql`,
// the jobs of several nodes in one database (issue 15). The domain's state
// machine reads here, in one place, as mod_md keeps every change of its
// registry behind md_reg_*; docs/architecture.md ("Who changes a job") names
// the process that calls each operation.
//
// Errors are values. An operation that could not be done returns a Status
// that is not ok and leaves the store as it was; its code() says why, for
// the glue to answer: kStoreBusy (the file's lock could not be had in time:
// 503 busy), kStoreUnavailable (the database cannot be reached: 503
// store_unavailable), kStoreFull (no room for a job or its log: 503
// store_full), anything else 500 internal.
//
// Fencing: a transition of a running job names the runner it expects
// (RunnerRef). A job that was finished, or declared lost and so given up,
// is never written by its runner afterwards: such a write returns
// kNotOwner, and a job is finished once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "clock.h"
#include "job.h"
#include "job_counters.h"
#include "notification.h"
#include "route.h"
#include "scheduler.h"
#include "status.h"

namespace deploy {

constexpr char kStoreBusy[] = "busy";
constexpr char kStoreUnavailable[] = "store_unavailable";
constexpr char kStoreFull[] = "store_full";
constexpr char kNotOwner[] = "not_owner";    // a fenced write that lost its job
constexpr char kNotFound[] = "not_found";    // no such job, or not in the state asked
constexpr char kConflict[] = "conflict";     // the job has finished already
constexpr char kStoreDamaged[] = "damaged";  // the store cannot hand out ids: 500, see the log

// The errors of both engines: "job ID WHY" with kNotFound, and a fenced
// write of a runner that no longer runs job `id`, with kNotOwner.
Status job_not_found(uint64_t id, const char* why);
Status job_not_owned(uint64_t id);

// The parameter that groups a target's jobs (its DeployGroupBy), nullopt for
// a target without one: what turns a job into its scheduling facts.
using GroupByOf = std::function<std::optional<std::string>(std::string_view target)>;
// Whether a read may show the jobs of a target (the request's access).
using TargetFilter = std::function<bool(std::string_view target)>;

// DeploySupersede: which older jobs of its target and group a submission
// that creates a job cancels.
enum class Supersede : uint8_t { off, queued, running };

// What the handler has of a submission once it is validated.
struct NewSubmission {
  std::string target;
  std::string group;  // job_group of the params ("" without DeployGroupBy)
  Params params;
  std::optional<std::string> submitted_by;
  TargetPolicy policy;
  Limits limits;
  GroupByOf group_by;  // of every target, for the unfinished jobs the decision reads
  // Idempotency-Key (or DeployIdempotencyHeader): at most kIdempotencyKeyMax
  // bytes of printable ASCII, checked by the handler.
  std::optional<std::string> idempotency_key;
  Supersede supersede = Supersede::off;
  uint8_t notifications = 0;  // the target's DeployNotify URLs (at most kNotificationsMax)
};

// The runner that owns a running job, as the launcher recorded it.
struct RunnerRef {
  int32_t runner_pid = 0;
  uint64_t runner_start_ticks = 0;  // /proc/PID/stat starttime: a reused pid is another runner
};

// The runner of this host to signal: `recorded` when it recorded itself
// and its pid is still that process, else none (pid 0). A pid that was
// reused, or that the store's record names without the process's start
// time, is another process's.
RunnerRef runner_to_signal(const RunnerRef& recorded);

// A job a submission superseded: a waiting or queued one ended canceled at
// once; a running one has its cancel flag, and `nudge` names its runner to
// signal (pid 0: none to signal).
struct SupersededJob {
  uint64_t id = 0;
  bool was_running = false;
  RunnerRef nudge;
};

struct SubmitResult {
  SubmissionDecision::Kind kind = SubmissionDecision::Kind::new_job;
  Job job;  // the new job, the waiting one joined, or the duplicate's; empty when queue_full
  // The submission's idempotency key was used already for a job of the
  // target that is still kept: that job, and nothing was changed.
  bool duplicate = false;
  std::vector<SupersededJob> superseded;  // oldest first
  // Whether the answer must wait for make_durable (DeploySync). Not for a
  // join that changed no parameter of a job whose parameters are on stable
  // storage already: a power cut could cost it only its request count and
  // a later not_before, never what the job runs with.
  bool needs_flush = true;
};

// What a runner reports of its job besides its state, each field its latest:
// written by record_progress and, with what a busy store kept back, by finish.
struct RunnerReport {
  int32_t job_pid = 0;               // the job's process (and group); 0: unchanged
  int progress = -1;                 // 0..100; -1: unchanged
  std::optional<std::string> stage;  // nullopt: unchanged
  // The whole list of each (job_details.h), when it changed; nullopt: unchanged.
  std::optional<std::vector<Stage>> stages;
  std::optional<Outputs> outputs;
  uint64_t log_size = 0;        // the bytes of output kept so far (JobOutput::size)
  bool log_incomplete = false;  // some output was lost; once set, never unset
};

// The output of one job as its runner writes it, created by
// JobStore::open_output. One writer per job, used from one thread.
class JobOutput {
 public:
  virtual ~JobOutput();
  // Appends output as it is to be kept (masked already). Never fails the
  // job: output that cannot be kept (a full disk, the store gone) is lost
  // from that byte on and counted, incomplete() turns true, and the error
  // log says why, once.
  virtual void append(std::string_view data) = 0;
  // The bytes kept so far: the log size record_progress and finish report.
  virtual uint64_t size() const = 0;
  // Whether some output was lost (log_incomplete).
  virtual bool incomplete() const = 0;
  // Makes every byte appended so far readable by read_output, before the
  // runner reports the size (record_progress wakes the followers). The file
  // engine writes through: nothing to do.
  virtual Status flush() = 0;
  // The end of the output, once, before finish: flushes; when some was
  // lost, a last line says how much (in room kept for it from the start);
  // what was held ahead is released; size() is then the final log size.
  // append() after close() is lost; a writer destroyed unclosed keeps what
  // was flushed.
  virtual Status close() = 0;
};

// A job found lost, and the runner it had.
struct LostJob {
  Job job;
  RunnerRef runner;
};

// How a job ended, as its runner (or the scheduler) saw it.
struct Outcome {
  JobState state = JobState::failed;  // a final state
  std::optional<int> exit_code;
  std::optional<int> signal;
};

// A completion notification claimed for one attempt (claim_notifications).
struct NotificationClaim {
  Job job;               // as it is when claimed: the body sent
  uint32_t index = 0;    // of its URL, in its target's configuration order
  uint32_t attempt = 1;  // this attempt's number, from 1: the fence of record_notification
};

// The counters of ?auto and /metrics, read at one instant.
struct TargetCounters {
  std::string target;
  TargetStats stats;
  Micros last_success = 0;  // finished_at of its newest succeeded job; 0: none
};
struct StoreCounters {
  TableCounters counters;
  uint64_t ignored = 0;  // submissions a DeployFilter answered as ignored
  std::vector<TargetCounters> targets;
  std::vector<Job> unfinished;  // every waiting, queued and running job
};

// A page of the finished jobs, newest id first (the dashboard's history).
struct HistoryPage {
  size_t rows = 50;
  std::optional<std::string> target;  // only this target's
  std::optional<JobState> state;      // only jobs that ended so
  uint64_t before = 0;                // only ids below it; 0: the newest
};

struct Overview {
  std::vector<Job> jobs;       // unfinished, the page, each target's newest finished
  std::set<uint64_t> history;  // the ids of `jobs` on the page
  bool older = false;          // more matching finished jobs below the page's lowest id
  uint64_t seen = 0;           // the change number the jobs reflect
};

class JobStore {
 public:
  virtual ~JobStore();

  // --- Transitions. Each is atomic, and wakes wait_for_change() when it
  // changed what a client can see.

  // Applies the policy's decision (decide_submission over the unfinished
  // jobs of the whole store) to a submission: a new job (waiting or queued,
  // counted accepted), the waiting job of the same target and group joined
  // (its requests and quiet window, counted coalesced), or none when the
  // queue is full (counted rejected queue_full). kStoreFull when no room for
  // a log is left, kStoreDamaged when no id can be handed out. A job that
  // leaves the store to make room takes its log with it.
  //
  // In the same transaction: a submission whose idempotency key a kept job
  // of the target has already is that job's duplicate, and changes nothing;
  // a new job supersedes (s.supersede) the older unfinished jobs of its
  // target and group, with the new id as their superseded_by: waiting and
  // queued ones end canceled, running ones (Supersede::running) get their
  // cancel flag, as cancel() does.
  virtual Status submit(const NewSubmission& s, const Instant& now, SubmitResult* out) = 0;
  // Takes back a new job the handler could not answer for (the client gone
  // before the 202): the job and its count of accepted leave the store. A
  // job that is no longer waiting or queued stays.
  virtual Status withdraw(uint64_t id) = 0;
  // Counts a submission refused before the store was asked (bad request,
  // bad signature…), or ignored by a DeployFilter.
  virtual Status count_rejection(Rejection why) = 0;
  virtual Status count_ignored() = 0;

  // The scheduler's pass, as one transaction: reads the unfinished jobs
  // (`unfinished`), lets `decide` (schedule() with the policies) choose, and
  // applies its choice: expired jobs end expired, ready ones become queued,
  // the ones to start are claimed as `start` does and returned in *started,
  // oldest first. A job changed meanwhile by another process is skipped as
  // the single operations below would refuse it. *seen: the change number
  // at the end of the pass, so that a later change wakes the next one.
  virtual Status schedule_pass(
      const GroupByOf& group_by,
      const std::function<ScheduleDecision(const std::vector<PendingJob>&)>& decide,
      const Instant& now, ScheduleDecision* decision, std::vector<Job>* started,
      uint64_t* seen) = 0;
  // A waiting job whose quiet window ended becomes queued. kNotFound when it
  // is not waiting any more.
  virtual Status ready(uint64_t id, const Instant& now) = 0;
  // Claims a queued job for a runner about to be launched: it becomes
  // running, started now. kNotFound when it is not queued any more (canceled
  // meanwhile); then nothing is launched.
  virtual Status start(uint64_t id, const Instant& now, Job* out) = 0;
  // The runner's operations (runner_recorded, record_progress, finish) each
  // wait at most `timeout` for the store (the file's lock, the database),
  // kStoreBusy after it and nothing done: the runner retries; 0 is the
  // store's own bound.
  //
  // The launcher's runner took the job: its pid and start time fence every
  // later write of that runner; `job_pid` when the job runs already (0:
  // none yet). *cancel_requested (when not null): whether a client asked to
  // cancel meanwhile. Fails kNotOwner when the job is no longer running
  // (canceled or lost before the runner began).
  virtual Status runner_recorded(uint64_t id, const RunnerRef& runner, int32_t job_pid,
                                 Micros timeout, bool* cancel_requested) = 0;
  // The runner's report (RunnerReport: job pid, progress, stage, stages,
  // outputs, log size, lost output); also the heartbeat that renews a lease (an engine with
  // leases). An unchanged value is no change. Visible changes (progress,
  // stage, stages, outputs, log_incomplete) wake the streams; a log size or pid alone wakes
  // only the followers of output (wait_for_output). *cancel_requested (when
  // not null) says whether a client asked to cancel (cancel): the
  // runner's check. kNotOwner when the runner lost the job.
  virtual Status record_progress(uint64_t id, const RunnerRef& runner, const RunnerReport& report,
                                 Micros timeout, bool* cancel_requested) = 0;
  // A client's cancel, in one step whatever the job's state: a waiting or
  // queued job ends canceled at once (counted); a running one gets the flag
  // its runner reads (record_progress), and *nudge names the runner to
  // signal when it is alive and recorded (else pid 0); a finished one is
  // left as it is, kConflict. `by`, the authenticated user of the request,
  // becomes the job's canceled_by (the first cancel's is kept). *out: the
  // job after the change.
  virtual Status cancel(uint64_t id, const std::optional<std::string>& by, const Instant& now,
                        Job* out, RunnerRef* nudge) = 0;
  // Records the end of a running job, once, by the runner that owns it:
  // final state, exit code or signal, finished now, the counters (with the
  // duration on the monotonic clock), and in the same transaction `last`,
  // the runner's report a busy store kept from record_progress (its log size
  // is the final one). kNotOwner when the job is not running, belongs to
  // another runner, or left the store: a job is never finished twice.
  virtual Status finish(uint64_t id, const RunnerRef& runner, const Outcome& outcome,
                        const RunnerReport& last, const Instant& now, Micros timeout) = 0;
  // The launcher could not start the job's runner: the job ends failed,
  // fenced on its state and on no runner recorded yet.
  virtual Status launch_failed(uint64_t id, const Instant& now) = 0;
  // The job could not be handed to a launcher at all (none can be started
  // in this process): it goes back to the queue, fenced as launch_failed.
  virtual Status unstart(uint64_t id) = 0;
  // Ends lost every running job whose runner is gone: for the file engine
  // its pid ended or was reused (start time), or it recorded none for a
  // while since the job started or since `quiet_since` (the store was
  // busy); for an engine with leases, the lease expired. Each is fenced on
  // the runner seen, so a finish that came first is kept. The jobs ended,
  // with the runner each had, in *ended.
  virtual Status detect_lost(const Instant& now, Micros quiet_since,
                             std::vector<LostJob>* ended) = 0;
  // A waiting or queued job past its queue timeout, or of a target no longer
  // configured, ends expired.
  virtual Status expire(uint64_t id, const Instant& now) = 0;
  // Drops finished jobs beyond `keep` (DeployHistory), oldest first; their
  // ids in *dropped, for their logs to be dropped after.
  virtual Status trim_history(uint32_t keep, std::vector<uint64_t>* dropped) = 0;

  // --- Completion notifications (notification.h), for the deliverer. A
  // job's pending notifications become due when it reaches its final state,
  // whichever transition ends it (finish, cancel, expire, schedule_pass,
  // detect_lost, launch_failed). A notification leaves the store with its
  // job.

  // Claims at most `max` due notifications, oldest due first, each for one
  // attempt: none is claimed again, by any process or node, before
  // kNotificationClaimHold has passed, unless its attempt was recorded.
  // *next_due: when the earliest notification not claimed now is due
  // (monotonic; 0: none is pending in a finished job).
  virtual Status claim_notifications(const Instant& now, size_t max,
                                     std::vector<NotificationClaim>* out, Micros* next_due) = 0;
  // Records the end of a claimed attempt: its status (none: no answer), the
  // attempts made, and `decision` (after_attempt): delivered, failed, or
  // pending and due again at decision.retry_at. Fenced on the attempt:
  // kNotOwner when it was recorded already (another deliverer claimed it
  // after the hold) or the notification is not pending; kNotFound when the
  // job left the store.
  virtual Status record_notification(const NotificationClaim& claim, std::optional<int> status,
                                     const NotificationDecision& decision, const Instant& now) = 0;

  // --- Output. A job's output is kept by the store with the job, and goes
  // when the job leaves it (withdraw, submit's room, trim_history).

  // The writer of job `id`'s output, for its runner (or for the launcher,
  // with RunnerRef{}, to say why no runner started): appends after what the
  // job has already. The file engine: the job's log file in the state
  // directory, with room for the last line allocated ahead (fallocate);
  // an error here is the runner's "cannot open the log".
  virtual Status open_output(uint64_t id, const RunnerRef& runner,
                             std::unique_ptr<JobOutput>* out) = 0;
  // At most `max` bytes of job `id`'s output from byte `offset` into *out
  // (replaced): fewer at the end of what was flushed, none past it.
  // kNotFound when the store keeps no output for it (no such job, or it
  // has written none yet).
  virtual Status read_output(uint64_t id, uint64_t offset, size_t max, std::string* out) = 0;
  // The bytes of job `id`'s output read_output can read now (it only grows
  // while the job runs). kNotFound as read_output.
  virtual Status output_size(uint64_t id, uint64_t* size) = 0;

  // --- Reads: each a consistent snapshot.

  // One job; kNotFound when the store has none of that id.
  virtual Status get(uint64_t id, Job* out) = 0;
  // GET BASE/jobs: newest first, with its filters (target, state, limit,
  // before an id), of the targets `readable` allows.
  virtual Status list(const JobsQuery& query, const TargetFilter& readable,
                      std::vector<Job>* out) = 0;
  // The newest job of each of `targets` that has one (BASE/targets'
  // latest_job, the dashboard).
  virtual Status newest_per_target(const std::vector<std::string>& targets,
                                   std::vector<Job>* out) = 0;
  // The dashboard's page at one instant, of the targets `readable` allows:
  // every unfinished job, a page of the history (the `page.rows` finished
  // jobs of highest id that match `page`), and the newest finished job of
  // each target, in no particular order.
  virtual Status overview(const HistoryPage& page, const TargetFilter& readable, Overview* out) = 0;
  // The scheduling facts of every unfinished job, for the scheduler's
  // decision: the one place PendingJob is built.
  virtual Status unfinished(const GroupByOf& group_by, std::vector<PendingJob>* jobs) = 0;
  // Jobs changed after change number `since`, and the highest change number
  // now (the event streams' ids). Jobs that left the store are absent.
  virtual Status changes_since(uint64_t since, std::vector<Job>* changed, uint64_t* now) = 0;
  virtual Status counters(StoreCounters* out) = 0;

  // --- Waits, without polling where the engine can: futexes (file),
  // LISTEN/NOTIFY with a poll of at most a second as fallback (postgresql).

  // The change number now, lock-free where the engine can.
  virtual uint64_t change_seq() = 0;
  // Sleeps until the change number differs from `seen` or `timeout` passed
  // (monotonic); true when it changed.
  virtual bool wait_for_change(uint64_t seen, Micros timeout) = 0;
  // The same for changes and new job output together.
  virtual uint64_t output_seq() = 0;
  virtual bool wait_for_output(uint64_t seen, Micros timeout) = 0;
  // How far apart the scheduler's passes are at least, so that a burst of
  // changes (submissions, joins) is decided in one pass rather than one
  // pass each: a pass costs a read of every unfinished job.
  virtual Micros min_decision_interval() const = 0;

  // --- Durability. Returns once the changes this process made so far are
  // on stable storage (DeploySync), shared between concurrent callers.
  virtual Status make_durable() = 0;
};

}  // namespace deploy
