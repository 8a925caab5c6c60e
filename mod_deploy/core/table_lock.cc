// The table lock (JobTable::Lock): a process-local mutex plus flock(), taken
// with a bounded wait, and the record accesses made while it is held.
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

}  // namespace deploy
