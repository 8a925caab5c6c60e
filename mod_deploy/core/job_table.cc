#include "job_table.h"

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
namespace {

constexpr char kMagic[8] = {'D', 'E', 'P', 'L', 'O', 'Y', 'T', '1'};
// Version 2 added the monotonic times at the end of the record and the boot
// id at the end of the header; a start-up upgrades a version-1 file.
constexpr uint32_t kVersion = 2;
constexpr uint32_t kVersion1 = 1;
// logs/.spare-SLOT: an emptied log kept for the slot's next job.
constexpr char kSparePrefix[] = ".spare-";
// Below this much free space (for httpd's user) a submission is refused as
// store_full: its job could not keep even a short log.
constexpr uint64_t kMinFreeBytes = 64 * 1024;

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

size_t file_size_for(uint32_t capacity) { return kHeaderSize + size_t(capacity) * kRecordSize; }

JobRecord* slot_at(TableHeader* h, size_t slot) {
  return reinterpret_cast<JobRecord*>(reinterpret_cast<char*>(h) + kHeaderSize +
                                      slot * kRecordSize);
}

bool text_field_ok(const char* field, size_t size) { return memchr(field, '\0', size) != nullptr; }

long futex(uint32_t* word, int op, uint32_t value, const struct timespec* timeout) {
  return syscall(SYS_futex, word, op, value, timeout, nullptr, 0);
}

// The state dir and logs/, and every file in them, are the httpd User's
// alone: a job running as a DeployUser must not read or write the table, its
// lock or any log (docs/directives.md, DeployUser).
constexpr mode_t kDirectoryMode = 0700;
constexpr mode_t kFileMode = 0600;

void bump_and_wake(uint32_t* word);

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

bool header_is_valid(const TableHeader& h, size_t file_size) {
  return memcmp(h.magic, kMagic, sizeof kMagic) == 0 && h.version == kVersion &&
         h.record_size == kRecordSize && h.capacity > 0 && file_size == file_size_for(h.capacity);
}

// The statistics of `target`, claiming a free entry for a new name; nullptr
// when every entry is taken (the counters overall still count).
TargetStats* target_stats(TableHeader& h, const char* target) {
  for (TargetStats& stats : h.targets) {
    if (stats.target[0] == '\0') {
      store_text(stats.target, sizeof stats.target, target);
      return &stats;
    }
    if (strncmp(stats.target, target, sizeof stats.target) == 0) return &stats;
  }
  return nullptr;
}

constexpr std::string_view kRejectionNames[] = {"not_found",
                                                "method_not_allowed",
                                                "bad_request",
                                                "invalid_param",
                                                "unsupported_media_type",
                                                "too_large",
                                                "bad_signature",
                                                "cross_origin",
                                                "queue_full",
                                                "internal",
                                                "store_full",
                                                "busy"};
static_assert(std::size(kRejectionNames) == size_t(Rejection::count_));

// The highest N of the DIR/logs/N.log files, 0 when there is none.
// The highest id with a log in logs/. Spare logs of slots a table of
// `capacity` does not have are removed on the way.
uint64_t scan_logs(const std::string& state_dir, uint32_t capacity) {
  uint64_t highest = 0;
  std::string dir = state_dir + "/logs";
  if (DIR* d = opendir(dir.c_str())) {
    while (struct dirent* entry = readdir(d)) {
      char* end = nullptr;
      if (strncmp(entry->d_name, kSparePrefix, strlen(kSparePrefix)) == 0) {
        const char* digits = entry->d_name + strlen(kSparePrefix);
        const uint64_t slot = strtoull(digits, &end, 10);
        if (end == digits || *end != '\0' || slot >= capacity) unlinkat(dirfd(d), entry->d_name, 0);
        continue;
      }
      uint64_t id = strtoull(entry->d_name, &end, 10);
      if (end != entry->d_name && strcmp(end, ".log") == 0) highest = std::max(highest, id);
    }
    closedir(d);
  }
  return highest;
}

}  // namespace

std::string_view rejection_name(Rejection r) { return kRejectionNames[size_t(r)]; }

std::optional<Rejection> rejection_from_code(std::string_view code) {
  for (size_t i = 0; i < std::size(kRejectionNames); ++i)
    if (kRejectionNames[i] == code) return Rejection(i);
  return std::nullopt;
}

