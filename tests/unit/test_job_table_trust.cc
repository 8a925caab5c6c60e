// The job table when another process misbehaves: a header written into
// nonsense while the table is mapped, records damaged under a reader, and the
// table lock held for ever. Every process of httpd's user can do both.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "job_table.h"
#include "unit_test.h"

namespace {

using deploy::JobRecord;
using deploy::JobState;
using deploy::JobTable;
using deploy::Micros;
using deploy::Status;
using deploy::TableHeader;

constexpr uint32_t kCapacity = 8;
// Short lock timeouts keep the tests fast; the product's is kLockTimeout.
constexpr Micros kShortTimeout = 300000;

std::string g_dir;

void set_up() {
  char dir[] = "/tmp/test_job_table_trust.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  g_dir = std::string(dir) + "/state";
}

void tear_down() { std::filesystem::remove_all(std::filesystem::path(g_dir).parent_path()); }

std::string table_path() { return g_dir + "/jobs.table"; }

std::unique_ptr<JobTable> open_table(std::vector<std::string>* warnings = nullptr) {
  std::vector<std::string> ignored;
  std::unique_ptr<JobTable> table;
  Status st =
      JobTable::open_for_startup(g_dir, kCapacity, -1, -1, &table, warnings ? warnings : &ignored);
  ck_assert_msg(st.is_ok(), "%s", st.message().c_str());
  return table;
}

std::unique_ptr<JobTable> attach() {
  std::unique_ptr<JobTable> table;
  Status st = JobTable::attach(g_dir, &table);
  ck_assert_msg(st.is_ok(), "%s", st.message().c_str());
  return table;
}

uint64_t add_job(JobTable& table, JobState state) {
  JobTable::Lock lock(table);
  ck_assert(lock.held());
  uint64_t evicted = 0;
  JobRecord* r = lock.allocate(&evicted);
  ck_assert_ptr_nonnull(r);
  deploy::store_text(r->target, sizeof r->target, "web");
  r->state = uint8_t(state);
  lock.commit(r);
  return r->id;
}

// Writes `value` at `offset` of the file, as another process would.
template <typename T>
void overwrite(size_t offset, const T& value) {
  int fd = open(table_path().c_str(), O_RDWR | O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(pwrite(fd, &value, sizeof value, off_t(offset)), ssize_t(sizeof value));
  close(fd);
}

template <typename T>
T read_at(size_t offset) {
  T value{};
  std::ifstream in(table_path(), std::ios::binary);
  in.seekg(std::streamoff(offset));
  in.read(reinterpret_cast<char*>(&value), sizeof value);
  return value;
}

// The jobs of the test: one of each kind a reader meets.
struct Jobs {
  uint64_t queued, running, succeeded;
};

Jobs add_jobs(JobTable& table) {
  return Jobs{add_job(table, JobState::queued), add_job(table, JobState::running),
              add_job(table, JobState::succeeded)};
}

// Every way a process reads and writes the table, through `table`: none may
// crash, and the jobs stay readable.
void use_every_operation(JobTable& table, const Jobs& jobs) {
  JobTable::Lock lock(table, kShortTimeout);
  ck_assert(lock.held());
  ck_assert_uint_eq(lock.capacity(), kCapacity);
  for (uint64_t id : {jobs.queued, jobs.running, jobs.succeeded}) {
    JobRecord* r = lock.find(id);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->id, id);
  }
  ck_assert_ptr_null(lock.find(UINT64_MAX));
  size_t seen = 0;
  lock.for_each([&](JobRecord&) { ++seen; });
  ck_assert_uint_ge(seen, 3);
  size_t unfinished = 0;
  lock.for_each_unfinished([&](JobRecord& r) {
    ck_assert(!deploy::is_final(JobState(r.state)));
    ++unfinished;
  });
  ck_assert_uint_ge(unfinished, 2);
  size_t listed = 0;
  lock.for_each_newest_first(0, [&](JobRecord&) { return ++listed < 100; });
  lock.for_each_newest_first(UINT64_MAX, [&](JobRecord&) { return ++listed < 100; });
  std::vector<uint64_t> ids;
  lock.changed_since(0, &ids);
  lock.changed_since(UINT64_MAX, &ids);
  for (uint64_t id : ids) (void)lock.find(id);
  uint64_t evicted = 0;
  bool damaged = false;
  if (JobRecord* r = lock.allocate(&evicted, &damaged)) {
    // Never an id that a job of the table already has.
    for (uint64_t id : {jobs.queued, jobs.running, jobs.succeeded}) ck_assert_uint_ne(r->id, id);
    ck_assert_uint_ne(r->id, 0);
    deploy::store_text(r->target, sizeof r->target, "web");
    r->state = uint8_t(JobState::queued);
    lock.commit(r);
    lock.finish(r, JobState::canceled, deploy::Instant::now());
  }
  JobRecord* running = lock.find(jobs.running);
  running->progress = 50;
  lock.commit(running);
  lock.commit_quiet(running);
  lock.count_rejection(deploy::Rejection::bad_request);
}

// Each damage of the header, written while `reader` has the file mapped.
struct Damage {
  const char* name;
  void (*apply)();
};

const Damage kDamages[] = {
    {"capacity 0", [] { overwrite(offsetof(TableHeader, capacity), uint32_t(0)); }},
    {"capacity huge", [] { overwrite(offsetof(TableHeader, capacity), uint32_t(UINT32_MAX)); }},
    {"capacity 1", [] { overwrite(offsetof(TableHeader, capacity), uint32_t(1)); }},
    {"next_id at UINT64_MAX", [] { overwrite(offsetof(TableHeader, next_id), UINT64_MAX); }},
    {"next_id 0", [] { overwrite(offsetof(TableHeader, next_id), uint64_t(0)); }},
    {"next_id behind the jobs", [] { overwrite(offsetof(TableHeader, next_id), uint64_t(1)); }},
    {"oldest_unfinished huge",
     [] { overwrite(offsetof(TableHeader, oldest_unfinished), uint64_t(UINT64_MAX - 3)); }},
    {"change_seq at UINT64_MAX", [] { overwrite(offsetof(TableHeader, change_seq), UINT64_MAX); }},
    {"recent changes garbage",
     [] {
       std::vector<unsigned char> garbage(sizeof(TableHeader::recent));
       for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = (unsigned char)(i * 131 + 7);
       int fd = open(table_path().c_str(), O_RDWR | O_CLOEXEC);
       ck_assert_int_eq(pwrite(fd, garbage.data(), garbage.size(), offsetof(TableHeader, recent)),
                        ssize_t(garbage.size()));
       close(fd);
     }},
    {"target names without their end",
     [] {
       std::vector<char> names(sizeof(TableHeader::targets), 'x');
       int fd = open(table_path().c_str(), O_RDWR | O_CLOEXEC);
       ck_assert_int_eq(pwrite(fd, names.data(), names.size(), offsetof(TableHeader, targets)),
                        ssize_t(names.size()));
       close(fd);
     }},
    {"record size", [] { overwrite(offsetof(TableHeader, record_size), uint32_t(7)); }},
    {"magic broken", [] { overwrite(offsetof(TableHeader, magic), uint64_t(0)); }},
};

START_TEST(every_damaged_header_field_leaves_reads_and_writes_working) {
  const Damage& damage = kDamages[_i];
  auto table = open_table();
  const Jobs jobs = add_jobs(*table);
  auto reader = attach();
  damage.apply();
  // Both the table mapped at start-up and the one attached later go on.
  use_every_operation(*reader, jobs);
  use_every_operation(*table, jobs);
}
END_TEST

START_TEST(a_next_id_out_of_range_refuses_new_jobs_as_damage) {
  auto table = open_table();
  const Jobs jobs = add_jobs(*table);
  overwrite(offsetof(TableHeader, next_id), UINT64_MAX);
  JobTable::Lock lock(*table, kShortTimeout);
  uint64_t evicted = 0;
  bool damaged = false;
  ck_assert_ptr_null(lock.allocate(&evicted, &damaged));
  ck_assert(damaged);
  ck_assert_ptr_nonnull(lock.find(jobs.queued));
}
END_TEST

START_TEST(a_record_that_does_not_validate_reads_as_absent) {
  auto table = open_table();
  const Jobs jobs = add_jobs(*table);
  const size_t queued_at = deploy::kHeaderSize + (jobs.queued % kCapacity) * deploy::kRecordSize;
  const size_t running_at = deploy::kHeaderSize + (jobs.running % kCapacity) * deploy::kRecordSize;
  overwrite(queued_at + offsetof(JobRecord, state), uint8_t(200));  // indexes the counters
  std::vector<char> unterminated(sizeof(JobRecord::target), 'x');
  int fd = open(table_path().c_str(), O_RDWR | O_CLOEXEC);
  ck_assert_int_eq(pwrite(fd, unterminated.data(), unterminated.size(),
                          off_t(running_at + offsetof(JobRecord, target))),
                   ssize_t(unterminated.size()));
  close(fd);
  JobTable::Lock lock(*table, kShortTimeout);
  ck_assert_ptr_null(lock.find(jobs.queued));
  ck_assert_ptr_null(lock.find(jobs.running));
  ck_assert_ptr_nonnull(lock.find(jobs.succeeded));
  size_t seen = 0;
  lock.for_each([&](JobRecord&) { ++seen; });
  lock.for_each_unfinished([&](JobRecord&) { ++seen; });
  ck_assert_uint_eq(seen, 1);
}
END_TEST

size_t mappings_of_the_table() {
  std::ifstream maps("/proc/self/maps");
  size_t n = 0;
  for (std::string line; std::getline(maps, line);)
    n += line.find(table_path()) != std::string::npos;
  return n;
}

START_TEST(a_forged_superseded_mark_does_not_make_every_lock_map_the_file_again) {
  auto table = open_table();
  const Jobs jobs = add_jobs(*table);
  overwrite(offsetof(TableHeader, superseded), uint32_t(1));
  const size_t before = mappings_of_the_table();
  for (int i = 0; i < 50; ++i) {
    JobTable::Lock lock(*table, kShortTimeout);
    ck_assert(lock.held());
    ck_assert_ptr_nonnull(lock.find(jobs.running));
  }
  ck_assert_uint_eq(mappings_of_the_table(), before);
}
END_TEST

START_TEST(a_damaged_header_refuses_a_new_attach_with_an_error) {
  auto table = open_table();
  add_jobs(*table);
  overwrite(offsetof(TableHeader, capacity), uint32_t(0));
  std::unique_ptr<JobTable> other;
  Status st = JobTable::attach(g_dir, &other);
  ck_assert(!st.is_ok());
  ck_assert(st.message().find("invalid header") != std::string::npos);
}
END_TEST

// Start-up repairs what the damage left: the jobs are kept, ids go on.
START_TEST(start_up_repairs_an_overwritten_capacity_or_next_id) {
  const Damage& damage = kDamages[_i];
  Jobs jobs;
  {
    auto table = open_table();
    jobs = add_jobs(*table);
  }
  damage.apply();
  std::vector<std::string> warnings;
  auto table = open_table(&warnings);
  ck_assert_uint_eq(read_at<uint32_t>(offsetof(TableHeader, capacity)), kCapacity);
  JobTable::Lock lock(*table);
  for (uint64_t id : {jobs.queued, jobs.running, jobs.succeeded})
    ck_assert_msg(lock.find(id) != nullptr, "%s: job %llu lost", damage.name,
                  (unsigned long long)id);
  ck_assert_uint_eq(lock.header().next_id, jobs.succeeded + 1);
  ck_assert_uint_eq(lock.header().superseded, 0);
}
END_TEST

// A process that takes the lock file and keeps it, as `flock -x lock sleep`
// would; it lets go when `release` is written to.
struct Holder {
  pid_t pid = -1;
  int release = -1;

