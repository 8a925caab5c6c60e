// The job table's two clocks: a version-1 file (wall times only) is upgraded
// at start-up with nothing lost, the monotonic times of another boot are
// rebased, and a step of the wall clock changes no scheduling decision.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "job_table.h"
#include "scheduler.h"
#include "unit_test.h"

namespace {

using deploy::Instant;
using deploy::JobRecord;
using deploy::JobState;
using deploy::JobTable;
using deploy::Micros;

constexpr Micros kSecond = 1000000;
constexpr Micros kHour = 3600 * kSecond;

std::string g_dir;

void set_up() {
  char dir[] = "/tmp/test_job_table_clocks.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  g_dir = std::string(dir) + "/state";
  std::filesystem::create_directories(g_dir + "/logs");
}

void tear_down() { std::filesystem::remove_all(std::filesystem::path(g_dir).parent_path()); }

std::string table_path() { return g_dir + "/jobs.table"; }

std::unique_ptr<JobTable> open_table(uint32_t capacity, std::vector<std::string>* warnings) {
  std::unique_ptr<JobTable> table;
  deploy::Status st = JobTable::open_for_startup(g_dir, capacity, -1, -1, &table, warnings);
  ck_assert_msg(st.is_ok(), "%s", st.message().c_str());
  return table;
}

// ---------------------------------------------------------------- version 1
// The file as the code before the monotonic times wrote it, byte by byte.

constexpr size_t kV1HeaderSize = 65536;
constexpr size_t kV1RecordSize = 2048;
constexpr size_t kV1ParamsAt = 644;

template <typename T>
void put(std::vector<char>& bytes, size_t at, T value) {
  memcpy(bytes.data() + at, &value, sizeof value);
}

void put_text(std::vector<char>& bytes, size_t at, const std::string& text) {
  memcpy(bytes.data() + at, text.data(), text.size());
}

// FNV-1a over the record, its checksum (bytes 8..15) taken as zero.
uint64_t v1_checksum(const char* record) {
  uint64_t hash = 1469598103934665603ULL;
  for (size_t i = 0; i < kV1RecordSize; ++i)
    hash =
        (hash ^ (i >= 8 && i < 16 ? 0 : static_cast<unsigned char>(record[i]))) * 1099511628211ULL;
  return hash;
}

struct V1Job {
  uint64_t id;
  JobState state;
  Micros submitted_at, not_before, started_at, finished_at;
  std::string params;  // "NAME\0VALUE\0" pairs
};

void put_v1_record(std::vector<char>& file, uint32_t capacity, const V1Job& job) {
  const size_t at = kV1HeaderSize + (job.id % capacity) * kV1RecordSize;
  put<uint64_t>(file, at + 0, job.id);
  put<uint64_t>(file, at + 16, job.id);  // change_seq
  put<int64_t>(file, at + 24, job.submitted_at);
  put<int64_t>(file, at + 32, job.not_before);
  put<int64_t>(file, at + 40, job.started_at);
  put<int64_t>(file, at + 48, job.finished_at);
  put<uint32_t>(file, at + 88, 1);  // requests
  put<uint8_t>(file, at + 92, uint8_t(job.state));
  put<int8_t>(file, at + 98, -1);  // progress
  put<uint16_t>(file, at + 100, uint16_t(job.params.size()));
  put_text(file, at + 108, "web");  // target
  put_text(file, at + kV1ParamsAt, job.params);
  put<uint64_t>(file, at + 8, v1_checksum(file.data() + at));
}

std::vector<char> v1_file(uint32_t capacity, uint64_t next_id) {
  std::vector<char> file(kV1HeaderSize + capacity * kV1RecordSize, '\0');
  put_text(file, 0, "DEPLOYT1");
  put<uint32_t>(file, 8, 1);  // version
  put<uint32_t>(file, 12, kV1RecordSize);
  put<uint32_t>(file, 16, capacity);
  put<uint64_t>(file, 24, next_id);
  put<uint64_t>(file, 32, next_id - 1);  // change_seq
  put<uint64_t>(file, 240, 41);          // counters.accepted
  return file;
}

void write_file(const std::vector<char>& bytes) {
  int fd = open(table_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, bytes.data(), bytes.size()), ssize_t(bytes.size()));
  close(fd);
}

std::string pair(const std::string& name, const std::string& value) {
  return name + '\0' + value + '\0';
}

// Version 2 kept every field of version 1 where it was.
static_assert(offsetof(JobRecord, submitted_at) == 24 && offsetof(JobRecord, state) == 92 &&
              offsetof(JobRecord, params_size) == 100 && offsetof(JobRecord, target) == 108 &&
              offsetof(JobRecord, params) == kV1ParamsAt);