uint64_t process_start_ticks(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return 0;
  // The command name (field 2) may hold spaces and parentheses: count fields
  // after its closing parenthesis. starttime is field 22.
  size_t pos = stat.rfind(')');
  if (pos == std::string::npos) return 0;
  int field = 2;
  const char* p = stat.c_str() + pos + 1;
  while (*p && field < 22) {
    while (*p == ' ') ++p;
    ++field;
    if (field == 22) return strtoull(p, nullptr, 10);
    while (*p && *p != ' ') ++p;
  }
  return 0;
}

void store_text(char* field, size_t field_size, std::string_view text) {
  size_t n = std::min(text.size(), field_size - 1);
  memcpy(field, text.data(), n);
  memset(field + n, 0, field_size - n);
}

size_t stored_params_size(const Params& params) {
  size_t n = 0;
  for (const auto& [name, value] : params) n += name.size() + 1 + value.size() + 1;
  return n;
}

bool store_params(JobRecord& r, const Params& params) {
  if (stored_params_size(params) > kParamsMax) return false;
  size_t at = 0;
  for (const auto& [name, value] : params) {
    memcpy(r.params + at, name.c_str(), name.size() + 1);
    at += name.size() + 1;
    memcpy(r.params + at, value.c_str(), value.size() + 1);
    at += value.size() + 1;
  }
  memset(r.params + at, 0, kParamsMax - at);
  r.params_size = uint16_t(at);
  return true;
}

Params load_params(const JobRecord& r) {
  Params params;
  size_t size = std::min<size_t>(r.params_size, kParamsMax);
  const char* p = r.params;
  const char* end = r.params + size;
  while (p < end) {
    const char* name_end = static_cast<const char*>(memchr(p, '\0', size_t(end - p)));
    if (!name_end) break;
    const char* value = name_end + 1;
    const char* value_end =
        value < end ? static_cast<const char*>(memchr(value, '\0', size_t(end - value))) : nullptr;
    if (!value_end) break;
    params.emplace_back(std::string(p, name_end), std::string(value, value_end));
    p = value_end + 1;
  }
  return params;
}

Job record_to_job(const JobRecord& r) {
  Job job;
  job.id = r.id;
  job.target.assign(r.target, strnlen(r.target, sizeof r.target));
  job.state = is_valid_state(r.state) ? JobState(r.state) : JobState::lost;
  job.params = load_params(r);
  job.progress = (r.progress >= 0 && r.progress <= 100) ? r.progress : -1;
  if (r.has_stage) job.stage = std::string(r.stage, strnlen(r.stage, sizeof r.stage));
  job.requests = r.requests;
  job.not_before = job.state == JobState::waiting ? r.not_before : 0;
  if (r.has_submitted_by)
    job.submitted_by = std::string(r.submitted_by, strnlen(r.submitted_by, sizeof r.submitted_by));
  job.submitted_at = r.submitted_at;
  job.started_at = r.started_at;
  job.finished_at = r.finished_at;
  if (r.has_exit_code) job.exit_code = r.exit_code;
  if (r.has_signal) job.signal = r.signal;
  job.log_complete = r.log_incomplete == 0;
  job.change_seq = r.change_seq;
  return job;
}

PendingJob pending_job(const JobRecord& r, const std::optional<std::string>& group_by) {
  PendingJob job{r.id, r.target, JobState(r.state), r.submitted_mono, r.not_before_mono, ""};
  // Reading the params costs a copy: only a grouped target needs them.
  if (group_by) job.group = *job_group(load_params(r), group_by);
  return job;
}

void rebase_mono_times(JobRecord& r, const Instant& now) {
  r.submitted_mono = now.mono_of(r.submitted_at);
  r.not_before_mono = r.not_before != 0 ? now.mono_of(r.not_before) : 0;
  r.started_mono = r.started_at != 0 ? now.mono_of(r.started_at) : 0;
}

uint64_t record_checksum(const JobRecord& r) {
  // FNV-1a over the record with the checksum field taken as zero.
  const auto* bytes = reinterpret_cast<const unsigned char*>(&r);
  uint64_t hash = 1469598103934665603ULL;
  for (size_t i = 0; i < kRecordSize; ++i) {
    bool in_checksum =
        i >= offsetof(JobRecord, checksum) && i < offsetof(JobRecord, checksum) + sizeof r.checksum;
    hash = (hash ^ (in_checksum ? 0 : bytes[i])) * 1099511628211ULL;
  }
  return hash;
}

