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

long table_file::futex(uint32_t* word, int op, uint32_t value, const struct timespec* timeout) {
  return syscall(SYS_futex, word, op, value, timeout, nullptr, 0);
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

JobTable::~JobTable() {
  if (TableHeader* h = header_.load()) munmap(h, mapped_size_);
  for (auto& [addr, size] : retired_) munmap(addr, size);
  if (lock_fd_ >= 0) ::close(lock_fd_);
  if (table_fd_ >= 0) ::close(table_fd_);
  for (int fd : retired_fds_) ::close(fd);
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
      const uint64_t changes = __atomic_load_n(&h->change_seq, __ATOMIC_ACQUIRE);
      if (fdatasync(fd) == 0) {
        if (__atomic_load_n(&h->sync_done, __ATOMIC_ACQUIRE) < generation)
          __atomic_store_n(&h->sync_done, generation, __ATOMIC_RELEASE);
        if (__atomic_load_n(&h->durable_seq, __ATOMIC_ACQUIRE) < changes)
          __atomic_store_n(&h->durable_seq, changes, __ATOMIC_RELEASE);
      } else {
        st = Status::error(errno_text("cannot flush", state_dir_ + "/jobs.table"));
      }
    }
    flock(fd, LOCK_UN);
    bump_and_wake(&h->sync_wake_word);
    return st;
  }
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

}  // namespace

void table_file::bump_and_wake(uint32_t* word) {
  __atomic_add_fetch(word, 1, __ATOMIC_ACQ_REL);
  futex(word, FUTEX_WAKE, INT_MAX, nullptr);
}

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

}  // namespace deploy
