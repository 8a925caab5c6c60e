// Start-up and repair of the table file: creating it, dropping damaged
// records, upgrading older versions, resizing (JobTable::open_for_startup).
#include "job_table.h"
#include "table_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <map>

namespace deploy {

using namespace table_file;

namespace {

// The table file on disk in full, never sparse: a write through the mapping
// to a page the file system cannot back is SIGBUS, the death of whichever
// process touched it first. Allocating it at start-up turns a full disk into
// a clear refusal to start.
Status allocate_table_file(int fd, const std::string& path, uint32_t capacity) {
  const size_t size = file_size_for(capacity);
  const int error = posix_fallocate(fd, 0, off_t(size));
  if (error == 0) return Status::ok();
  return Status::error("cannot allocate the job table " + path + " (" + std::to_string(size) +
                       " bytes) on disk: " + std::strerror(error) +
                       "; DeployStateDir needs that much free space (DeployHistory, "
                       "DeployQueueLimit and DeployMaxRunning set its size)");
}

// Makes the entries of `dir` (files created or renamed in it) durable.
void sync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  fsync(fd);
  ::close(fd);
}

// Creates a file of `capacity` empty records with a fresh header.
Status write_empty_table(const std::string& path, uint32_t capacity, uint64_t next_id,
                         const TableHeader* previous, int uid, int gid) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, kFileMode);
  if (fd < 0) return Status::error(errno_text("cannot create", path));
  Status st = Status::ok();
  if (fchmod(fd, kFileMode) != 0)  // a leftover .new keeps its mode
    st = Status::error(errno_text("cannot chmod", path));
  if (st.is_ok()) st = allocate_table_file(fd, path, capacity);
  if (st.is_ok()) {
    // Counters and the change counter carry over: metrics only grow, and
    // event ids must not go back.
    TableHeader h = previous ? *previous : TableHeader{};
    h.superseded = 0;
    memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kVersion;
    h.record_size = kRecordSize;
    h.capacity = capacity;
    h.next_id = next_id;
    if (!previous) h.created_at = wall_now();
    // Every record written into this file has its monotonic times in this boot.
    store_text(h.boot_id, sizeof h.boot_id, boot_id());
    if (pwrite(fd, &h, sizeof h, 0) != ssize_t(sizeof h))
      st = Status::error(errno_text("cannot write", path));
  }
  if (st.is_ok() && uid != -1 && fchown(fd, uid_t(uid), gid_t(gid)) != 0)
    st = Status::error(errno_text("cannot chown", path));
  ::close(fd);
  return st;
}

// The size of the records of a table file read whole into `bytes`, and in
// *version the version its header names (0 when the header is not valid).
// Without a valid header, the records say: the size under which more of them
// validate (a tie is this version's).
size_t record_size_on_disk(const std::vector<char>& bytes, uint32_t capacity, uint32_t* version) {
  const auto* h = reinterpret_cast<const TableHeader*>(bytes.data());
  *version = 0;
  if (bytes.size() >= kHeaderSize && memcmp(h->magic, kMagic, sizeof kMagic) == 0) {
    if (h->version == kVersion && h->record_size == kRecordSize) {
      *version = kVersion;
      return kRecordSize;
    }
    if ((h->version == kVersion1 || h->version == kVersion2) &&
        h->record_size == kRecordSizeVersion2) {
      *version = h->version;
      return kRecordSizeVersion2;
    }
  }
  auto valid_records = [&](size_t record_size, uint32_t record_version) {
    if (bytes.size() <= kHeaderSize) return size_t(0);
    const size_t slots = std::min<size_t>((bytes.size() - kHeaderSize) / record_size, UINT32_MAX);
    const bool whole = bytes.size() == kHeaderSize + slots * record_size;
    const uint32_t file_capacity = whole ? uint32_t(slots) : capacity;
    JobRecord r;
    size_t n = 0;
    for (size_t i = 0; i < std::min<size_t>(slots, file_capacity); ++i) {
      memset(&r, 0, sizeof r);
      memcpy(&r, bytes.data() + kHeaderSize + i * record_size, record_size);
      n += r.id != 0 && record_is_valid_for(r, file_capacity, i, record_version);
    }
    return n;
  };
  return valid_records(kRecordSizeVersion2, kVersion2) > valid_records(kRecordSize, kVersion)
             ? kRecordSizeVersion2
             : kRecordSize;
}

