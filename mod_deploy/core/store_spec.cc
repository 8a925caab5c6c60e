#include "store_spec.h"

#include <cstdlib>
#include <cstring>

#include "file_store.h"
#include "pg_store.h"

extern char** environ;

namespace deploy {
namespace {

constexpr char kStore[] = "DEPLOY_STORE";
constexpr char kConninfo[] = "DEPLOY_STORE_CONNINFO";
constexpr char kNode[] = "DEPLOY_NODE_NAME";
constexpr char kLease[] = "DEPLOY_LEASE_MICROS";

StoreSpec& the_spec() {
  static StoreSpec spec;
  return spec;
}

// The value of NAME in the environment, its bytes then overwritten in place
// (what /proc/PID/environ shows) and the entry removed.
std::string take(const char* name) {
  const size_t n = strlen(name);
  for (char** e = environ; e && *e; ++e) {
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
      std::string value(*e + n + 1);
      memset(*e + n + 1, 0, value.size());
      unsetenv(name);
      return value;
    }
  }
  return {};
}

}  // namespace

std::vector<std::string> store_environment(const StoreSpec& spec) {
  std::vector<std::string> env = {
      std::string(kStore) + "=" + (spec.postgresql ? "postgresql" : "file"),
      std::string(kNode) + "=" + spec.node, std::string(kLease) + "=" + std::to_string(spec.lease)};
  if (spec.postgresql) env.push_back(std::string(kConninfo) + "=" + spec.conninfo);
  return env;
}

StoreSpec take_store_environment() {
  StoreSpec spec;
  spec.postgresql = take(kStore) == "postgresql";
  spec.conninfo = take(kConninfo);
  spec.node = take(kNode);
  const std::string lease = take(kLease);
  char* end = nullptr;
  const long long micros = lease.empty() ? 0 : strtoll(lease.c_str(), &end, 10);
  if (micros > 0 && end && *end == '\0') spec.lease = micros;
  return spec;
}

const StoreSpec& process_store_spec() { return the_spec(); }
void set_process_store_spec(StoreSpec spec) { the_spec() = std::move(spec); }

std::unique_ptr<JobStore> open_store(const StoreSpec& spec, JobTable& table) {
  if (spec.postgresql) return std::make_unique<PgStore>(spec.conninfo, spec.node, spec.lease);
  return std::make_unique<FileStore>(table, spec.node);
}

}  // namespace deploy
