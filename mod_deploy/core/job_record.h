// The record format of the job table and its codec: one job as stored, and
// the reading and writing of its fields as the domain values. What
// submission.cc and progress.cc need, without the mapping or the lock
// (job_table.h); the file's start-up and repair use the validation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "clock.h"
#include "job.h"
#include "scheduler.h"

namespace deploy {

constexpr size_t kRecordSize = 4096;
// Versions 1 and 2 had records of this size: the fields up to the monotonic
// times. A start-up reads them into the larger record (table_file.h).
constexpr size_t kRecordSizeVersion2 = 2048;
constexpr size_t kTargetNameMax = 64;
constexpr size_t kStageMax = 200;
constexpr size_t kUserMax = 255;

// The delivery of one notification (DeployNotify) of a job.
enum class DeliveryState : uint8_t { unused = 0, pending, delivered, failed };
struct NotificationSlot {
  uint8_t state;     // DeliveryState
  uint8_t attempts;  // made so far
  uint16_t status;   // HTTP status of the last attempt; 0: none
  uint32_t reserved;
  int64_t due_mono;  // the next attempt; 0: none (the job has not finished)
  int64_t due_at;    // its wall time, written with due_mono
};
static_assert(sizeof(NotificationSlot) == 24);

// One job as stored in the file. Plain data only: the file outlives every
// process and every build that reads it, and may be damaged.
//
// Times come in pairs (clock.h): the *_at fields are wall time, shown and
// never compared with a clock; the *_mono fields are CLOCK_BOOTTIME of the
// boot named in the header, and every decision uses them. Both are written
// at the same moment.
struct JobRecord {
  uint64_t id;  // 0: free slot
  uint64_t checksum;
  uint64_t change_seq;
  int64_t submitted_at;  // first trigger
  int64_t not_before;    // while waiting; wall time written with not_before_mono
  int64_t started_at;
  int64_t finished_at;
  uint64_t runner_start_ticks;  // /proc/PID/stat starttime of the runner
  uint64_t log_size;            // bytes the runner has written to the job's log
  int32_t runner_pid;
  int32_t job_pid;  // also the job's process group
  int32_t exit_code;
  int32_t signal;
  uint32_t requests;
  uint8_t state;  // JobState
  uint8_t has_exit_code;
  uint8_t has_signal;
  uint8_t cancel_requested;
  uint8_t has_stage;
  uint8_t has_submitted_by;
  int8_t progress;  // -1: null
  // 1: some of the job's output could not be written (was reserved0)
  uint8_t log_incomplete;
  uint16_t params_size;  // bytes used in params
  uint16_t reserved1;
  uint32_t reserved2;
  char target[kTargetNameMax + 8];
  char submitted_by[kUserMax + 1];
  char stage[kStageMax + 8];
  char params[kRecordSizeVersion2 - 644 - 24];  // "NAME\0VALUE\0" pairs
  // Version 2: the monotonic times, taken from the end of params.
  int64_t submitted_mono;   // first trigger: max wait, queue timeout
  int64_t not_before_mono;  // while waiting: end of the quiet window
  int64_t started_mono;     // runner silence limit, the run's duration
  // Version 3: what triggers and outcomes add, after the 2048 bytes of
  // version 2.
  uint64_t superseded_by;         // the job that superseded this one; 0: none
  uint16_t idempotency_key_size;  // bytes of idempotency_key; 0: none
  uint8_t has_canceled_by;        // canceled_by holds the user of the cancel
  uint8_t notification_count;     // slots of notifications in use
  uint32_t reserved3;
  char canceled_by[kUserMax + 1];                // NUL-terminated
  char idempotency_key[kIdempotencyKeyMax + 1];  // printable ASCII, NUL-terminated
  NotificationSlot notifications[kNotificationsMax];
  // The change_seq of the commit that last stored params: once the header's
  // durable_seq has reached it, they are on stable storage (DeploySync).
  uint64_t params_seq;
  char reserved_tail[kRecordSize - kRecordSizeVersion2 - 24 - (kUserMax + 1) -
                     (kIdempotencyKeyMax + 1) - kNotificationsMax * sizeof(NotificationSlot)];
};

constexpr size_t kParamsMax = sizeof(JobRecord::params);
static_assert(offsetof(JobRecord, params) == 644, "fields before params changed: resize params");
static_assert(offsetof(JobRecord, submitted_mono) == kRecordSizeVersion2 - 24,
              "the monotonic times end the record of version 2");
static_assert(offsetof(JobRecord, superseded_by) == kRecordSizeVersion2,
              "version 3's fields follow those of version 2");
static_assert(sizeof(JobRecord) == kRecordSize);
// Version 1 had no monotonic times, and this much room for params.
constexpr size_t kParamsMaxVersion1 = kRecordSizeVersion2 - 644;

// Reads and writes the fields of a record as the domain values.
Job record_to_job(const JobRecord& r);
// The scheduling facts of an unfinished record: its monotonic times, and its
// group within a target grouped by `group_by` (the target's DeployGroupBy).
PendingJob pending_job(const JobRecord& r, const std::optional<std::string>& group_by);
// Sets the monotonic times of `r` from its wall times as seen at `now`: for
// records of version 1 and of another boot (the wall clock is the only time
// that survives a reboot, so a wall step while the host was down, or between
// the event and this start-up, shifts them by that step).
void rebase_mono_times(JobRecord& r, const Instant& now);
// Stores params; false (record untouched) when they do not fit in kParamsMax.
bool store_params(JobRecord& r, const Params& params);
Params load_params(const JobRecord& r);
// Size of params once stored; compare with kParamsMax before accepting them.
size_t stored_params_size(const Params& params);
void store_text(char* field, size_t field_size, std::string_view text);
// A record that is internally consistent (used when reading a file from disk).
bool record_is_valid(const JobRecord& r, uint32_t capacity, size_t slot);
// The checks of record_is_valid but the checksum: what every read of a live
// record makes sure of before the record is used (its fields index arrays
// and are read as C strings).
bool record_is_sound(const JobRecord& r, uint32_t capacity, size_t slot);
// Over the first `size` bytes: kRecordSize, or kRecordSizeVersion2 for a
// record read from a file of version 1 or 2.
uint64_t record_checksum(const JobRecord& r, size_t size = kRecordSize);

// The validation of record_is_valid of a record read from a file of
// `version` (1, 2 or 3): version 1 had kParamsMaxVersion1 bytes of params,
// versions 1 and 2 a checksum over kRecordSizeVersion2 bytes (and zeros
// where version 3's fields are).
bool record_is_valid_for(const JobRecord& r, uint32_t capacity, size_t slot, uint32_t version);
// Makes a valid record of version 1 one of version 2: the params that fit
// the smaller field, then the monotonic times (from the wall times). False
// when some params did not fit.
bool upgrade_from_version1(JobRecord& r, const Instant& now);

}  // namespace deploy
