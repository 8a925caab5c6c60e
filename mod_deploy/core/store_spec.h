// Which job store a process uses (DeployStore), and how the processes that
// httpd does not configure — the launcher and its runners — learn it: the
// scheduler process starts the launcher with it in its environment, which
// only processes of the same user (and root) can read; the launcher reads it
// once, wipes it from its environment memory (/proc/PID/environ), and every
// runner it forks inherits the parsed spec.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "clock.h"
#include "directive_specs.h"
#include "job_store.h"
#include "job_table.h"

namespace deploy {

struct StoreSpec {
  bool postgresql = false;
  std::string conninfo;  // postgresql only; never logged
  std::string node;      // DeployNodeName
  Micros lease = directive_default<Micros>("DeployLease");
};

// NAME=VALUE entries for the launcher's environment.
std::vector<std::string> store_environment(const StoreSpec& spec);
// The spec of this process's environment (store_environment's), each entry
// wiped from the environment once read; file mode without one.
StoreSpec take_store_environment();
// The spec this process uses (set once by the launcher's main, read by its
// runners); file mode by default.
const StoreSpec& process_store_spec();
void set_process_store_spec(StoreSpec spec);

// The store `spec` names: the postgresql engine (connecting lazily, on its
// first call: create it before fork() only if no call comes before), or the
// file engine over `table`.
std::unique_ptr<JobStore> open_store(const StoreSpec& spec, JobTable& table);

}  // namespace deploy