namespace {

// Every check of a record but its checksum.
bool record_fields_ok(const JobRecord& r, uint32_t capacity, size_t slot, size_t params_max) {
  if (capacity == 0 || r.id == 0 || r.id % capacity != slot) return false;
  if (!is_valid_state(r.state)) return false;
  if (r.progress < -1 || r.progress > 100) return false;
  if (r.params_size > params_max) return false;
  return text_field_ok(r.target, sizeof r.target) && r.target[0] != '\0' &&
         text_field_ok(r.submitted_by, sizeof r.submitted_by) &&
         text_field_ok(r.stage, sizeof r.stage);
}

bool record_is_valid_for(const JobRecord& r, uint32_t capacity, size_t slot, size_t params_max) {
  return record_fields_ok(r, capacity, slot, params_max) && r.checksum == record_checksum(r);
}

// Makes a valid record of version 1 one of version 2: the params that fit
// the smaller field, then the monotonic times (from the wall times). False
// when some params did not fit.
bool upgrade_from_version1(JobRecord& r, const Instant& now) {
  bool whole = true;
  if (r.params_size > kParamsMax) {
    // The pairs that end before the new limit stay; the rest cannot.
    size_t keep = 0;
    for (size_t at = 0, nuls = 0; at < kParamsMax; ++at)
      if (r.params[at] == '\0' && ++nuls % 2 == 0) keep = at + 1;
    memset(r.params + keep, 0, kParamsMaxVersion1 - keep);
    r.params_size = uint16_t(keep);
    whole = false;
  }
  rebase_mono_times(r, now);
  r.checksum = record_checksum(r);
  return whole;
}

}  // namespace

bool record_is_valid(const JobRecord& r, uint32_t capacity, size_t slot) {
  return record_is_valid_for(r, capacity, slot, kParamsMax);
}

bool record_is_sound(const JobRecord& r, uint32_t capacity, size_t slot) {
  return record_fields_ok(r, capacity, slot, kParamsMax);
}

// ---------------------------------------------------------------------------

JobTable::~JobTable() {
  if (TableHeader* h = header_.load()) munmap(h, mapped_size_);
  for (auto& [addr, size] : retired_) munmap(addr, size);
  if (lock_fd_ >= 0) ::close(lock_fd_);
  if (table_fd_ >= 0) ::close(table_fd_);
  for (int fd : retired_fds_) ::close(fd);
}

std::string JobTable::log_path(uint64_t id) const {
  return state_dir_ + "/logs/" + std::to_string(id) + ".log";
}

std::string JobTable::spare_log_path(uint64_t id) const {
  return state_dir_ + "/logs/" + kSparePrefix + std::to_string(id % capacity_.load());
}

int JobTable::open_log(uint64_t id) const {
  const std::string path = log_path(id);
  // Fails harmlessly without a spare, or when the log exists already.
  renameat2(AT_FDCWD, spare_log_path(id).c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, kFileMode);
}

void JobTable::drop_log(uint64_t id) const {
  const std::string path = log_path(id);
  if (truncate(path.c_str(), 0) != 0 || rename(path.c_str(), spare_log_path(id).c_str()) != 0)
    unlink(path.c_str());
}

Status JobTable::reopen_lock() { return open_own_descriptors(true); }

Status JobTable::open_own_descriptors(bool close_old) {
  // flock belongs to the open file description: after a fork both the lock
  // and the table (which flushers take turns on) are opened anew. The old
  // numbers are closed only when they are still ours: a child that closed
  // its descriptors since may have reused them, even for the new ones.
  const int old_lock = lock_fd_;
  const int old_table = table_fd_.load();
  std::string path = state_dir_ + "/lock";
  const int lock_fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (lock_fd < 0) return Status::error(errno_text("cannot open", path));
  int table_fd = -1;
  if (old_table >= 0) {
    const std::string table_path = state_dir_ + "/jobs.table";
    table_fd = ::open(table_path.c_str(), O_RDWR | O_CLOEXEC);
    if (table_fd < 0) {
      ::close(lock_fd);
      return Status::error(errno_text("cannot open", table_path));
    }
  }
  if (close_old) {
    if (old_lock >= 0) ::close(old_lock);
    if (old_table >= 0) ::close(old_table);
  }
  lock_fd_ = lock_fd;
  if (table_fd >= 0) table_fd_.store(table_fd);
  return Status::ok();
}

