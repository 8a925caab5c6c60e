// The feed of changes that a child's GET BASE/events streams share: each
// changed job once, in its latest state and in order, rendered once for all
// readers; a reader the feed no longer reaches back to is answered from the
// table; a reader ahead of the feed catches it up.
#include "change_feed.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "file_store.h"
#include "unit_test.h"

namespace {

using deploy::ChangeFeed;
using deploy::Job;
using deploy::JobRecord;
using deploy::JobState;
using deploy::JobTable;

constexpr deploy::Micros kHour = 3600LL * 1000000;

std::string g_dir;
std::unique_ptr<JobTable> g_table;
std::unique_ptr<deploy::FileStore> g_store;  // the feeds' store, on g_table
int g_renders = 0;

void set_up() {
  char dir[] = "/tmp/test_change_feed.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  g_dir = dir;
  std::vector<std::string> warnings;
  deploy::Status st = JobTable::open_for_startup(g_dir + "/state", 64, -1, -1, &g_table, &warnings);
  ck_assert_msg(st.is_ok(), "%s", st.message().c_str());
  g_renders = 0;
}

void tear_down() {
  g_store.reset();
  g_table.reset();
  std::filesystem::remove_all(g_dir);
}

// "ID:STATE:PROGRESS", counting the calls.
std::string render(const Job& job) {
  ++g_renders;
  return std::to_string(job.id) + ":" + std::string(deploy::state_name(job.state)) + ":" +
         std::to_string(job.progress);
}

std::unique_ptr<ChangeFeed> make_feed(deploy::Micros refresh, size_t capacity) {
  if (!g_store) g_store = std::make_unique<deploy::FileStore>(*g_table);
  return std::make_unique<ChangeFeed>(*g_store, render, refresh, capacity);
}

uint64_t add_job() {
  JobTable::Lock lock(*g_table);
  uint64_t evicted = 0;
  JobRecord* r = lock.allocate(&evicted);
  ck_assert_ptr_nonnull(r);
  deploy::store_text(r->target, sizeof r->target, "web");
  r->state = uint8_t(JobState::queued);
  lock.commit(r);
  return r->id;
}

void set_progress(uint64_t id, int progress) {
  JobTable::Lock lock(*g_table);
  JobRecord* r = lock.find(id);
  ck_assert_ptr_nonnull(r);
  r->progress = int8_t(progress);
  lock.commit(r);
}

struct Answer {
  std::vector<std::string> texts;
  std::vector<uint64_t> seqs;
  uint64_t upto;
};

Answer read(ChangeFeed& feed, uint64_t since, size_t limit = 1000) {
  std::vector<ChangeFeed::Event> events;
  Answer a;
  a.upto = feed.read(since, limit, &events);
  for (const auto& e : events) {
    a.texts.push_back(*e.data);
    a.seqs.push_back(e.change_seq);
  }
  return a;
}

std::string joined(const std::vector<std::string>& texts) {
  std::string out;
  for (const auto& t : texts) out += (out.empty() ? "" : " ") + t;
  return out;
}

START_TEST(each_changed_job_once_in_its_latest_state_and_in_order) {
  uint64_t start = g_table->change_seq();
  auto feed = make_feed(0, 16);
  uint64_t a = add_job(), b = add_job();
  set_progress(a, 10);
  set_progress(a, 20);
  Answer got = read(*feed, start);
  ASSERT_TEXT_EQ(joined(got.texts),
                 std::to_string(b) + ":queued:-1 " + std::to_string(a) + ":queued:20");
  ck_assert_uint_eq(got.upto, g_table->change_seq());
  ck_assert(got.seqs[0] < got.seqs[1]);
  // Read again from where the answer ended: nothing new.
  ck_assert(read(*feed, got.upto).texts.empty());
  set_progress(b, 50);
  ASSERT_TEXT_EQ(joined(read(*feed, got.upto).texts), std::to_string(b) + ":queued:50");
}
END_TEST

START_TEST(many_readers_share_one_rendering_of_each_change) {
  uint64_t start = g_table->change_seq();
  auto feed = make_feed(0, 16);
  uint64_t a = add_job();
  add_job();
  set_progress(a, 30);
  for (int reader = 0; reader < 50; ++reader) ck_assert_uint_eq(read(*feed, start).texts.size(), 2);
  ck_assert_int_eq(g_renders, 2);
}
END_TEST

START_TEST(the_table_is_read_at_most_once_per_refresh_interval) {
  auto feed = make_feed(kHour, 16);
  uint64_t start = g_table->change_seq();
  add_job();  // the first read after a change refreshes: never refreshed yet
  Answer first = read(*feed, start);
  ck_assert_uint_eq(first.texts.size(), 1);
  uint64_t b = add_job();
  // Within the interval the feed answers from what it holds, and says so.
  Answer stale = read(*feed, first.upto);
  ck_assert(stale.texts.empty());
  ck_assert_uint_eq(stale.upto, first.upto);
  // A reader ahead of the feed (it saw the table elsewhere) catches it up.
  uint64_t now = g_table->change_seq();
  ck_assert(read(*feed, now).texts.empty());
  ASSERT_TEXT_EQ(joined(read(*feed, first.upto).texts), std::to_string(b) + ":queued:-1");
}
END_TEST

START_TEST(a_limit_cuts_the_answer_and_the_next_read_goes_on) {
  uint64_t start = g_table->change_seq();
  auto feed = make_feed(0, 16);
  uint64_t a = add_job(), b = add_job(), c = add_job();
  Answer first = read(*feed, start, 2);
  ASSERT_TEXT_EQ(joined(first.texts),
                 std::to_string(a) + ":queued:-1 " + std::to_string(b) + ":queued:-1");
  ck_assert_uint_eq(first.upto, first.seqs.back());
  Answer rest = read(*feed, first.upto, 2);
  ASSERT_TEXT_EQ(joined(rest.texts), std::to_string(c) + ":queued:-1");
  ck_assert_uint_eq(rest.upto, g_table->change_seq());
}
END_TEST

START_TEST(a_reader_behind_the_feed_is_answered_from_the_table) {
  uint64_t start = g_table->change_seq();
  auto feed = make_feed(0, 2);
  uint64_t a = add_job(), b = add_job(), c = add_job();
  set_progress(a, 5);  // a changes last: b, c, a
  Answer newest = read(*feed, g_table->change_seq() - 2);
  ASSERT_TEXT_EQ(joined(newest.texts),
                 std::to_string(c) + ":queued:-1 " + std::to_string(a) + ":queued:5");
  ck_assert(feed->floor() > start);
  // From the start: three jobs, more than the feed keeps.
  Answer all = read(*feed, start);
  ASSERT_TEXT_EQ(joined(all.texts), std::to_string(b) + ":queued:-1 " + std::to_string(c) +
                                        ":queued:-1 " + std::to_string(a) + ":queued:5");
  ck_assert_uint_eq(all.upto, g_table->change_seq());
  // ... also when cut by a limit.
  Answer cut = read(*feed, start, 1);
  ASSERT_TEXT_EQ(joined(cut.texts), std::to_string(b) + ":queued:-1");
  ck_assert_uint_eq(cut.upto, cut.seqs[0]);
}
END_TEST

START_TEST(a_reader_ahead_of_the_table_gets_what_changes_from_now_on) {
  auto feed = make_feed(0, 16);
  add_job();
  Answer forged = read(*feed, 1000000);
  ck_assert(forged.texts.empty());
  ck_assert_uint_eq(forged.upto, g_table->change_seq());
  uint64_t b = add_job();
  ASSERT_TEXT_EQ(joined(read(*feed, forged.upto).texts), std::to_string(b) + ":queued:-1");
}
END_TEST

// What a reader should get, straight from the table.
Answer oracle(uint64_t since, size_t limit) {
  std::vector<Job> jobs;
  uint64_t current;
  {
    JobTable::Lock lock(*g_table);
    current = lock.header().change_seq;
    lock.for_each([&](JobRecord& rec) {
      if (rec.change_seq > since) jobs.push_back(deploy::record_to_job(rec));
    });
  }
  std::sort(jobs.begin(), jobs.end(),
            [](const Job& a, const Job& b) { return a.change_seq < b.change_seq; });
  Answer a;
  a.upto = current;
  for (const Job& job : jobs) {
    if (a.texts.size() == limit) {
      a.upto = a.seqs.back();
      break;
    }
    a.texts.push_back(render(job));
    a.seqs.push_back(job.change_seq);
  }
  return a;
}

START_TEST(random_changes_and_readers_agree_with_the_table) {
  // A small feed, so that readers fall behind it and its floor moves; each
  // answer is compared with one read from the table itself.
  auto feed = make_feed(0, 4);
  std::vector<uint64_t> ids, points{g_table->change_seq()};
  uint64_t state = 42;
  auto next = [&state](uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  for (int step = 0; step < 3000; ++step) {
    if (ids.size() < 60 && (ids.empty() || next(10) < 3))
      ids.push_back(add_job());
    else
      set_progress(ids[next(ids.size())], int(next(101)));
    points.push_back(g_table->change_seq());
    uint64_t since = points[points.size() - 1 - next(std::min<size_t>(points.size(), 16))];
    size_t limit = 1 + next(8);
    Answer want = oracle(since, limit);
    int renders = g_renders;
    Answer got = read(*feed, since, limit);
    g_renders = renders;
    ck_assert_msg(got.texts == want.texts && got.seqs == want.seqs && got.upto == want.upto,
                  "step %d, since %llu, limit %zu: got \"%s\" up to %llu, want \"%s\" up to %llu",
                  step, (unsigned long long)since, limit, joined(got.texts).c_str(),
                  (unsigned long long)got.upto, joined(want.texts).c_str(),
                  (unsigned long long)want.upto);
  }
}
END_TEST

Suite* change_feed_suite() {
  Suite* s = suite_create("change_feed");
  TCase* tc = deploy::test::case_with_fixture("feed", set_up, tear_down, 30);
  tcase_add_test(tc, each_changed_job_once_in_its_latest_state_and_in_order);
  tcase_add_test(tc, many_readers_share_one_rendering_of_each_change);
  tcase_add_test(tc, the_table_is_read_at_most_once_per_refresh_interval);
  tcase_add_test(tc, a_limit_cuts_the_answer_and_the_next_read_goes_on);
  tcase_add_test(tc, a_reader_behind_the_feed_is_answered_from_the_table);
  tcase_add_test(tc, a_reader_ahead_of_the_table_gets_what_changes_from_now_on);
  tcase_add_test(tc, random_changes_and_readers_agree_with_the_table);
  suite_add_tcase(s, tc);
  return s;
}

}  // namespace

DEPLOY_TEST_SUITE(change_feed_suite);