static_assert(offsetof(deploy::TableHeader, next_id) == 24 &&
              offsetof(deploy::TableHeader, counters.accepted) == 240);

bool near(Micros actual, Micros expected) {
  return actual > expected - kSecond && actual < expected + kSecond;
}

START_TEST(a_version_1_file_is_upgraded_in_place_and_keeps_every_job) {
  constexpr uint32_t kCapacity = 8;
  const Instant then = Instant::now();
  std::vector<char> file = v1_file(kCapacity, 5);
  put_v1_record(file, kCapacity,
                {1, JobState::succeeded, then.wall - 60 * kSecond, 0, then.wall - 59 * kSecond,
                 then.wall - 50 * kSecond, pair("version", "1.2.3")});
  put_v1_record(file, kCapacity,
                {2, JobState::waiting, then.wall - kSecond, then.wall + 4 * kSecond, 0, 0,
                 pair("version", "1.2.4")});
  // Params that used the whole of version 1's room, 24 bytes more than now.
  const std::string fits = pair("a", std::string(1300, 'x'));
  const std::string too_long =
      fits + pair("b", std::string(deploy::kParamsMaxVersion1 - 1 - fits.size() - 3, 'y'));
  ck_assert_uint_eq(too_long.size(), deploy::kParamsMaxVersion1 - 1);
  put_v1_record(file, kCapacity,
                {3, JobState::failed, then.wall - 30 * kSecond, 0, then.wall - 29 * kSecond,
                 then.wall - 20 * kSecond, too_long});
  put_v1_record(file, kCapacity, {4, JobState::queued, then.wall - 2 * kSecond, 0, 0, 0, too_long});
  write_file(file);

  std::vector<std::string> warnings;
  auto table = open_table(kCapacity, &warnings);
  ck_assert_uint_eq(warnings.size(), 2);  // jobs 3 and 4
  ck_assert(warnings[0].find("parameters") != std::string::npos);
  const Instant now = Instant::now();
  JobTable::Lock lock(*table);
  ck_assert_uint_eq(lock.header().version, 3);
  ASSERT_TEXT_EQ(lock.header().boot_id, deploy::boot_id());
  ck_assert_uint_eq(lock.header().next_id, 5);
  ck_assert_uint_eq(lock.header().counters.accepted, 41);
  for (uint64_t id = 1; id <= 4; ++id) {
    JobRecord* r = lock.find(id);
    ck_assert_ptr_nonnull(r);
    ck_assert(deploy::record_is_valid(*r, kCapacity, id % kCapacity));
  }
  JobRecord* done = lock.find(1);
  ck_assert(deploy::load_params(*done) == (deploy::Params{{"version", "1.2.3"}}));
  ck_assert_int_eq(done->started_at, then.wall - 59 * kSecond);
  ck_assert(near(done->started_mono, now.mono - 59 * kSecond));

  // The waiting job still starts 4 s after the file was written.
  JobRecord* waiting = lock.find(2);
  ck_assert_uint_eq(waiting->state, uint8_t(JobState::waiting));
  ck_assert(deploy::load_params(*waiting) == (deploy::Params{{"version", "1.2.4"}}));
  ck_assert(near(waiting->submitted_mono, now.mono - kSecond));
  ck_assert(near(waiting->not_before_mono, now.mono + 4 * kSecond));
  ck_assert_int_eq(waiting->not_before, then.wall + 4 * kSecond);
  std::map<std::string, deploy::TargetPolicy> policies = {{"web", {}}};
  const deploy::ScheduleDecision d =
      deploy::schedule({deploy::pending_job(*waiting, std::nullopt)}, policies, {}, now.mono);
  ck_assert(d.ready.empty());
  ck_assert(near(d.next_due, now.mono + 4 * kSecond));

  // Too long params: the pairs that fit stay; a job that had not started
  // cannot run without the others and expired; a finished one just shows less.
  const deploy::Params kept = {{"a", std::string(1300, 'x')}};
  ck_assert(deploy::load_params(*lock.find(3)) == kept);
  ck_assert_uint_eq(lock.find(3)->state, uint8_t(JobState::failed));
  ck_assert(deploy::load_params(*lock.find(4)) == kept);
  ck_assert_uint_eq(lock.find(4)->state, uint8_t(JobState::expired));
  ck_assert_int_ne(lock.find(4)->finished_at, 0);
  ck_assert_uint_eq(lock.header().counters.finished[uint8_t(JobState::expired)], 1);
}
END_TEST

