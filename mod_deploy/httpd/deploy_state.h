// What one generation of httpd (one read of the configuration) holds: the
// resolved settings, the mapped job table, and where the handler is mounted.
// Built in post_config in the parent; children inherit it through fork.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "change_feed.h"
#include "deploy_config.h"
#include "deploy_stream_limits.h"
#include "job_store.h"
#include "job_table.h"

namespace deploy {

struct ModuleState {
  const Settings* settings = nullptr;
  std::unique_ptr<JobTable> table;
  // The jobs, through the store interface: the file engine on `table`.
  std::unique_ptr<JobStore> store;
  std::string runner_path;         // deploy-runner, beside mod_deploy.so
  std::vector<std::string> bases;  // <Location> paths with SetHandler deploy
  Micros started_mono = 0;         // monotonic (clock.h): the Uptime of ?auto
  // Open event streams of this generation's children, and their limits.
  std::unique_ptr<StreamSlots> stream_slots;
  // The changes GET BASE/events streams send, one feed per base, made by
  // the first stream of each child (deploy_events.cc).
  mutable std::mutex feeds_mutex;
  mutable std::map<std::string, std::unique_ptr<ChangeFeed>> feeds;
};

// nullptr before post_config has run (or when it failed).
ModuleState* module_state();

// The longest base `path` is at or under ("/deploy" for "/deploy/jobs/1"),
// or nullptr.
const std::string* base_of_path(const ModuleState& state, std::string_view path);

}  // namespace deploy