  void start() {
    int ready[2], go[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      close(go[1]);  // so that the parent's close ends the read below
      close(ready[0]);
      int fd = open((g_dir + "/lock").c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0 || flock(fd, LOCK_EX) != 0) _exit(2);
      char c = 'r';
      if (write(ready[1], &c, 1) != 1) _exit(3);
      if (read(go[0], &c, 1) < 0) _exit(4);
      _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    release = go[1];
  }
  void stop() {
    if (pid <= 0) return;
    close(release);
    int status;
    waitpid(pid, &status, 0);
    pid = -1;
  }
};

Micros elapsed_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

START_TEST(a_lock_held_by_another_process_fails_after_the_timeout_naming_its_holder) {
  auto table = open_table();
  const uint64_t id = add_job(*table, JobState::queued);
  Holder holder;
  holder.start();
  {
    const auto start = std::chrono::steady_clock::now();
    JobTable::Lock lock(*table, kShortTimeout);
    const Micros waited = elapsed_since(start);
    ck_assert(!lock.held());
    ck_assert_int_ge(waited, kShortTimeout);
    ck_assert_int_lt(waited, 10 * kShortTimeout);
    ck_assert_msg(
        lock.status().message().find("pid " + std::to_string(holder.pid)) != std::string::npos,
        "%s", lock.status().message().c_str());
  }
  holder.stop();
  JobTable::Lock lock(*table, kShortTimeout);
  ck_assert(lock.held());
  ck_assert_ptr_nonnull(lock.find(id));
}
END_TEST

// The descriptor of `name` in this process (from /proc/self/fd), or -1.
int descriptor_of(const std::string& name) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    const auto target = std::filesystem::read_symlink(entry.path(), error);
    if (!error && target.filename() == name) return std::stoi(entry.path().filename().string());
  }
  return -1;
}

