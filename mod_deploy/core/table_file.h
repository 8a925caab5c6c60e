// What the parts of the job table's code share, and nothing outside them
// uses: the file's format constants and small helpers (job_table.h for the
// format itself).
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "job_table.h"

namespace deploy::table_file {

constexpr char kMagic[8] = {'D', 'E', 'P', 'L', 'O', 'Y', 'T', '1'};
// Version 2 added the monotonic times at the end of the record and the boot
// id at the end of the header; version 3 doubled the record (4096 bytes) for
// the fields of triggers and outcomes (job_record.h). A start-up upgrades a
// file of version 1 or 2.
constexpr uint32_t kVersion = 3;
constexpr uint32_t kVersion2 = 2;
constexpr uint32_t kVersion1 = 1;
// logs/.spare-SLOT: an emptied log kept for the slot's next job.
constexpr char kSparePrefix[] = ".spare-";

// The state dir and logs/, and every file in them, are the httpd User's
// alone: a job running as a DeployUser must not read or write the table, its
// lock or any log (docs/directives.md, DeployUser).
constexpr mode_t kDirectoryMode = 0700;
constexpr mode_t kFileMode = 0600;

inline std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

inline size_t file_size_for(uint32_t capacity) {
  return kHeaderSize + size_t(capacity) * kRecordSize;
}

inline JobRecord* slot_at(TableHeader* h, size_t slot) {
  return reinterpret_cast<JobRecord*>(reinterpret_cast<char*>(h) + kHeaderSize +
                                      slot * kRecordSize);
}

inline bool header_is_valid(const TableHeader& h, size_t file_size) {
  return memcmp(h.magic, kMagic, sizeof kMagic) == 0 && h.version == kVersion &&
         h.record_size == kRecordSize && h.capacity > 0 && file_size == file_size_for(h.capacity);
}

long futex(uint32_t* word, int op, uint32_t value, const struct timespec* timeout);
// Bumps a futex word of the header and wakes every process waiting on it.
void bump_and_wake(uint32_t* word);

// The statistics of `target`, claiming a free entry for a new name; nullptr
// when every entry is taken (the counters overall still count).
TargetStats* target_stats(TableHeader& h, const char* target);

// The highest id with a log in logs/. Spare logs of slots a table of
// `capacity` does not have are removed on the way (job_logs.cc).
uint64_t scan_logs(const std::string& state_dir, uint32_t capacity);

}  // namespace deploy::table_file