Status JobTable::map_file() {
  std::string path = state_dir_ + "/jobs.table";
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::error(errno_text("cannot open", path));
  struct stat st;
  if (fstat(fd, &st) != 0 || size_t(st.st_size) < kHeaderSize) {
    ::close(fd);
    return Status::error("job table " + path + " is truncated");
  }
  void* addr = mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) {
    ::close(fd);
    return Status::error(errno_text("cannot map", path));
  }
  auto* h = static_cast<TableHeader*>(addr);
  // Read once: another process may write the header meanwhile.
  const TableHeader copy = *h;
  if (!header_is_valid(copy, size_t(st.st_size))) {
    munmap(addr, size_t(st.st_size));
    ::close(fd);
    return Status::error("job table " + path + " has an invalid header");
  }
  if (TableHeader* old = header_.load()) retired_.emplace_back(old, mapped_size_);
  mapped_size_ = size_t(st.st_size);
  capacity_.store(copy.capacity);
  mapped_device_ = st.st_dev;
  mapped_inode_ = st.st_ino;
  header_.store(h);
  // Kept for flushing (make_durable).
  if (int old = table_fd_.exchange(fd); old >= 0) retired_fds_.push_back(old);
  return Status::ok();
}

void JobTable::remap_if_superseded() {
  TableHeader* h = header_.load();
  if (!h || !__atomic_load_n(&h->superseded, __ATOMIC_ACQUIRE)) return;
  // Only a new file is followed: a `superseded` written into the file that
  // is still jobs.table must not make every Lock map it again.
  struct stat st;
  const std::string path = state_dir_ + "/jobs.table";
  if (stat(path.c_str(), &st) != 0 || (st.st_dev == mapped_device_ && st.st_ino == mapped_inode_))
    return;
  (void)map_file();
}

