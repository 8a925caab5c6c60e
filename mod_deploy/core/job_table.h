// The job table: every job the server knows, in a file of fixed-size records
// that httpd's children, the scheduler process and the runners all map
// MAP_SHARED. Because it is a file (DeployStateDir/jobs.table), it is shared
// memory and journal at once: a change is visible to every process at once,
// survives the crash of any of them (the page cache keeps it) and every
// restart of httpd; only a power loss can cost the last seconds of changes.
//
// Record of job `id` lives in slot `id % capacity`. Ids only grow; an id whose
// slot still holds an unfinished job is skipped, so lookups are O(1).
//
// Concurrency: every access to records happens under JobTable::Lock, which is
// a process-local mutex plus flock() on DeployStateDir/lock (the kernel drops
// it when a holder dies, so a killed process never wedges the others). Taking
// it waits a bounded time: a process that holds the lock for ever (any
// process of httpd's user can flock the file) makes requests busy, never
// stuck. Waiting for a change uses a futex on the shared header: no polling.
//
// Trust: every process of httpd's user can write the file. Each JobTable
// validates the header when it maps the file and keeps what it validated
// (the capacity, the size of the mapping); afterwards the header's numbers
// (next_id, change_seq, the hints, the recent-change ring) are read as
// untrusted input: bounded before use, never an index or divisor as they
// are. A record that does not validate reads as absent.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clock.h"
#include "job.h"
#include "job_counters.h"
#include "job_record.h"
#include "scheduler.h"
#include "status.h"

namespace deploy {

constexpr size_t kHeaderSize = 65536;

// The longest a request waits for the table lock before it is answered busy.
constexpr Micros kLockTimeout = 5000000;
// Highest job id handed out: ids stay exact in JSON numbers, and a damaged
// next_id near UINT64_MAX can never wrap to 0 (a free slot).
constexpr uint64_t kMaxJobId = (uint64_t(1) << 53) - 1;

constexpr size_t kRecentChanges = 1024;
struct RecentChange {
  uint64_t change_seq;
  uint64_t id;
};

struct TableHeader {
  char magic[8];
  uint32_t version;
  uint32_t record_size;
  uint32_t capacity;
  uint32_t superseded;  // set when a resized file replaced this one
  uint64_t next_id;
  uint64_t change_seq;         // grows at every change of any record a client can see
  uint32_t wake_word;          // futex word, bumped after every such change
  uint32_t output_wake_word;   // futex word, bumped after those and after new job output
  uint64_t output_seq;         // grows at every change and every new job output
  uint64_t oldest_unfinished;  // a hint: every job below this id has finished
  char reserved1[40];
  int64_t created_at;
  TableCounters counters;
  TargetStats targets[kMaxTargetStats];
  // The latest record changes, by change_seq: lets event streams find what
  // changed without reading every record.
  RecentChange recent[kRecentChanges];
  // finished_at of each target's newest succeeded job, indexed as
  // targets[]; 0: none yet (and in a file written before this field).
  // Kept here, not read from the records, so that it survives the trimming
  // of the history.
  int64_t target_last_success[kMaxTargetStats];
  // The boot the records' *_mono times belong to (clock.h): a start-up in
  // another boot rebases them. Version 2.
  char boot_id[40];
  // Durability (DeploySync): a flush is an msync of the whole file. A
  // process that changed a record reads sync_started and waits for a flush
  // of a later generation: that one began after its change. sync_done only
  // lets a process skip a flush another one has done for it.
  uint64_t sync_started;    // generations of flushes begun
  uint64_t sync_done;       // generation of the latest flush completed
  uint32_t sync_off;        // 1: DeploySync off, the page cache only
  uint32_t sync_wake_word;  // futex word, bumped after every flush
  // Submissions a DeployFilter answered as ignored; 0 in an older file.
  uint64_t submissions_ignored;
  // Every change up to this change_seq is on stable storage: read before a
  // flush began, set once it succeeded. 0 (nothing known) in an older file.
  uint64_t durable_seq;
};
static_assert(sizeof(TableHeader) <= kHeaderSize);

// The pid of a process holding a lock on `path` (from /proc/locks), 0 when
// none can be found.
int lock_holder_pid(const std::string& path);

class JobTable {
 public:
  // Start-up (httpd parent, before any child exists): creates the state files
  // if missing, drops records that fail validation (a warning each), and
  // rewrites the file when `capacity` changed, keeping the newest jobs.
  // Files are made owned by uid/gid when those are not -1.
  static Status open_for_startup(const std::string& state_dir, uint32_t capacity, int uid, int gid,
                                 std::unique_ptr<JobTable>* out,
                                 std::vector<std::string>* warnings);
  // Any other process: maps the table as it is.
  static Status attach(const std::string& state_dir, std::unique_ptr<JobTable>* out);