// `bytes` with its records of `record_size` each in a slot of kRecordSize,
// zeros after them (a partial record at the end is left out).
std::vector<char> widen_records(std::vector<char> bytes, size_t record_size) {
  if (record_size == kRecordSize || bytes.size() < kHeaderSize) return bytes;
  const size_t slots = (bytes.size() - kHeaderSize) / record_size;
  std::vector<char> wide(kHeaderSize + slots * kRecordSize, '\0');
  memcpy(wide.data(), bytes.data(), kHeaderSize);
  for (size_t i = 0; i < slots; ++i)
    memcpy(wide.data() + kHeaderSize + i * kRecordSize,
           bytes.data() + kHeaderSize + i * record_size, record_size);
  return wide;
}

}  // namespace

Status JobTable::open_for_startup(const std::string& state_dir, uint32_t capacity, int uid, int gid,
                                  std::unique_ptr<JobTable>* out,
                                  std::vector<std::string>* warnings) {
  if (capacity == 0) return Status::error("job table capacity must be positive");
  for (const std::string& dir : {state_dir, state_dir + "/logs"}) {
    if (mkdir(dir.c_str(), kDirectoryMode) != 0 && errno != EEXIST)
      return Status::error(errno_text("cannot create directory", dir));
    if (uid != -1 && chown(dir.c_str(), uid_t(uid), gid_t(gid)) != 0)
      return Status::error(errno_text("cannot chown", dir));
    // Also a directory made by hand, or by an older version (0750).
    if (chmod(dir.c_str(), kDirectoryMode) != 0)
      warnings->push_back(errno_text("cannot make it mode 0700", dir));
  }
  std::string lock_path = state_dir + "/lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kFileMode);
  if (lock_fd < 0) return Status::error(errno_text("cannot create", lock_path));
  if ((uid != -1 && fchown(lock_fd, uid_t(uid), gid_t(gid)) != 0) ||
      fchmod(lock_fd, kFileMode) != 0) {
    ::close(lock_fd);
    return Status::error(errno_text("cannot chown or chmod", lock_path));
  }
  std::unique_ptr<JobTable> table(new JobTable());
  table->state_dir_ = state_dir;
  table->lock_fd_ = lock_fd;
  if (flock(lock_fd, LOCK_EX) != 0) return Status::error(errno_text("cannot lock", lock_path));

  // Read what is there, keeping every record that validates.
  std::string path = state_dir + "/jobs.table";
  std::string tmp_path = path + ".new";
  std::vector<JobRecord*> kept;
  std::vector<char> old_bytes;
  // Ids are never reused, even when the table was lost: logs tell the
  // highest id the directory has seen.
  uint64_t next_id = scan_logs(state_dir, capacity) + 1;
  uint64_t change_seq = 0;
  const TableHeader* previous = nullptr;
  bool reuse = false;
  {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
      old_bytes.resize(size_t(st.st_size));
      ssize_t got = old_bytes.empty() ? 0 : pread(fd, old_bytes.data(), old_bytes.size(), 0);
      if (got != ssize_t(old_bytes.size())) old_bytes.clear();
    } else if (fd < 0 && errno != ENOENT) {
      warnings->push_back(errno_text("cannot read", path));
    }
    if (fd >= 0) ::close(fd);
  }
  if (!old_bytes.empty()) {
    // The file as it is on disk: its size, and the size of its records
    // (version 3's, or the smaller ones of versions 1 and 2, which are read
    // into records of this version with zeros for its new fields).
    const size_t file_bytes = old_bytes.size();
    uint32_t file_version = 0;  // 0: the header does not say
    const size_t disk_record = record_size_on_disk(old_bytes, capacity, &file_version);
    old_bytes = widen_records(old_bytes, disk_record);
    auto* h = reinterpret_cast<TableHeader*>(old_bytes.data());
    auto disk_size_for = [&](uint32_t cap) { return kHeaderSize + size_t(cap) * disk_record; };
    size_t slots_present = file_bytes > kHeaderSize ? (file_bytes - kHeaderSize) / disk_record : 0;
    const Instant now = Instant::now();
    // How the records' monotonic times are made valid in this boot.
    enum class Times { as_they_are, rebase, from_version1 } times = Times::rebase;
    // Keeps the records of the first `slots` slots that validate for `file_capacity`.
    auto read_records = [&](size_t slots, uint32_t file_capacity) {
      size_t dropped = 0;
      for (size_t i = 0; i < slots; ++i) {
        JobRecord* r = slot_at(h, i);
        if (r->id == 0) continue;
        const uint32_t version = times == Times::from_version1 ? kVersion1
                                 : disk_record == kRecordSize  ? kVersion
                                                               : kVersion2;
        if (!record_is_valid_for(*r, file_capacity, i, version)) {
          ++dropped;
          continue;
        }
        if (times == Times::from_version1 && !upgrade_from_version1(*r, now)) {
          // Version 1 had 24 bytes more for params. A job that has not
          // started cannot run without all of them: it expires.
          std::string what = "job table " + path + ": job " + std::to_string(r->id) +
                             " kept only the parameters that fit version 2";
          if (!is_final(JobState(r->state)) && JobState(r->state) != JobState::running) {
            r->state = uint8_t(JobState::expired);
            r->finished_at = now.wall;
            h->counters.finished[uint8_t(JobState::expired)]++;  // the header is copied over
            r->checksum = record_checksum(*r);
            what += "; it had not started and expired";
          }
          warnings->push_back(what);
        } else if (times == Times::rebase) {
          rebase_mono_times(*r, now);
        }
        // A record of an older version now has this version's checksum.
        r->checksum = record_checksum(*r);
        kept.push_back(r);
        next_id = std::max(next_id, r->id + 1);
        change_seq = std::max(change_seq, r->change_seq);
      }
      if (dropped)
        warnings->push_back("job table " + path + ": dropped " + std::to_string(dropped) +
                            " damaged record(s)");
      return dropped;
    };
    bool header_ok = file_version != 0 && h->capacity > 0;
    if (header_ok && slots_present > 0 && slots_present != h->capacity &&
        file_bytes == disk_size_for(uint32_t(std::min<size_t>(slots_present, UINT32_MAX)))) {
      // A whole number of records, but not the header's capacity: a file
      // cut at a record's end, or a capacity written over. The records say
      // which: their id gives their slot.
      auto intact = [&](uint32_t file_capacity) {
        size_t n = 0;
        for (size_t i = 0; i < std::min<size_t>(slots_present, file_capacity); ++i)
          n += record_is_valid_for(*slot_at(h, i), file_capacity, i, file_version);
        return n;
      };
      header_ok = intact(h->capacity) >= intact(uint32_t(slots_present));
    }
    bool same_boot = false;
    if (header_ok) {
      // A version-1 header has zeros where the boot id is now.
      const std::string this_boot = boot_id();
      same_boot = h->version != kVersion1 && !this_boot.empty() &&
                  strncmp(h->boot_id, this_boot.c_str(), sizeof h->boot_id) == 0;
      times = h->version == kVersion1 ? Times::from_version1
              : same_boot             ? Times::as_they_are
                                      : Times::rebase;
    }
    if (!header_ok) {
      // Records without their header cannot say which boot or version they
      // are of: their monotonic times are rebased. (A record of version 1
      // whose params fit version 2 reads as one of version 2 with zero
      // monotonic times, which the rebase sets.)
      // The records carry their id and a checksum: they can be read without
      // the header. The capacity they were written with is what the size of
      // the file says, or, when it is not a whole number of records, most
      // likely the configured one.
      size_t records = std::min<size_t>(slots_present, UINT32_MAX);
      uint32_t file_capacity =
          file_bytes == disk_size_for(uint32_t(records)) ? uint32_t(records) : capacity;
      warnings->push_back("job table " + path + " has an invalid header; " +
                          (records ? "keeping the records that are intact" : "starting a new one"));
      if (records) read_records(std::min<size_t>(records, file_capacity), file_capacity);
    } else {
      previous = h;
      if (file_bytes != disk_size_for(h->capacity))
        warnings->push_back("job table " + path + " is truncated; keeping the " +
                            std::to_string(std::min<size_t>(slots_present, h->capacity)) +
                            " records that are complete");
      size_t dropped = read_records(std::min<size_t>(slots_present, h->capacity), h->capacity);
      // A next id past the range is damage: the records and logs tell it.
      if (h->next_id <= kMaxJobId) next_id = std::max(next_id, h->next_id);
      // A file of another boot or version is rewritten with its records' new times.
      reuse = dropped == 0 && file_version == kVersion &&
              file_bytes == file_size_for(h->capacity) && h->capacity == capacity && same_boot;
    }
  }

  Status st = Status::ok();
  if (!reuse) {
    // Write a new file beside the old one, then switch atomically: processes
    // that still map the old one see `superseded` and follow.
    st = write_empty_table(tmp_path, capacity, next_id, previous, uid, gid);
    if (st.is_ok()) {
      int fd = ::open(tmp_path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) {
        st = Status::error(errno_text("cannot open", tmp_path));
      } else {
        // Newest first, so that a smaller table keeps the newest jobs.
        std::sort(kept.begin(), kept.end(), [](auto* a, auto* b) { return a->id > b->id; });
        std::vector<bool> used(capacity, false);
        for (JobRecord* r : kept) {
          size_t slot = r->id % capacity;
          if (used[slot]) continue;
          used[slot] = true;
          if (pwrite(fd, r, kRecordSize, off_t(kHeaderSize + slot * kRecordSize)) !=
              ssize_t(kRecordSize)) {
            st = Status::error(errno_text("cannot write", tmp_path));
            break;
          }
        }
        // On disk before it replaces the old file, whatever DeploySync says:
        // a power cut must find one of the two whole.
        if (st.is_ok() && fsync(fd) != 0) st = Status::error(errno_text("cannot sync", tmp_path));
        ::close(fd);
      }
    }
    if (st.is_ok()) {
      // Tell processes mapping the old file to follow.
      int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
      struct stat sb;
      if (fd >= 0 && fstat(fd, &sb) == 0 && size_t(sb.st_size) >= kHeaderSize) {
        uint32_t one = 1;
        if (pwrite(fd, &one, sizeof one, off_t(offsetof(TableHeader, superseded))) != sizeof one)
          warnings->push_back(errno_text("cannot mark as replaced", path));
      }
      if (fd >= 0) ::close(fd);
      if (rename(tmp_path.c_str(), path.c_str()) != 0)
        st = Status::error(errno_text("cannot rename", tmp_path));
    }
    if (!st.is_ok()) unlink(tmp_path.c_str());
  } else {
    // A file written by an older version (or copied) may be sparse.
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      st = Status::error(errno_text("cannot open", path));
    } else {
      st = allocate_table_file(fd, path, capacity);
      ::close(fd);
    }
  }
  if (st.is_ok()) {
    sync_directory(state_dir + "/logs");
    sync_directory(state_dir);
  }
  if (st.is_ok() && reuse && chmod(path.c_str(), kFileMode) != 0)
    st = Status::error(errno_text("cannot chmod", path));
  if (st.is_ok()) st = table->map_file();
  if (st.is_ok()) {
    TableHeader* h = table->header_.load();
    // A damaged header may hold target names without their NUL (a file
    // reused as it is keeps them): readers take them as C strings.
    for (TargetStats& stats : h->targets) stats.target[sizeof stats.target - 1] = '\0';
    if (h->next_id > kMaxJobId) h->next_id = 0;
    h->next_id = std::max(h->next_id, next_id);
    h->oldest_unfinished = 0;  // a hint: learnt again by the first reader
    h->superseded = 0;         // this is the file: a forged mark is dropped
    h->change_seq = std::max(h->change_seq, change_seq);
    h->output_seq = std::max(h->output_seq, h->change_seq);
    // A damaged header must not let a flush be skipped.
    if (h->sync_done > h->sync_started || h->sync_started > (uint64_t(1) << 62))
      h->sync_started = h->sync_done = 0;
    // Nor a join skip one: the file is flushed whole below.
    h->durable_seq = 0;
  }
  // What start-up changed in the header (next_id above all) is durable
  // before any id is handed out.
  if (st.is_ok() && fdatasync(table->table_fd_) != 0)
    st = Status::error(errno_text("cannot sync", path));
  flock(lock_fd, LOCK_UN);
  if (!st.is_ok()) return st;
  table->wake(true, true);
  *out = std::move(table);
  return Status::ok();
}

}  // namespace deploy