Status JobTable::attach(const std::string& state_dir, std::unique_ptr<JobTable>* out) {
  std::unique_ptr<JobTable> table(new JobTable());
  table->state_dir_ = state_dir;
  Status st = table->reopen_lock();
  if (!st.is_ok()) return st;
  {
    // Map under the lock: a start-up may be replacing the file right now.
    if (flock(table->lock_fd_, LOCK_EX) != 0)
      return Status::error(errno_text("cannot lock", state_dir));
    st = table->map_file();
    flock(table->lock_fd_, LOCK_UN);
  }
  if (!st.is_ok()) return st;
  *out = std::move(table);
  return Status::ok();
}

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
    auto* h = reinterpret_cast<TableHeader*>(old_bytes.data());
    size_t slots_present =
        old_bytes.size() > kHeaderSize ? (old_bytes.size() - kHeaderSize) / kRecordSize : 0;
    const Instant now = Instant::now();
    // How the records' monotonic times are made valid in this boot.
    enum class Times { as_they_are, rebase, from_version1 } times = Times::rebase;
    // Keeps the records of the first `slots` slots that validate for `file_capacity`.
    auto read_records = [&](size_t slots, uint32_t file_capacity) {
      size_t dropped = 0;
      for (size_t i = 0; i < slots; ++i) {
        JobRecord* r = slot_at(h, i);
        if (r->id == 0) continue;
        const size_t params_max = times == Times::from_version1 ? kParamsMaxVersion1 : kParamsMax;
        if (!record_is_valid_for(*r, file_capacity, i, params_max)) {
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
          r->checksum = record_checksum(*r);
        }
        kept.push_back(r);
        next_id = std::max(next_id, r->id + 1);
        change_seq = std::max(change_seq, r->change_seq);
      }
      if (dropped)
        warnings->push_back("job table " + path + ": dropped " + std::to_string(dropped) +
                            " damaged record(s)");
      return dropped;
    };
    bool header_ok = old_bytes.size() >= kHeaderSize &&
                     memcmp(h->magic, kMagic, sizeof kMagic) == 0 &&
                     (h->version == kVersion || h->version == kVersion1) &&
                     h->record_size == kRecordSize && h->capacity > 0;
    if (header_ok && slots_present > 0 && slots_present != h->capacity &&
        old_bytes.size() == file_size_for(uint32_t(std::min<size_t>(slots_present, UINT32_MAX)))) {
      // A whole number of records, but not the header's capacity: a file
      // cut at a record's end, or a capacity written over. The records say
      // which: their id gives their slot.
      auto intact = [&](uint32_t file_capacity) {
        size_t n = 0;
        for (size_t i = 0; i < std::min<size_t>(slots_present, file_capacity); ++i)
          n += record_is_valid(*slot_at(h, i), file_capacity, i);
        return n;
      };
      header_ok = intact(h->capacity) >= intact(uint32_t(slots_present));
    }
    bool same_boot = false;
    if (header_ok) {
      // A version-1 header has zeros where the boot id is now.
      const std::string this_boot = boot_id();
      same_boot = h->version == kVersion && !this_boot.empty() &&
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
          old_bytes.size() == file_size_for(uint32_t(records)) ? uint32_t(records) : capacity;
      warnings->push_back("job table " + path + " has an invalid header; " +
                          (records ? "keeping the records that are intact" : "starting a new one"));
      if (records) read_records(std::min<size_t>(records, file_capacity), file_capacity);
    } else {
      previous = h;
      if (old_bytes.size() != file_size_for(h->capacity))
        warnings->push_back("job table " + path + " is truncated; keeping the " +
                            std::to_string(std::min<size_t>(slots_present, h->capacity)) +
                            " records that are complete");
      size_t dropped = read_records(std::min<size_t>(slots_present, h->capacity), h->capacity);
      // A next id past the range is damage: the records and logs tell it.
      if (h->next_id <= kMaxJobId) next_id = std::max(next_id, h->next_id);
      // A file of another boot or version is rewritten with its records' new times.
      reuse = dropped == 0 && old_bytes.size() == file_size_for(h->capacity) &&
              h->capacity == capacity && same_boot;
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

void JobTable::set_sync(bool on) {
  __atomic_store_n(&header_.load()->sync_off, on ? 0u : 1u, __ATOMIC_RELEASE);
}

Status JobTable::make_durable() {
  TableHeader* h = header_.load();
  if (__atomic_load_n(&h->sync_off, __ATOMIC_ACQUIRE) != 0) return Status::ok();
  // A flush of a later generation than this one began after our change.
  const uint64_t needed = __atomic_load_n(&h->sync_started, __ATOMIC_ACQUIRE) + 1;
  for (;;) {
    const uint32_t word = __atomic_load_n(&h->sync_wake_word, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&h->sync_done, __ATOMIC_ACQUIRE) >= needed) return Status::ok();
    std::unique_lock<std::mutex> flusher(sync_mutex_, std::try_to_lock);
    if (!flusher.owns_lock()) {
      // This process has a flusher already: sleep until some flush ends
      // (all waiters wake at once), then look again. Bounded, in case a
      // flusher's process dies with the word unchanged.
      struct timespec ts = {0, 10 * 1000 * 1000};
      futex(&h->sync_wake_word, FUTEX_WAIT, word, &ts);
      continue;
    }
    // One flush at a time, also between processes (the flock; a process
    // dying while it flushes releases it): concurrent fdatasyncs measured
    // slower, each writing back pages the others keep dirtying.
    const int fd = table_fd_.load();
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    Status st = Status::ok();
    if (__atomic_load_n(&h->sync_done, __ATOMIC_ACQUIRE) < needed) {
      const uint64_t generation = __atomic_add_fetch(&h->sync_started, 1, __ATOMIC_ACQ_REL);
      if (fdatasync(fd) == 0) {
        if (__atomic_load_n(&h->sync_done, __ATOMIC_ACQUIRE) < generation)
          __atomic_store_n(&h->sync_done, generation, __ATOMIC_RELEASE);
      } else {
        st = Status::error(errno_text("cannot flush", state_dir_ + "/jobs.table"));
      }
    }
    flock(fd, LOCK_UN);
    bump_and_wake(&h->sync_wake_word);
    return st;
  }
}

bool JobTable::has_room_for_a_job() const {
  struct statvfs fs;
  if (statvfs(state_dir_.c_str(), &fs) != 0) return true;  // let the writes say what fails
  return uint64_t(fs.f_bavail) * fs.f_frsize >= kMinFreeBytes;
}

uint64_t JobTable::change_seq() const {
  return __atomic_load_n(&header_.load()->change_seq, __ATOMIC_ACQUIRE);
}

namespace {

// Sleeps on `word` unless `seq` already moved past `seen`. The word is read
// before the counter so that a change between the two cannot be missed.
bool wait_on(uint32_t* word, const uint64_t* seq, uint64_t seen, Micros timeout) {
  uint32_t value = __atomic_load_n(word, __ATOMIC_ACQUIRE);
  if (__atomic_load_n(seq, __ATOMIC_ACQUIRE) != seen) return true;
  if (timeout > 0) {
    struct timespec ts = {time_t(timeout / 1000000), long(timeout % 1000000) * 1000};
    futex(word, FUTEX_WAIT, value, &ts);
  }
  return __atomic_load_n(seq, __ATOMIC_ACQUIRE) != seen;
}

void bump_and_wake(uint32_t* word) {
  __atomic_add_fetch(word, 1, __ATOMIC_ACQ_REL);
  futex(word, FUTEX_WAKE, INT_MAX, nullptr);
}

}  // namespace