  ~JobTable();
  JobTable(const JobTable&) = delete;
  JobTable& operator=(const JobTable&) = delete;

  // After fork(): a child must not share the parent's lock descriptor
  // (flock belongs to the open file description).
  Status reopen_lock();
  // The same in a child whose descriptors were closed or reused since the
  // fork: the old number is forgotten, not closed.
  Status open_lock_after_fork() { return open_own_descriptors(false); }

  const std::string& state_dir() const { return state_dir_; }
  std::string log_path(uint64_t id) const;

  // Logs are recycled, not deleted: a job that leaves the table leaves its
  // log emptied as the spare of its slot (logs/.spare-SLOT), and the next job
  // of that slot renames the spare to its own log. Creating and deleting a
  // file per job made ext4 allocate an inode per job, at a cost that grew
  // with the number of inodes freed in the last minutes (docs/performance.md).
  //
  // The log of `id`, opened for appending (O_CLOEXEC): its slot's spare, or
  // a new file. -1 with errno when it cannot be opened.
  int open_log(uint64_t id) const;
  // Empties the log of `id`, which no record holds any more, and keeps it as
  // its slot's spare (replacing an older spare). No log: nothing happens.
  void drop_log(uint64_t id) const;

  // Holds the table. Records may be read and written only while a Lock is
  // held(). Destroying a Lock after commit() wakes every waiter.
  class Lock {
   public:
    // Waits at most `timeout` (a monotonic duration) for the other threads
    // of this process and for the other processes.
    explicit Lock(JobTable& table, Micros timeout = kLockTimeout);
    ~Lock();
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

    // False when the table could not be had in time; status() says why
    // (and which process holds it, when that can be found). Nothing else
    // may be called then.
    bool held() const { return status_.is_ok(); }
    const Status& status() const { return status_; }

    // The shared header: its numbers are untrusted (see the top).
    TableHeader& header();
    // The capacity validated when the file was mapped.
    uint32_t capacity();
    // The record of `id`, nullptr when there is none or it does not validate.
    JobRecord* find(uint64_t id);
    // Every record in use, in no particular order.
    void for_each(const std::function<void(JobRecord&)>& fn);
    // Every unfinished record, in no particular order; usually reads only
    // the recent ids, not the whole table.
    void for_each_unfinished(const std::function<void(JobRecord&)>& fn);
    // Jobs with an id below `before` (0: every job), newest first, until
    // `fn` returns false. Reads only as many records as it visits, but for
    // the oldest: unfinished jobs that kept their slot while ids went a whole
    // capacity further, found by reading every record once the newer ones
    // are exhausted.
    void for_each_newest_first(uint64_t before, const std::function<bool(JobRecord&)>& fn);
    // Ids of the records changed after change `since` (maybe some twice).
    // False when the recent changes no longer reach back that far: then
    // read every record.
    bool changed_since(uint64_t since, std::vector<uint64_t>* ids);
    // A fresh record with a new id. When its slot held a finished job, that
    // job is dropped and its id returned in *evicted (its log is the caller's
    // to delete, after unlocking). nullptr when every slot is busy, or when
    // the header's next id is out of range (then *damaged is set).
    JobRecord* allocate(uint64_t* evicted, bool* damaged = nullptr);
    void release(JobRecord* r);  // frees the slot
    // Marks the record changed: new change_seq and checksum, wake on unlock.
    void commit(JobRecord* r);
    // The change_seq the next commit under this lock gets.
    uint64_t next_change_seq() { return header().change_seq + 1; }
    // A change that shows nowhere in the job's JSON (pids, log_size): new
    // checksum, the record's change_seq stays, and only those who follow
    // job output are woken, not the scheduler or the job event streams.
    void commit_quiet(JobRecord* r);
    void commit_header();  // counters changed
    // Records the final state of a job, once: finished_at, the counters
    // (overall and per target, with the duration of a job that ran, on the
    // monotonic clock), commit.
    void finish(JobRecord* r, JobState state, const Instant& now);
    // Counts a refused submission.
    void count_rejection(Rejection why);

