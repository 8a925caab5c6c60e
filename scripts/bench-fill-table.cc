// Fills a stopped httpd's job table with finished jobs, for the memory figure
// of scripts/bench (DeployHistory N full) without running N jobs: each record
// is written through JobTable as a finished job looks (target, one param,
// submitted/started/finished times, exit code 0, state succeeded), so httpd
// reads it at its next start as its own. httpd must not run meanwhile.
//
// Usage: bench-fill-table STATE_DIR TARGET COUNT
// Compiled by scripts/bench against build/libdeploy_core.a.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "job_table.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s STATE_DIR TARGET COUNT\n", argv[0]);
    return 2;
  }
  std::unique_ptr<deploy::JobTable> table;
  deploy::Status st = deploy::JobTable::attach(argv[1], &table);
  if (!st.is_ok()) {
    std::fprintf(stderr, "bench-fill-table: %s\n", st.message().c_str());
    return 1;
  }
  long count = std::atol(argv[3]);
  const deploy::Instant now = deploy::Instant::now();
  long written = 0;
  {
    deploy::JobTable::Lock lock(*table);
    for (long i = 0; i < count; ++i) {
      uint64_t evicted = 0;
      deploy::JobRecord* r = lock.allocate(&evicted);
      if (!r) break;
      deploy::store_text(r->target, sizeof r->target, argv[2]);
      deploy::store_params(*r, {{"version", "1.2." + std::to_string(i)}});
      const deploy::Micros ago = (count - i) * 1000;
      const deploy::Instant t{now.wall - ago, now.mono - ago};
      r->submitted_at = t.wall - 300;
      r->submitted_mono = t.mono - 300;
      r->started_at = t.wall - 200;
      r->started_mono = t.mono - 200;
      r->progress = 100;
      r->has_exit_code = 1;
      r->exit_code = 0;
      r->state = uint8_t(deploy::JobState::running);
      lock.finish(r, deploy::JobState::succeeded, t);
      ++written;
    }
  }
  std::printf("written %ld capacity %u\n", written, deploy::JobTable::Lock(*table).capacity());
  return written == count ? 0 : 1;
}