bool JobTable::wait_for_change(uint64_t seen, Micros timeout) const {
  TableHeader* h = header_.load();
  return wait_on(&h->wake_word, &h->change_seq, seen, timeout);
}

uint64_t JobTable::output_seq() const {
  return __atomic_load_n(&header_.load()->output_seq, __ATOMIC_ACQUIRE);
}

bool JobTable::wait_for_output(uint64_t seen, Micros timeout) const {
  TableHeader* h = header_.load();
  return wait_on(&h->output_wake_word, &h->output_seq, seen, timeout);
}

void JobTable::wake(bool changed, bool output) {
  TableHeader* h = header_.load();
  if (changed) bump_and_wake(&h->wake_word);
  if (changed || output) bump_and_wake(&h->output_wake_word);
}

// ---------------------------------------------------------------------------

int lock_holder_pid(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  std::ifstream in("/proc/locks");
  std::string line;
  // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; a waiter's line has
  // "->" after the number.
  while (std::getline(in, line)) {
    if (line.find("->") != std::string::npos) continue;
    int pid = 0;
    unsigned major_number = 0, minor_number = 0;
    unsigned long inode = 0;
    char kind[16], mode[16], access[16];
    if (sscanf(line.c_str(), "%*d: %15s %15s %15s %d %x:%x:%lu", kind, mode, access, &pid,
               &major_number, &minor_number, &inode) == 7 &&
        inode == st.st_ino && major_number == major(st.st_dev) &&
        minor_number == minor(st.st_dev) && pid > 0)
      return pid;
  }
  return 0;
}

namespace {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC

// The signal that interrupts a flock() past its deadline: a real-time signal
// that neither httpd, APR nor this module uses otherwise, sent by a timer to
// the waiting thread alone, with a handler that does nothing, installed
// without SA_RESTART so that flock() returns EINTR.
int lock_timer_signal() {
  static const int signo = [] {
    const int s = SIGRTMAX - 7;
    struct sigaction action = {};
    action.sa_handler = [](int) {};
    sigemptyset(&action.sa_mask);
    sigaction(s, &action, nullptr);
    return s;
  }();
  return signo;
}

// flock(LOCK_EX) until `deadline`, polling: the fallback when no timer can be
// had.
bool flock_polling(int fd, Clock::time_point deadline) {
  auto pause = std::chrono::microseconds(50);
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      errno = EWOULDBLOCK;
      return false;
    }
    const auto sleep =
        std::min(pause, std::chrono::duration_cast<std::chrono::microseconds>(deadline - now));
    struct timespec ts = {time_t(sleep.count() / 1000000), long(sleep.count() % 1000000) * 1000};
    nanosleep(&ts, nullptr);
    pause = std::min(pause * 2, std::chrono::microseconds(5000));
  }
  return true;
}

// flock(LOCK_EX) that gives up at `deadline` (errno EWOULDBLOCK). Waits in
// the kernel, as a plain flock() does, so that the lock passes to a waiter
// as soon as it is free: a timer signal ends the wait at the deadline, and
// again every 10 ms after it, in case the first came just before flock()
// started waiting.
bool flock_until(int fd, Clock::time_point deadline) {
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
  if (errno != EWOULDBLOCK && errno != EINTR) return false;
  const int signo = lock_timer_signal();
  struct sigevent event = {};
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = signo;
  event._sigev_un._tid = pid_t(syscall(SYS_gettid));  // gettid() needs glibc 2.30
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &event, &timer) != 0) return flock_polling(fd, deadline);
  const auto since_epoch =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  struct itimerspec when = {};
  when.it_value = {time_t(since_epoch / 1000000000), long(since_epoch % 1000000000)};
  when.it_interval = {0, 10000000};
  if (timer_settime(timer, TIMER_ABSTIME, &when, nullptr) != 0) {
    timer_delete(timer);
    return flock_polling(fd, deadline);
  }
  sigset_t signal_set, old_mask;
  sigemptyset(&signal_set);
  sigaddset(&signal_set, signo);
  pthread_sigmask(SIG_UNBLOCK, &signal_set, &old_mask);
  int error = 0;
  while (flock(fd, LOCK_EX) != 0) {
    error = errno;
    if (error != EINTR) break;
    if (Clock::now() >= deadline) {
      error = EWOULDBLOCK;
      break;
    }
    error = 0;
  }
  // The timer first: a signal it sent meanwhile is taken by the handler
  // now, not in some later system call of this thread.
  timer_delete(timer);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  errno = error;
  return error == 0;
}

}  // namespace

