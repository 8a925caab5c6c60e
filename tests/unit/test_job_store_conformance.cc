// The job store conformance suite (job_store_conformance.h) run against the
// `file` engine: a table file in a fresh state dir, each store its own
// JobTable attached to it, as each process of httpd has.
#include <stdlib.h>

#include <filesystem>

#include "file_store.h"
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

Suite* file_store_suite() {
  deploy::conformance::g_factory = {create, attach, destroy};
  return deploy::conformance::suite("file");
}

}  // namespace

DEPLOY_TEST_SUITE(file_store_suite);