// A runner is forked from the launcher and closes every descriptor before it
// opens its own: its new lock may get the number the table had. The lock it
// takes must still exclude every other process.
START_TEST(a_child_that_closed_its_descriptors_locks_the_table_alone) {
  auto table = open_table();
  const int table_fd = descriptor_of("jobs.table");
  ck_assert_int_ge(table_fd, 3);
  int ready[2], go[2];
  ck_assert_int_eq(pipe(ready), 0);
  ck_assert_int_eq(pipe(go), 0);
  const pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (dup2(ready[1], 1000) < 0 || dup2(go[0], 1001) < 0) _exit(2);
    for (int fd = 3; fd < 1000; ++fd) close(fd);
    // Every number below the table's is taken: the lock gets the table's.
    for (int fd = 3; fd < table_fd; ++fd)
      if (dup2(1000, fd) < 0) _exit(3);
    if (!table->open_lock_after_fork().is_ok()) _exit(4);
    JobTable::Lock lock(*table, kShortTimeout);
    if (!lock.held()) _exit(5);
    char c = 'r';
    if (write(1000, &c, 1) != 1) _exit(6);
    if (read(1001, &c, 1) < 0) _exit(7);
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  char c;
  ck_assert_int_eq(read(ready[0], &c, 1), 1);
  {
    JobTable::Lock lock(*table, kShortTimeout);
    ck_assert_msg(!lock.held(), "two processes held the table lock at once");
  }
  close(go[1]);
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
  close(ready[0]);
}
END_TEST

