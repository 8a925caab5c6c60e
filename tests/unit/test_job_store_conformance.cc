// The job store conformance suite (job_store_conformance.h) run against the
// `file` engine: a table file in a fresh state dir, each store its own
// JobTable attached to it, as each process of httpd has.
#include <stdlib.h>

#include <filesystem>

#include "file_store.h"
#include "job_details.h"
#include "job_store_conformance.h"

namespace {

using deploy::FileStore;
using deploy::JobStore;
using deploy::JobTable;
using deploy::Status;

std::string g_dir;

// A FileStore that owns its table.
class OwnedFileStore : public FileStore {
 public:
  explicit OwnedFileStore(std::unique_ptr<JobTable> table)
      : FileStore(*table, "node-a"), table_(std::move(table)) {}

 private:
  std::unique_ptr<JobTable> table_;
};

void create(uint32_t capacity) {
  char dir[] = "/tmp/test_job_store.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  g_dir = std::string(dir) + "/state";
  std::unique_ptr<JobTable> table;
  std::vector<std::string> warnings;
  const Status st = JobTable::open_for_startup(g_dir, capacity, -1, -1, &table, &warnings);
  ck_assert_msg(st.is_ok(), "%s", st.message().c_str());
}

std::unique_ptr<JobStore> attach() {
  std::unique_ptr<JobTable> table;
  const Status st = JobTable::attach(g_dir, &table);
  ck_assert_msg(st.is_ok(), "%s", st.message().c_str());
  return std::make_unique<OwnedFileStore>(std::move(table));
}

void destroy() { std::filesystem::remove_all(std::filesystem::path(g_dir).parent_path()); }

void write_file(const std::string& path, const std::string& text) {
  FILE* f = fopen(path.c_str(), "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(text.data(), 1, text.size(), f), text.size());
  fclose(f);
}

// The file engine keeps stages and outputs in logs/ID.details: written by
// the fenced transition, read back as untrusted, gone with the log.
START_TEST(the_details_file_is_untrusted_and_goes_with_the_log) {
  using namespace deploy;
  using namespace deploy::conformance;
  JobStore& store = *g_store;
  const Job plain = started(store, submit_new(store, "web"));
  const Job a = started(store, submit_new(store, "web"));
  ASSERT_OK(store.runner_recorded(a.id, self_runner(), 0, 0, nullptr));
  RunnerReport r;
  r.stages = std::vector<Stage>{{"build", 5, 0}};
  r.outputs = Outputs{{"address", "10.0.0.7"}};
  ASSERT_OK(store.record_progress(a.id, self_runner(), r, 0, nullptr));
  const std::string path = g_dir + "/logs/" + std::to_string(a.id) + ".details";
  ck_assert(std::filesystem::exists(path));
  // A job that set none has no file.
  ck_assert(!std::filesystem::exists(g_dir + "/logs/" + std::to_string(plain.id) + ".details"));
  Job out;
  for (const std::string& damaged :
       {std::string("garbage"), std::string("deploy-details 1\n99:short"),
        encode_details({{"bad\x01name", 1, 0}}, {}), encode_details({}, {{"1bad", "v"}}),
        std::string("deploy-details 1\n") + std::string(kDetailsMax, '9')}) {
    write_file(path, damaged);
    ASSERT_OK(store.get(a.id, &out));
    ck_assert(out.stages.empty() && out.outputs.empty());
    ASSERT_TEXT_EQ(out.target, "web");  // the job itself reads as before
  }
  // A new report writes it whole again.
  r.outputs = Outputs{{"address", "10.0.0.8"}};
  ASSERT_OK(store.record_progress(a.id, self_runner(), r, 0, nullptr));
  ASSERT_OK(store.get(a.id, &out));
  ck_assert_uint_eq(out.stages.size(), 1);
  ASSERT_TEXT_EQ(out.outputs.at(0).second, "10.0.0.8");
  ASSERT_OK(store.finish(a.id, self_runner(), Outcome{JobState::succeeded, 0, {}}, RunnerReport{},
                         Instant::now(), 0));
  ASSERT_OK(store.launch_failed(plain.id, Instant::now()));
  std::vector<uint64_t> dropped;
  ASSERT_OK(store.trim_history(0, &dropped));
  ck_assert_uint_eq(dropped.size(), 2);
  ck_assert(!std::filesystem::exists(path));
}
END_TEST

Suite* file_store_suite() {
  deploy::conformance::g_factory = {create, attach, destroy};
  Suite* s = deploy::conformance::suite("file");
  TCase* tc = deploy::test::case_with_fixture("details file", deploy::conformance::set_up,
                                              deploy::conformance::tear_down, 30);
  tcase_add_test(tc, the_details_file_is_untrusted_and_goes_with_the_log);
  suite_add_tcase(s, tc);
  return s;
}

}  // namespace

DEPLOY_TEST_SUITE(file_store_suite);