// ---------------------------------------------------------------- version 2
// Records of 2048 bytes with the monotonic times at their end, and the boot
// id in the header; version 3 reads them into its larger records.

constexpr size_t kV2BootIdAt = offsetof(deploy::TableHeader, boot_id);

START_TEST(a_version_2_file_is_upgraded_to_larger_records_and_keeps_every_job) {
  constexpr uint32_t kCapacity = 8;
  const Instant then = Instant::now();
  std::vector<char> file = v1_file(kCapacity, 4);
  put<uint32_t>(file, 8, 2);  // version
  put_text(file, kV2BootIdAt, deploy::boot_id());
  const V1Job jobs[] = {
      {1, JobState::succeeded, then.wall - 60 * kSecond, 0, then.wall - 59 * kSecond,
       then.wall - 50 * kSecond, pair("version", "1.2.3")},
      {3, JobState::waiting, then.wall - kSecond, then.wall + 4 * kSecond, 0, 0,
       pair("vm", "b") + pair("a", std::string(1300, 'x'))},
  };
  for (const V1Job& job : jobs) {
    put_v1_record(file, kCapacity, job);
    const size_t at = kV1HeaderSize + (job.id % kCapacity) * kV1RecordSize;
    put<int64_t>(file, at + offsetof(JobRecord, submitted_mono), then.mono - kSecond);
    put<int64_t>(file, at + offsetof(JobRecord, not_before_mono),
                 job.not_before ? then.mono + 4 * kSecond : 0);
    put<uint64_t>(file, at + 8, v1_checksum(file.data() + at));
  }
  write_file(file);

  std::vector<std::string> warnings;
  auto table = open_table(kCapacity, &warnings);
  ck_assert_uint_eq(warnings.size(), 0);
  struct stat st;
  ck_assert_int_eq(stat(table_path().c_str(), &st), 0);
  ck_assert_uint_eq(size_t(st.st_size), deploy::kHeaderSize + kCapacity * deploy::kRecordSize);
  JobTable::Lock lock(*table);
  ck_assert_uint_eq(lock.header().version, 3);
  ck_assert_uint_eq(lock.header().record_size, deploy::kRecordSize);
  ck_assert_uint_eq(lock.header().next_id, 4);
  ck_assert_uint_eq(lock.header().counters.accepted, 41);
  JobRecord* done = lock.find(1);
  ck_assert_ptr_nonnull(done);
  ck_assert(deploy::record_is_valid(*done, kCapacity, 1));
  ck_assert(deploy::load_params(*done) == (deploy::Params{{"version", "1.2.3"}}));
  ck_assert_uint_eq(done->state, uint8_t(JobState::succeeded));
  JobRecord* waiting = lock.find(3);
  ck_assert_ptr_nonnull(waiting);
  ck_assert(deploy::load_params(*waiting) ==
            (deploy::Params{{"vm", "b"}, {"a", std::string(1300, 'x')}}));
  // The same boot: the monotonic times are kept as they were.
  ck_assert_int_eq(waiting->not_before_mono, then.mono + 4 * kSecond);
  // Version 3's fields start empty.
  ck_assert_uint_eq(waiting->superseded_by, 0);
  ck_assert_uint_eq(waiting->idempotency_key_size, 0);
  ck_assert_uint_eq(waiting->has_canceled_by, 0);
  ck_assert_uint_eq(waiting->notification_count, 0);
}
END_TEST

// ---------------------------------------------------------------- boots

// A waiting job whose monotonic end of the quiet window is `not_before_mono`
// and whose wall one is 4 s after it was written.
uint64_t add_waiting_job(JobTable& table, Micros not_before_mono) {
  const Instant now = Instant::now();
  JobTable::Lock lock(table);
  uint64_t evicted = 0;
  JobRecord* r = lock.allocate(&evicted);
  deploy::store_text(r->target, sizeof r->target, "web");
  r->state = uint8_t(JobState::waiting);
  r->submitted_at = now.wall;
  r->submitted_mono = now.mono;
  r->not_before = now.wall + 4 * kSecond;
  r->not_before_mono = not_before_mono;
  lock.commit(r);
  return r->id;
}

START_TEST(a_restart_in_the_same_boot_keeps_the_monotonic_times) {
  // A wall step between two start-ups (the wall times no longer agree
  // with the monotonic ones) must not move the deadline.
  const Micros deadline = deploy::mono_now() + kHour;
  std::vector<std::string> warnings;
  uint64_t id = add_waiting_job(*open_table(8, &warnings), deadline);
  auto table = open_table(8, &warnings);
  ck_assert_uint_eq(warnings.size(), 0);
  JobTable::Lock lock(*table);
  ck_assert_int_eq(lock.find(id)->not_before_mono, deadline);
}
END_TEST

