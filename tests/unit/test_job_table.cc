// The job table file: ids, slots, eviction, recovery of a damaged file at
// start-up, resizing, and wake-ups across processes.
#include "job_table.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "unit_test.h"

namespace {

using deploy::JobRecord;
using deploy::JobState;
using deploy::JobTable;
using deploy::Status;

std::string g_dir;

void set_up() {
  char dir[] = "/tmp/test_job_table.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  g_dir = std::string(dir) + "/state";
}

void tear_down() { std::filesystem::remove_all(std::filesystem::path(g_dir).parent_path()); }

std::unique_ptr<JobTable> open_table(uint32_t capacity, std::vector<std::string>* warnings) {
  std::unique_ptr<JobTable> table;
  Status st = JobTable::open_for_startup(g_dir, capacity, -1, -1, &table, warnings);
  ck_assert_msg(st.is_ok(), "%s", st.message().c_str());
  return table;
}

std::unique_ptr<JobTable> open_table(uint32_t capacity) {
  std::vector<std::string> warnings;
  auto table = open_table(capacity, &warnings);
  ck_assert_msg(warnings.empty(), "unexpected warning: %s",
                warnings.empty() ? "" : warnings[0].c_str());
  return table;
}

// Adds a job in `state`; returns its id.
uint64_t add_job(JobTable& table, JobState state, const char* target = "web") {
  JobTable::Lock lock(table);
  uint64_t evicted = 0;
  JobRecord* r = lock.allocate(&evicted);
  ck_assert_ptr_nonnull(r);
  deploy::store_text(r->target, sizeof r->target, target);
  r->state = uint8_t(state);
  r->submitted_at = deploy::wall_now();
  lock.commit(r);
  return r->id;
}

std::string table_path() { return g_dir + "/jobs.table"; }

START_TEST(ids_start_at_one_and_grow) {
  auto table = open_table(8);
  ck_assert_uint_eq(add_job(*table, JobState::queued), 1);
  ck_assert_uint_eq(add_job(*table, JobState::queued), 2);
  JobTable::Lock lock(*table);
  ck_assert_ptr_nonnull(lock.find(2));
  ck_assert_ptr_null(lock.find(3));
  ck_assert_ptr_null(lock.find(0));
}
END_TEST

START_TEST(allocation_skips_slots_of_unfinished_jobs_and_evicts_finished_ones) {
  auto table = open_table(4);
  ck_assert_uint_eq(add_job(*table, JobState::running), 1);  // slot 1, unfinished
  add_job(*table, JobState::succeeded);                      // 2
  add_job(*table, JobState::succeeded);                      // 3
  add_job(*table, JobState::succeeded);                      // 4 (slot 0)
  JobTable::Lock lock(*table);
  uint64_t evicted = 0;
  JobRecord* r = lock.allocate(&evicted);  // id 5 would take slot 1: skipped
  ck_assert_ptr_nonnull(r);
  ck_assert_uint_eq(r->id, 6);
  ck_assert_uint_eq(evicted, 2);
  ck_assert_ptr_nonnull(lock.find(1));
  ck_assert_ptr_null(lock.find(2));
}
END_TEST

START_TEST(allocation_fails_when_every_job_is_unfinished) {
  auto table = open_table(2);
  add_job(*table, JobState::queued);
  add_job(*table, JobState::running);
  JobTable::Lock lock(*table);
  uint64_t evicted = 0;
  ck_assert_ptr_null(lock.allocate(&evicted));
}
END_TEST

START_TEST(params_round_trip_and_oversized_params_are_refused) {
  auto table = open_table(4);
  JobTable::Lock lock(*table);
  uint64_t evicted = 0;
  JobRecord* r = lock.allocate(&evicted);
  deploy::Params params = {{"version", "1.2.3"}, {"empty", ""}};
  ck_assert(deploy::store_params(*r, params));
  ck_assert(deploy::load_params(*r) == params);
  deploy::Params huge = {{"v", std::string(deploy::kParamsMax, 'x')}};
  ck_assert(!deploy::store_params(*r, huge));
  ck_assert(deploy::load_params(*r) == params);
}
END_TEST

START_TEST(pending_job_takes_its_group_from_the_group_by_param) {
  auto table = open_table(4);
  JobTable::Lock lock(*table);
  uint64_t evicted = 0;
  JobRecord* r = lock.allocate(&evicted);
  ck_assert(deploy::store_params(*r, {{"version", "1.2.3"}, {"vm", "b"}}));
  ck_assert(deploy::pending_job(*r, std::string("vm")).group == "b");
  ck_assert(deploy::pending_job(*r, std::string("host")).group.empty());
  ck_assert(deploy::pending_job(*r, std::nullopt).group.empty());
}
END_TEST

START_TEST(jobs_and_counters_survive_reopening) {
  {
    auto table = open_table(8);
    add_job(*table, JobState::queued);
    uint64_t id = add_job(*table, JobState::running);
    JobTable::Lock lock(*table);
    lock.finish(lock.find(id), JobState::failed, deploy::Instant::now());
  }
  auto table = open_table(8);
  JobTable::Lock lock(*table);
  ck_assert_uint_eq(lock.find(2)->state, uint8_t(JobState::failed));
  ck_assert_uint_eq(lock.header().counters.finished[uint8_t(JobState::failed)], 1);
  ck_assert_uint_eq(lock.header().next_id, 3);
}
END_TEST

START_TEST(a_damaged_record_is_dropped_with_a_warning_and_the_rest_kept) {
  {
    auto table = open_table(8);
    add_job(*table, JobState::succeeded);
    add_job(*table, JobState::succeeded);
  }
  // Garbage over the record of job 1 (slot 1).
  int fd = open(table_path().c_str(), O_WRONLY);
  std::string garbage(100, '\x5a');
  ck_assert_int_eq(
      pwrite(fd, garbage.data(), garbage.size(), deploy::kHeaderSize + deploy::kRecordSize + 8),
      100);
  close(fd);
  std::vector<std::string> warnings;
  auto table = open_table(8, &warnings);
  ck_assert_uint_eq(warnings.size(), 1);
  ck_assert(warnings[0].find("damaged") != std::string::npos);
  JobTable::Lock lock(*table);
  ck_assert_ptr_null(lock.find(1));
  ck_assert_ptr_nonnull(lock.find(2));
  ck_assert_uint_ge(lock.header().next_id, 3);
}
END_TEST

START_TEST(a_truncated_table_keeps_its_complete_records) {
  {
    auto table = open_table(8);
    for (int i = 0; i < 5; ++i) add_job(*table, JobState::succeeded);
  }
  // Cut the file in the middle of slot 4.
  ck_assert_int_eq(
      truncate(table_path().c_str(), off_t(deploy::kHeaderSize + 4 * deploy::kRecordSize + 100)),
      0);
  std::vector<std::string> warnings;
  auto table = open_table(8, &warnings);
  ck_assert_uint_ge(warnings.size(), 1);
  ck_assert(warnings[0].find("truncated") != std::string::npos);
  JobTable::Lock lock(*table);
  for (uint64_t id = 1; id <= 3; ++id) ck_assert_ptr_nonnull(lock.find(id));
  ck_assert_ptr_null(lock.find(4));
  ck_assert_ptr_null(lock.find(5));
  ck_assert_uint_ge(lock.header().next_id, 6);  // the header still knew
}
END_TEST

START_TEST(a_garbage_file_starts_a_new_table_and_ids_continue_after_the_logs) {
  std::filesystem::create_directories(g_dir + "/logs");
  std::ofstream(g_dir + "/logs/41.log") << "old output\n";
  std::ofstream(table_path()) << "this is not a job table";
  std::vector<std::string> warnings;
  auto table = open_table(8, &warnings);
  ck_assert_uint_eq(warnings.size(), 1);
  ck_assert(warnings[0].find("invalid header") != std::string::npos);
  ck_assert_uint_eq(add_job(*table, JobState::queued), 42);
}
END_TEST

START_TEST(resizing_keeps_the_newest_jobs_and_the_counters) {
  {
    auto table = open_table(16);
    for (int i = 0; i < 10; ++i) {
      uint64_t id = add_job(*table, JobState::running);
      JobTable::Lock lock(*table);
      lock.finish(lock.find(id), JobState::succeeded, deploy::Instant::now());
    }
  }
  uint64_t seq_before;
  {
    auto table = open_table(16);
    seq_before = table->change_seq();
  }
  auto table = open_table(4);
  JobTable::Lock lock(*table);
  ck_assert_uint_eq(lock.capacity(), 4);
  for (uint64_t id = 7; id <= 10; ++id) ck_assert_ptr_nonnull(lock.find(id));
  ck_assert_ptr_null(lock.find(6));
  ck_assert_uint_eq(lock.header().counters.finished[uint8_t(JobState::succeeded)], 10);
  ck_assert_uint_ge(lock.header().change_seq, seq_before);
  ck_assert_uint_eq(lock.header().next_id, 11);
}
END_TEST

START_TEST(a_process_attached_to_the_old_file_follows_a_resize) {
  auto first = open_table(8);
  add_job(*first, JobState::running);
  std::unique_ptr<JobTable> attached;
  ck_assert(JobTable::attach(g_dir, &attached).is_ok());
  auto resized = open_table(16);
  {
    JobTable::Lock lock(*attached);  // sees `superseded` and maps the new file
    ck_assert_uint_eq(lock.capacity(), 16);
    JobRecord* r = lock.find(1);
    ck_assert_ptr_nonnull(r);
    r->progress = 55;
    lock.commit(r);
  }
  JobTable::Lock lock(*resized);
  ck_assert_int_eq(lock.find(1)->progress, 55);
}
END_TEST

START_TEST(a_commit_in_another_process_wakes_a_waiter) {
  auto table = open_table(8);
  uint64_t id = add_job(*table, JobState::running);
  uint64_t seen = table->change_seq();
  pid_t child = fork();
  if (child == 0) {
    std::unique_ptr<JobTable> other;
    if (!JobTable::attach(g_dir, &other).is_ok()) _exit(2);
    usleep(50000);
    JobTable::Lock lock(*other);
    lock.find(id)->progress = 10;
    lock.commit(lock.find(id));
    _exit(0);
  }
  deploy::Micros started = deploy::mono_now();
  bool changed = false;
  while (!changed && deploy::mono_now() - started < 5000000)
    changed = table->wait_for_change(seen, 1000000);
  int status;
  waitpid(child, &status, 0);
  ck_assert(changed);
  ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(quiet_commits_wake_output_followers_but_not_change_watchers) {
  auto table = open_table(8);
  uint64_t id = add_job(*table, JobState::running);
  uint64_t change = table->change_seq();
  uint64_t output = table->output_seq();
  {
    JobTable::Lock lock(*table);
    lock.find(id)->log_size = 10;
    lock.commit_quiet(lock.find(id));
  }
  ck_assert(!table->wait_for_change(change, 0));
  ck_assert(table->wait_for_output(output, 0));
}
END_TEST

START_TEST(finish_counts_the_duration_of_a_job_that_ran_on_the_monotonic_clock) {
  auto table = open_table(8);
  uint64_t id = add_job(*table, JobState::running, "db");
  JobTable::Lock lock(*table);
  JobRecord* r = lock.find(id);
  r->started_at = 1000000000;
  r->started_mono = 50000000;
  // 7 s later on the monotonic clock, while the wall clock stepped back a minute.
  lock.finish(r, JobState::succeeded, deploy::Instant{1000000000 - 53000000, 57000000});
  ck_assert_int_eq(r->finished_at, 1000000000 - 53000000);  // shown: the wall clock
  const deploy::TargetStats& stats = lock.header().targets[0];
  ck_assert_str_eq(stats.target, "db");
  ck_assert_uint_eq(stats.finished[uint8_t(JobState::succeeded)], 1);
  ck_assert_uint_eq(stats.duration_buckets[2], 1);
  ck_assert_uint_eq(stats.duration_count, 1);
  ck_assert_uint_eq(stats.duration_sum_micros, 7000000);
}
END_TEST

START_TEST(finish_keeps_each_targets_newest_success_through_trimming_and_resizing) {
  {
    auto table = open_table(4);
    auto finish = [&](const char* target, JobState state, deploy::Micros at) {
      uint64_t id = add_job(*table, JobState::running, target);
      JobTable::Lock lock(*table);
      lock.finish(lock.find(id), state, deploy::Instant{at, at});
    };
    finish("web", JobState::succeeded, 2000000);
    finish("db", JobState::failed, 3000000);
    finish("web", JobState::succeeded, 5000000);
    finish("web", JobState::failed, 6000000);
    // A success that finishes with an earlier time does not move it back.
    finish("web", JobState::succeeded, 4000000);
    // Five jobs in a table of four: the first one has left the history.
    JobTable::Lock lock(*table);
    ck_assert_ptr_null(lock.find(1));
    ck_assert_str_eq(lock.header().targets[0].target, "web");
    ck_assert_str_eq(lock.header().targets[1].target, "db");
    ck_assert_int_eq(lock.header().target_last_success[0], 5000000);
    ck_assert_int_eq(lock.header().target_last_success[1], 0);
  }
  auto resized = open_table(8);
  JobTable::Lock lock(*resized);
  ck_assert_int_eq(lock.header().target_last_success[0], 5000000);
}
END_TEST

std::vector<uint64_t> unfinished_ids(JobTable& table) {
  std::vector<uint64_t> ids;
  JobTable::Lock lock(table);
  lock.for_each_unfinished([&](JobRecord& r) { ids.push_back(r.id); });
  std::sort(ids.begin(), ids.end());
  return ids;
}

START_TEST(unfinished_jobs_are_found_also_far_behind_the_newest_id) {
  auto table = open_table(4);
  add_job(*table, JobState::running);  // 1: stays unfinished while ids move on
  for (int i = 0; i < 20; ++i) {
    uint64_t id = add_job(*table, JobState::running);
    JobTable::Lock lock(*table);
    lock.finish(lock.find(id), JobState::succeeded, deploy::Instant::now());
  }
  uint64_t queued = add_job(*table, JobState::queued);
  ck_assert(unfinished_ids(*table) == std::vector<uint64_t>({1, queued}));
  {
    JobTable::Lock lock(*table);
    lock.finish(lock.find(1), JobState::failed, deploy::Instant::now());
  }
  ck_assert(unfinished_ids(*table) == std::vector<uint64_t>({queued}));
  ck_assert(unfinished_ids(*table) == std::vector<uint64_t>({queued}));  // with the hint
}
END_TEST

START_TEST(changed_since_names_the_jobs_changed_after_a_point) {
  auto table = open_table(8);
  uint64_t a = add_job(*table, JobState::queued);
  uint64_t since = table->change_seq();
  uint64_t b = add_job(*table, JobState::queued);
  {
    JobTable::Lock lock(*table);
    lock.find(a)->progress = 5;
    lock.commit(lock.find(a));
    std::vector<uint64_t> ids;
    ck_assert(lock.changed_since(since, &ids));
    ck_assert(ids == std::vector<uint64_t>({b, a}));
    ids.clear();
    ck_assert(lock.changed_since(lock.header().change_seq, &ids));
    ck_assert(ids.empty());
  }
  for (size_t i = 0; i < deploy::kRecentChanges; ++i) {
    JobTable::Lock lock(*table);
    lock.commit(lock.find(b));
  }
  JobTable::Lock lock(*table);
  std::vector<uint64_t> ids;
  ck_assert(!lock.changed_since(since, &ids));  // too far back: read everything
}
END_TEST

// Found by tests/fuzz/job_table_fuzzer: the header has no checksum, so a
// table reused as it is kept target names that had lost their NUL, and the
// metrics page reads them as C strings.
START_TEST(a_reused_table_ends_every_target_name_of_its_counters) {
  {
    auto table = open_table(2);
    uint64_t id = add_job(*table, JobState::running);
    JobTable::Lock lock(*table);
    lock.finish(lock.find(id), JobState::succeeded, deploy::Instant::now());
  }
  const std::string unterminated(sizeof(deploy::TargetStats::target), 'x');
  int fd = open(table_path().c_str(), O_WRONLY);
  ck_assert_int_eq(pwrite(fd, unterminated.data(), unterminated.size(),
                          off_t(offsetof(deploy::TableHeader, targets))),
                   ssize_t(unterminated.size()));
  close(fd);
  auto table = open_table(2);
  JobTable::Lock lock(*table);
  const deploy::TargetStats& stats = lock.header().targets[0];
  ck_assert_ptr_nonnull(memchr(stats.target, '\0', sizeof stats.target));
  ASSERT_TEXT_EQ(stats.target, unterminated.substr(0, unterminated.size() - 1));
}
END_TEST

// Found by tests/fuzz/job_table_fuzzer: with the change counter of a
// damaged header at UINT64_MAX, changed_since looped for ever.
START_TEST(changed_since_ends_at_the_highest_change_counter) {
  { auto table = open_table(2); }
  const uint64_t highest = UINT64_MAX;
  int fd = open(table_path().c_str(), O_WRONLY);
  ck_assert_int_eq(
      pwrite(fd, &highest, sizeof highest, off_t(offsetof(deploy::TableHeader, change_seq))),
      ssize_t(sizeof highest));
  close(fd);
  auto table = open_table(2);
  JobTable::Lock lock(*table);
  ck_assert(lock.header().change_seq == highest);
  std::vector<uint64_t> ids;
  ck_assert(lock.changed_since(highest - 3, &ids));
  ck_assert_uint_le(ids.size(), 3);
}
END_TEST

START_TEST(a_dropped_log_is_emptied_and_becomes_the_next_log_of_its_slot) {
  auto table = open_table(4);
  // ids 1..5: 1 and 5 share slot 1.
  const int first = table->open_log(1);
  ck_assert_int_ge(first, 0);
  ck_assert_int_eq(write(first, "output\n", 7), 7);
  struct stat before;
  ck_assert_int_eq(fstat(first, &before), 0);
  close(first);

  table->drop_log(1);
  ck_assert(!std::filesystem::exists(table->log_path(1)));
  const std::string spare = g_dir + "/logs/.spare-1";
  ck_assert_uint_eq(std::filesystem::file_size(spare), 0);

  // Another slot's job does not take it; the slot's next job does.
  const int other = table->open_log(6);
  ck_assert_int_ge(other, 0);
  close(other);
  ck_assert(std::filesystem::exists(spare));
  const int reused = table->open_log(5);
  ck_assert_int_ge(reused, 0);
  struct stat after;
  ck_assert_int_eq(fstat(reused, &after), 0);
  ck_assert_uint_eq(after.st_ino, before.st_ino);
  ck_assert_int_eq(after.st_size, 0);
  close(reused);
  ck_assert(!std::filesystem::exists(spare));

  // A log that exists is opened as it is, never replaced by a spare.
  std::ofstream(table->log_path(9)) << "kept\n";
  table->drop_log(5);
  const int existing = table->open_log(9);
  close(existing);
  ck_assert_uint_eq(std::filesystem::file_size(table->log_path(9)), 5);
  ck_assert(std::filesystem::exists(spare));
  // Dropping a job without a log changes nothing.
  table->drop_log(13);
  ck_assert(std::filesystem::exists(spare));
}
END_TEST

START_TEST(
    start_up_keeps_spares_of_existing_slots_only_sweeps_half_written_details_and_ids_ignore_them) {
  std::filesystem::create_directories(g_dir + "/logs");
  for (const char* name :
       {".spare-1", ".spare-7", ".spare-x", "20.log", "20.details", "20.details.new"})
    std::ofstream(g_dir + "/logs/" + name) << "";
  auto table = open_table(4);
  ck_assert(std::filesystem::exists(g_dir + "/logs/.spare-1"));
  ck_assert(!std::filesystem::exists(g_dir + "/logs/.spare-7"));
  ck_assert(!std::filesystem::exists(g_dir + "/logs/.spare-x"));
  // A details file left half written is swept; a written one stays.
  ck_assert(std::filesystem::exists(g_dir + "/logs/20.details"));
  ck_assert(!std::filesystem::exists(g_dir + "/logs/20.details.new"));
  ck_assert_uint_eq(add_job(*table, JobState::queued), 21);
}
END_TEST

START_TEST(newest_first_reaches_old_unfinished_jobs_and_stops_when_told) {
  auto table = open_table(4);
  // Job 1 stays queued in its slot while ids go round the table several
  // times (ids that would land on its slot are skipped).
  const uint64_t old_queued = add_job(*table, JobState::queued);
  for (int i = 0; i < 10; ++i) add_job(*table, JobState::succeeded);
  JobTable::Lock lock(*table);
  std::vector<uint64_t> all;
  lock.for_each([&](JobRecord& r) { all.push_back(r.id); });
  std::sort(all.rbegin(), all.rend());
  ck_assert_uint_eq(all.back(), old_queued);
  ck_assert_uint_gt(all.front() - old_queued, lock.capacity());

  auto visit = [&](uint64_t before, size_t stop_after) {
    std::vector<uint64_t> seen;
    lock.for_each_newest_first(before, [&](JobRecord& r) {
      seen.push_back(r.id);
      return seen.size() < stop_after;
    });
    return seen;
  };
  ck_assert(visit(0, 100) == all);
  ck_assert(visit(0, 2) == std::vector<uint64_t>(all.begin(), all.begin() + 2));
  // Below an id: the newer ones are left out, the old queued job is still found.
  std::vector<uint64_t> below(all.begin() + 1, all.end());
  ck_assert(visit(all[0], 100) == below);
  ck_assert(visit(old_queued + 1, 100) == std::vector<uint64_t>{old_queued});
  ck_assert(visit(old_queued, 100).empty());
}
END_TEST

// Bytes the file system has allocated for the file at `path`.
uint64_t allocated_bytes(const std::string& path) {
  struct stat st;
  ck_assert_int_eq(stat(path.c_str(), &st), 0);
  return uint64_t(st.st_blocks) * 512;
}

START_TEST(a_new_table_is_allocated_on_disk_not_sparse) {
  auto table = open_table(64);
  const std::string path = g_dir + "/jobs.table";
  const uint64_t size = std::filesystem::file_size(path);
  ck_assert_uint_ge(allocated_bytes(path), size);
}
END_TEST

START_TEST(a_sparse_table_from_an_older_version_is_allocated_at_start_up) {
  { auto table = open_table(64); }
  const std::string path = g_dir + "/jobs.table";
  const uint64_t size = std::filesystem::file_size(path);
  // Punch the records out, as an older version left them: never written.
  int fd = open(path.c_str(), O_RDWR);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(
      fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536, off_t(size - 65536)), 0);
  close(fd);
  ck_assert_uint_lt(allocated_bytes(path), size);
  auto table = open_table(64);
  ck_assert_uint_ge(allocated_bytes(path), size);
}
END_TEST

START_TEST(make_durable_flushes_with_sync_on_and_not_with_sync_off) {
  auto table = open_table(64);
  add_job(*table, JobState::queued);
  uint64_t done_before = 0;
  {
    JobTable::Lock lock(*table);
    done_before = lock.header().sync_done;
  }
  ck_assert(table->make_durable().is_ok());
  {
    JobTable::Lock lock(*table);
    ck_assert_uint_eq(lock.header().sync_done, done_before + 1);
    ck_assert_uint_eq(lock.header().sync_started, lock.header().sync_done);
  }
  table->set_sync(false);
  add_job(*table, JobState::queued);
  ck_assert(table->make_durable().is_ok());
  JobTable::Lock lock(*table);
  ck_assert_uint_eq(lock.header().sync_done, done_before + 1);
}
END_TEST

START_TEST(a_flush_begun_before_a_change_does_not_serve_it) {
  auto table = open_table(64);
  {
    // Another process began a flush (and finished it) before our change:
    // the generation it reached is not enough.
    JobTable::Lock lock(*table);
    lock.header().sync_started = 7;
    lock.header().sync_done = 7;
  }
  add_job(*table, JobState::queued);
  ck_assert(table->make_durable().is_ok());
  JobTable::Lock lock(*table);
  ck_assert_uint_eq(lock.header().sync_done, 8);
}
END_TEST

START_TEST(an_impossible_flush_generation_is_reset_at_start_up) {
  {
    auto table = open_table(64);
    JobTable::Lock lock(*table);
    lock.header().sync_started = 3;
    lock.header().sync_done = UINT64_MAX;  // would skip every flush
  }
  auto table = open_table(64);
  JobTable::Lock lock(*table);
  ck_assert_uint_le(lock.header().sync_done, lock.header().sync_started);
}
END_TEST

START_TEST(the_sync_setting_is_kept_in_the_table_for_every_process) {
  auto table = open_table(64);
  table->set_sync(false);
  std::unique_ptr<JobTable> other;
  ck_assert(JobTable::attach(g_dir, &other).is_ok());
  JobTable::Lock lock(*other);
  ck_assert_uint_eq(lock.header().sync_off, 1);
}
END_TEST

Suite* job_table_suite() {
  Suite* suite = suite_create("job_table");
  TCase* tc = deploy::test::case_with_fixture("job_table", set_up, tear_down, 20);
  tcase_add_test(tc, ids_start_at_one_and_grow);
  tcase_add_test(tc, a_new_table_is_allocated_on_disk_not_sparse);
  tcase_add_test(tc, a_sparse_table_from_an_older_version_is_allocated_at_start_up);
  tcase_add_test(tc, make_durable_flushes_with_sync_on_and_not_with_sync_off);
  tcase_add_test(tc, a_flush_begun_before_a_change_does_not_serve_it);
  tcase_add_test(tc, an_impossible_flush_generation_is_reset_at_start_up);
  tcase_add_test(tc, the_sync_setting_is_kept_in_the_table_for_every_process);
  tcase_add_test(tc, allocation_skips_slots_of_unfinished_jobs_and_evicts_finished_ones);
  tcase_add_test(tc, allocation_fails_when_every_job_is_unfinished);
  tcase_add_test(tc, params_round_trip_and_oversized_params_are_refused);
  tcase_add_test(tc, pending_job_takes_its_group_from_the_group_by_param);
  tcase_add_test(tc, jobs_and_counters_survive_reopening);
  tcase_add_test(tc, a_damaged_record_is_dropped_with_a_warning_and_the_rest_kept);
  tcase_add_test(tc, a_truncated_table_keeps_its_complete_records);
  tcase_add_test(tc, a_garbage_file_starts_a_new_table_and_ids_continue_after_the_logs);
  tcase_add_test(tc, resizing_keeps_the_newest_jobs_and_the_counters);
  tcase_add_test(tc, a_process_attached_to_the_old_file_follows_a_resize);
  tcase_add_test(tc, a_commit_in_another_process_wakes_a_waiter);
  tcase_add_test(tc, quiet_commits_wake_output_followers_but_not_change_watchers);
  tcase_add_test(tc, finish_counts_the_duration_of_a_job_that_ran_on_the_monotonic_clock);
  tcase_add_test(tc, finish_keeps_each_targets_newest_success_through_trimming_and_resizing);
  tcase_add_test(tc, unfinished_jobs_are_found_also_far_behind_the_newest_id);
  tcase_add_test(tc, changed_since_names_the_jobs_changed_after_a_point);
  tcase_add_test(tc, a_reused_table_ends_every_target_name_of_its_counters);
  tcase_add_test(tc, changed_since_ends_at_the_highest_change_counter);
  tcase_add_test(tc, a_dropped_log_is_emptied_and_becomes_the_next_log_of_its_slot);
  tcase_add_test(tc, newest_first_reaches_old_unfinished_jobs_and_stops_when_told);
  tcase_add_test(
      tc,
      start_up_keeps_spares_of_existing_slots_only_sweeps_half_written_details_and_ids_ignore_them);
  suite_add_tcase(suite, tc);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(job_table_suite);
