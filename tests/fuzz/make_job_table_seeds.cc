// Writes the seed of job_table_fuzzer: a real job table of capacity 2 (one
// finished job with params, stage and user, one running job).
// Usage: make_job_table_seeds OUTPUT_DIR
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "job_table.h"

namespace {

using deploy::JobRecord;
using deploy::JobState;
using deploy::JobTable;

void add_job(JobTable& table, JobState state, const deploy::Params& params, const char* stage) {
  JobTable::Lock lock(table);
  uint64_t evicted = 0;
  JobRecord* r = lock.allocate(&evicted);
  deploy::store_text(r->target, sizeof r->target, "web");
  deploy::store_params(*r, params);
  deploy::store_text(r->submitted_by, sizeof r->submitted_by, "alice");
  r->has_submitted_by = 1;
  deploy::store_text(r->stage, sizeof r->stage, stage);
  r->has_stage = 1;
  r->progress = 40;
  r->submitted_at = 1'790'000'000'000'000;
  r->started_at = r->submitted_at + 2'000'000;
  r->state = uint8_t(JobState::running);
  if (deploy::is_final(state)) {
    r->has_exit_code = 1;
    lock.finish(r, state, r->started_at + 7'000'000);
  } else {
    lock.commit(r);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_job_table_seeds OUTPUT_DIR\n";
    return 2;
  }
  const std::filesystem::path out = argv[1];
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "job_table_seeds";
  std::filesystem::remove_all(dir);
  {
    std::unique_ptr<JobTable> table;
    std::vector<std::string> warnings;
    deploy::Status st = JobTable::open_for_startup(dir.string(), 2, -1, -1, &table, &warnings);
    if (!st.is_ok()) {
      std::cerr << st.message() << "\n";
      return 1;
    }
    add_job(*table, JobState::succeeded, {{"BRANCH", "main"}, {"VERSION", "1.2.3"}}, "done");
    add_job(*table, JobState::running, {{"MESSAGE", "caf\xc3\xa9 \xff"}}, "migrating \xe2\x9c\x93");
  }
  std::ifstream in(dir / "jobs.table", std::ios::binary);
  const std::vector<char> table((std::istreambuf_iterator<char>(in)), {});
  std::filesystem::create_directories(out);
  std::ofstream(out / "table_capacity_2", std::ios::binary).write(table.data(), table.size());
  std::filesystem::remove_all(dir);
  return 0;
}