   private:
    uint64_t note_change();

    JobTable& table_;
    std::unique_lock<std::timed_mutex> mutex_lock_;
    bool flocked_ = false;
    Status status_ = Status::ok();
    bool changed_ = false;
    bool output_changed_ = false;
  };

  // DeploySync, kept in the header so that every process (runners too)
  // follows it: whether make_durable() flushes. Set at start-up.
  void set_sync(bool on);
  // Call after a change, with no Lock held: returns once the changes this
  // process made so far are on stable storage, or at once with DeploySync
  // off. Concurrent callers share flushes (group commit): one flushes at a
  // time, and a flush that began after the caller's change, by any process,
  // serves it. An error (the disk failed or is full) means the change may be
  // lost at a power cut.
  Status make_durable();
  // Whether a new job's log has room: false when the file system of the
  // state dir has almost no space left for httpd's user (store_full).
  bool has_room_for_a_job() const;
  // Counts a submission refused because the table was busy: it reaches the
  // counters the next time a Lock is held.
  void count_busy_rejection() { busy_rejections_.fetch_add(1, std::memory_order_relaxed); }

  // Lock-free: the change counter as it is now.
  uint64_t change_seq() const;
  // Sleeps until the change counter differs from `seen` or `timeout` passed.
  // Returns true when it changed.
  bool wait_for_change(uint64_t seen, Micros timeout) const;
  // The same for changes and new job output together.
  uint64_t output_seq() const;
  bool wait_for_output(uint64_t seen, Micros timeout) const;

 private:
  JobTable() = default;
  Status open_own_descriptors(bool close_old);
  Status map_file();
  void remap_if_superseded();
  std::string lock_path() const { return state_dir_ + "/lock"; }
  std::string spare_log_path(uint64_t id) const;
  void wake(bool changed, bool output);

  std::string state_dir_;
  int lock_fd_ = -1;
  // The mapped file, for flushing (and the flock flushers take turns on). A
  // replaced one stays open in retired_fds_: a thread may be flushing it.
  std::atomic<int> table_fd_{-1};
  std::vector<int> retired_fds_;
  std::timed_mutex mutex_;
  std::mutex sync_mutex_;  // held by this process's flusher
  std::atomic<TableHeader*> header_{nullptr};
  // What map_file validated; never read again from the shared header.
  size_t mapped_size_ = 0;
  std::atomic<uint32_t> capacity_{0};
  dev_t mapped_device_ = 0;  // the file mapped, to tell a real replacement
  ino_t mapped_inode_ = 0;   // from a forged `superseded`
  std::atomic<uint64_t> busy_rejections_{0};
  // Older mappings stay mapped: a thread may be waiting on their futex word.
  std::vector<std::pair<void*, size_t>> retired_;
};

// starttime of a process (clock ticks after boot), 0 when it does not exist.
uint64_t process_start_ticks(int pid);

}  // namespace deploy