JobTable::Lock::Lock(JobTable& table, Micros timeout)
    : table_(table), mutex_lock_(table.mutex_, std::defer_lock) {
  const Clock::time_point deadline = Clock::now() + std::chrono::microseconds(timeout);
  // Only a failure says how long it waited.
  auto seconds = [timeout] {
    char text[32];
    snprintf(text, sizeof text, "%g", double(timeout) / 1e6);
    return std::string(text);
  };
  if (!mutex_lock_.try_lock_until(deadline)) {
    status_ = Status::error(std::string("the job table is busy: another thread of this process ") +
                            "has waited " + seconds() + " s for it");
    return;
  }
  if (!flock_until(table_.lock_fd_, deadline)) {
    if (errno != EWOULDBLOCK) {
      status_ = Status::error(errno_text("cannot lock", table_.lock_path()));
    } else {
      const int holder = lock_holder_pid(table_.lock_path());
      status_ = Status::error("the job table is busy: " + table_.lock_path() + " has been held " +
                              (holder > 0 ? "by pid " + std::to_string(holder) + " " : "") +
                              "for more than " + seconds() + " s");
    }
    mutex_lock_.unlock();
    return;
  }
  flocked_ = true;
  table_.remap_if_superseded();
  if (table_.busy_rejections_.load(std::memory_order_relaxed) != 0) {
    const uint64_t busy = table_.busy_rejections_.exchange(0, std::memory_order_relaxed);
    header().counters.rejected[size_t(Rejection::busy)] += busy;
    note_change();
  }
}

JobTable::Lock::~Lock() {
  if (!flocked_) return;
  flock(table_.lock_fd_, LOCK_UN);
  // Waking can take a while with many waiters (every event stream): the
  // other threads of this process need not wait for it.
  mutex_lock_.unlock();
  if (changed_ || output_changed_) table_.wake(changed_, output_changed_);
}

TableHeader& JobTable::Lock::header() { return *table_.header_.load(); }

uint32_t JobTable::Lock::capacity() { return table_.capacity_.load(); }

JobRecord* JobTable::Lock::find(uint64_t id) {
  if (id == 0) return nullptr;
  const size_t slot = id % capacity();
  JobRecord* r = slot_at(&header(), slot);
  return r->id == id && record_is_sound(*r, capacity(), slot) ? r : nullptr;
}

void JobTable::Lock::for_each(const std::function<void(JobRecord&)>& fn) {
  TableHeader* h = &header();
  const uint32_t slots = capacity();
  for (size_t i = 0; i < slots; ++i) {
    JobRecord* r = slot_at(h, i);
    if (r->id != 0 && record_is_sound(*r, slots, i)) fn(*r);
  }
}

JobRecord* JobTable::Lock::allocate(uint64_t* evicted, bool* damaged) {
  *evicted = 0;
  TableHeader* h = &header();
  const uint32_t slots = capacity();
  uint64_t next_id = h->next_id;
  if (next_id == 0 || next_id > kMaxJobId - slots) {
    if (damaged) *damaged = true;
    return nullptr;
  }
  // Skip ids whose slot still holds an unfinished job, and ids a damaged
  // next_id would hand out again (their slot holds a job as new or newer).
  for (uint32_t tries = 0; tries < slots; ++tries) {
    const uint64_t id = next_id++;
    JobRecord* r = slot_at(h, id % slots);
    const bool sound = r->id != 0 && record_is_sound(*r, slots, id % slots);
    if (sound && (!is_final(JobState(r->state)) || r->id >= id)) continue;
    if (sound) *evicted = r->id;
    h->next_id = next_id;
    memset(r, 0, kRecordSize);
    r->id = id;
    r->progress = -1;
    r->requests = 1;
    return r;
  }
  h->next_id = next_id;
  return nullptr;
}

uint64_t JobTable::Lock::note_change() {
  __atomic_add_fetch(&header().output_seq, 1, __ATOMIC_ACQ_REL);
  changed_ = true;
  return __atomic_add_fetch(&header().change_seq, 1, __ATOMIC_ACQ_REL);
}