START_TEST(a_waiter_takes_the_lock_as_soon_as_it_is_free) {
  auto table = open_table();
  Holder holder;
  holder.start();
  std::thread release([&] {
    usleep(200000);
    holder.stop();
  });
  const auto start = std::chrono::steady_clock::now();
  {
    JobTable::Lock lock(*table, 60 * kShortTimeout);
    ck_assert(lock.held());
  }
  const Micros waited = elapsed_since(start);
  release.join();
  ck_assert_int_ge(waited, 150000);
  ck_assert_int_lt(waited, 30 * kShortTimeout);  // long before the deadline
  // No timer signal is left behind to interrupt this thread later.
  ck_assert_int_eq(usleep(100000), 0);
}
END_TEST

START_TEST(a_thread_behind_another_thread_that_waits_for_the_lock_gives_up_too) {
  auto table = open_table();
  Holder holder;
  holder.start();
  bool first_held = true;
  std::thread first([&] {
    JobTable::Lock lock(*table, 20 * kShortTimeout);  // waits for the other process
    first_held = lock.held();
  });
  usleep(50000);  // let `first` take the process's mutex (harmless if it has not yet)
  const auto start = std::chrono::steady_clock::now();
  {
    JobTable::Lock lock(*table, kShortTimeout);
    ck_assert(!lock.held());
  }
  ck_assert_int_lt(elapsed_since(start), 10 * kShortTimeout);
  holder.stop();
  first.join();
  ck_assert(first_held);
}
END_TEST

START_TEST(busy_rejections_reach_the_counters_once_the_table_is_free) {
  auto table = open_table();
  table->count_busy_rejection();
  table->count_busy_rejection();
  auto other = attach();
  JobTable::Lock lock(*table);
  ck_assert_uint_eq(lock.header().counters.rejected[size_t(deploy::Rejection::busy)], 2);
  ck_assert(deploy::rejection_name(deploy::Rejection::busy) == "busy");
}
END_TEST

Suite* job_table_trust_suite() {
  Suite* suite = suite_create("job_table_trust");
  TCase* tc = deploy::test::case_with_fixture("job_table_trust", set_up, tear_down, 30);
  tcase_add_loop_test(tc, every_damaged_header_field_leaves_reads_and_writes_working, 0,
                      int(std::size(kDamages)));
  tcase_add_test(tc, a_next_id_out_of_range_refuses_new_jobs_as_damage);
  tcase_add_test(tc, a_record_that_does_not_validate_reads_as_absent);
  tcase_add_test(tc, a_forged_superseded_mark_does_not_make_every_lock_map_the_file_again);
  tcase_add_test(tc, a_damaged_header_refuses_a_new_attach_with_an_error);
  // capacity 0, capacity huge, capacity 1, next_id at UINT64_MAX, next_id 0
  tcase_add_loop_test(tc, start_up_repairs_an_overwritten_capacity_or_next_id, 0, 5);
  tcase_add_test(tc, a_lock_held_by_another_process_fails_after_the_timeout_naming_its_holder);
  tcase_add_test(tc, a_child_that_closed_its_descriptors_locks_the_table_alone);
  tcase_add_test(tc, a_waiter_takes_the_lock_as_soon_as_it_is_free);
  tcase_add_test(tc, a_thread_behind_another_thread_that_waits_for_the_lock_gives_up_too);
  tcase_add_test(tc, busy_rejections_reach_the_counters_once_the_table_is_free);
  suite_add_tcase(suite, tc);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(job_table_trust_suite);