START_TEST(a_table_of_another_boot_has_its_monotonic_times_rebased_from_the_wall_times) {
  std::vector<std::string> warnings;
  uint64_t id = add_waiting_job(*open_table(8, &warnings), deploy::mono_now() + kHour);
  // As if the host had rebooted: another boot id in the header.
  int fd = open(table_path().c_str(), O_WRONLY);
  const char other_boot[40] = "00000000-0000-0000-0000-000000000000";
  ck_assert_int_eq(
      pwrite(fd, other_boot, sizeof other_boot, offsetof(deploy::TableHeader, boot_id)),
      ssize_t(sizeof other_boot));
  close(fd);
  auto table = open_table(8, &warnings);
  ck_assert_uint_eq(warnings.size(), 0);
  const Micros now = deploy::mono_now();
  JobTable::Lock lock(*table);
  ASSERT_TEXT_EQ(lock.header().boot_id, deploy::boot_id());
  JobRecord* r = lock.find(id);
  ck_assert(deploy::record_is_valid(*r, 8, id % 8));
  ck_assert(near(r->not_before_mono, now + 4 * kSecond));
  ck_assert(near(r->submitted_mono, now));
}
END_TEST

// ---------------------------------------------------------------- decisions

START_TEST(a_step_of_the_wall_clock_changes_no_scheduling_decision) {
  // One job as recorded, and the same job with its wall times a step away
  // (back 60 s, forward 60 s and 1 h): the records' monotonic times alone
  // decide.
  JobRecord base{};
  base.id = 7;
  deploy::store_text(base.target, sizeof base.target, "web");
  base.state = uint8_t(JobState::waiting);
  base.submitted_mono = 100 * kSecond;
  base.not_before_mono = 102 * kSecond;
  base.submitted_at = 1800000000 * kSecond;
  base.not_before = base.submitted_at + 2 * kSecond;
  deploy::TargetPolicy policy;
  policy.quiet_window = 2 * kSecond;
  policy.max_wait = 10 * kSecond;
  policy.queue_timeout = 30 * kSecond;
  const std::map<std::string, deploy::TargetPolicy> policies = {{"web", policy}};
  for (Micros step : {-60 * kSecond, 60 * kSecond, kHour}) {
    JobRecord stepped = base;
    stepped.submitted_at += step;
    stepped.not_before += step;
    for (Micros now : {101 * kSecond, 102 * kSecond, 131 * kSecond}) {
      const auto a = deploy::schedule({deploy::pending_job(base, std::nullopt)}, policies, {}, now);
      const auto b =
          deploy::schedule({deploy::pending_job(stepped, std::nullopt)}, policies, {}, now);
      ck_assert(a.ready == b.ready && a.start == b.start && a.expire == b.expire);
      ck_assert_int_eq(a.next_due, b.next_due);
      const auto c = deploy::decide_submission({deploy::pending_job(base, std::nullopt)}, "web", "",
                                               policy, {}, now);
      const auto e = deploy::decide_submission({deploy::pending_job(stepped, std::nullopt)}, "web",
                                               "", policy, {}, now);
      ck_assert(c.kind == e.kind);
      ck_assert_int_eq(c.not_before, e.not_before);
    }
  }
  // And the decisions are those of the monotonic times.
  const auto at_101 =
      deploy::schedule({deploy::pending_job(base, std::nullopt)}, policies, {}, 101 * kSecond);
  ck_assert(at_101.start.empty());
  ck_assert_int_eq(at_101.next_due, 102 * kSecond);
  const auto at_102 =
      deploy::schedule({deploy::pending_job(base, std::nullopt)}, policies, {}, 102 * kSecond);
  ck_assert(at_102.start == std::vector<uint64_t>{7});
}
END_TEST

Suite* job_table_clocks_suite() {
  Suite* suite = suite_create("job_table_clocks");
  TCase* tc = deploy::test::case_with_fixture("job_table_clocks", set_up, tear_down, 20);
  tcase_add_test(tc, a_version_1_file_is_upgraded_in_place_and_keeps_every_job);
  tcase_add_test(tc, a_version_2_file_is_upgraded_to_larger_records_and_keeps_every_job);
  tcase_add_test(tc, a_restart_in_the_same_boot_keeps_the_monotonic_times);
  tcase_add_test(tc, a_table_of_another_boot_has_its_monotonic_times_rebased_from_the_wall_times);
  tcase_add_test(tc, a_step_of_the_wall_clock_changes_no_scheduling_decision);
  suite_add_tcase(suite, tc);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(job_table_clocks_suite);
