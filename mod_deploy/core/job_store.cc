// The job store's interface (job_store.h); its engines: file_store.cc and
// pg_store.cc.
#include "job_store.h"

#include <string>

#include "job_table.h"  // process_start_ticks

namespace deploy {

// Defined here, once, so that the interface's vtable has a home.
JobStore::~JobStore() = default;

Status job_not_found(uint64_t id, const char* why) {
  return Status::error("job " + std::to_string(id) + " " + why, kNotFound);
}

Status job_not_owned(uint64_t id) {
  return Status::error("job " + std::to_string(id) + " is no longer run by this runner", kNotOwner);
}

RunnerRef runner_to_signal(const RunnerRef& recorded) {
  if (recorded.runner_pid <= 0 || recorded.runner_start_ticks == 0 ||
      process_start_ticks(recorded.runner_pid) != recorded.runner_start_ticks)
    return RunnerRef{};
  return recorded;
}

}  // namespace deploy