void JobTable::Lock::release(JobRecord* r) {
  memset(r, 0, kRecordSize);
  note_change();
}

void JobTable::Lock::commit(JobRecord* r) {
  r->change_seq = note_change();
  r->checksum = record_checksum(*r);
  header().recent[r->change_seq % kRecentChanges] = RecentChange{r->change_seq, r->id};
}

void JobTable::Lock::for_each_unfinished(const std::function<void(JobRecord&)>& fn) {
  TableHeader& h = header();
  auto unfinished = [](const JobRecord* r) {
    return r && is_valid_state(r->state) && !is_final(JobState(r->state));
  };
  // Read once: the loops below are bounded by these copies, whatever is
  // written into the header meanwhile.
  const uint64_t next_id = h.next_id;
  uint64_t oldest = h.oldest_unfinished;
  if (oldest == 0 || oldest > next_id || next_id - oldest > capacity()) {
    // The hint is unknown or too far back: read everything, and learn it.
    oldest = next_id;
    for_each([&](JobRecord& r) {
      if (!unfinished(&r)) return;
      oldest = std::min(oldest, r.id);
      fn(r);
    });
    h.oldest_unfinished = oldest;
    return;
  }
  while (oldest < next_id && !unfinished(find(oldest))) ++oldest;
  h.oldest_unfinished = oldest;
  for (uint64_t id = oldest; id < next_id; ++id)
    if (JobRecord* r = find(id); unfinished(r)) fn(*r);
}

void JobTable::Lock::for_each_newest_first(uint64_t before,
                                           const std::function<bool(JobRecord&)>& fn) {
  const uint64_t next_id = header().next_id;
  const uint64_t end = before != 0 ? std::min(before, next_id) : next_id;
  // Every id from `window` up is in its slot, id % capacity, if it exists.
  const uint64_t window = next_id > capacity() ? next_id - capacity() : 1;
  for (uint64_t id = end; id > window;) {
    --id;
    if (JobRecord* r = find(id); r && !fn(*r)) return;
  }
  if (window <= 1) return;  // no id has gone round the table yet
  std::vector<JobRecord*> older;
  for_each([&](JobRecord& r) {
    if (r.id < window && r.id < end) older.push_back(&r);
  });
  std::sort(older.begin(), older.end(), [](auto* a, auto* b) { return a->id > b->id; });
  for (JobRecord* r : older)
    if (!fn(*r)) return;
}

bool JobTable::Lock::changed_since(uint64_t since, std::vector<uint64_t>* ids) {
  const TableHeader& h = header();
  const uint64_t change_seq = h.change_seq;
  if (change_seq - since > kRecentChanges) return false;
  // Counted up to change_seq, never past it: `seq <= change_seq` would
  // never end with a change_seq of UINT64_MAX (a damaged header).
  for (uint64_t seq = since; seq != change_seq;) {
    ++seq;
    const RecentChange& change = h.recent[seq % kRecentChanges];
    // A change of no record (a counter, a dropped job) leaves no entry.
    if (change.change_seq == seq) ids->push_back(change.id);
  }
  return true;
}

void JobTable::Lock::commit_quiet(JobRecord* r) {
  r->checksum = record_checksum(*r);
  __atomic_add_fetch(&header().output_seq, 1, __ATOMIC_ACQ_REL);
  output_changed_ = true;
}

void JobTable::Lock::commit_header() { note_change(); }

void JobTable::Lock::finish(JobRecord* r, JobState state, const Instant& now) {
  TableHeader& h = header();
  r->state = uint8_t(state);
  r->finished_at = now.wall;
  h.counters.finished[uint8_t(state)]++;
  if (TargetStats* stats = target_stats(h, r->target)) {
    stats->finished[uint8_t(state)]++;
    int64_t& last_success = h.target_last_success[stats - h.targets];
    if (state == JobState::succeeded && now.wall > last_success) last_success = now.wall;
    if (r->started_at > 0 && now.mono >= r->started_mono) {
      Micros duration = now.mono - r->started_mono;
      size_t bucket = 0;
      while (bucket < kDurationBuckets && duration > kDurationBucketBounds[bucket]) ++bucket;
      stats->duration_buckets[bucket]++;
      stats->duration_sum_micros += uint64_t(duration);
      stats->duration_count++;
    }
  }
  commit(r);
}

void JobTable::Lock::count_rejection(Rejection why) {
  header().counters.rejected[uint8_t(why)]++;
  note_change();
}

}  // namespace deploy
