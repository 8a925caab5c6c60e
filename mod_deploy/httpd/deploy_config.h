// mod_deploy's configuration: the directives as written (server level and
// inside <DeployTarget>), and the settings they resolve to once every
// server-level default is merged into every target (check_config).
#pragma once

#include <httpd.h>
#include <http_config.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "directive_specs.h"
#include "job.h"
#include "scheduler.h"
#include "status.h"
#include "store_spec.h"
#include "submission.h"

namespace deploy {

using EnvList = std::vector<std::pair<std::string, std::string>>;

// DeployStore: where jobs, queue and logs live.
enum class StoreKind { file, postgresql };

// The host name as a DeployNodeName: its first label when that is a valid
// name, else "localhost".
std::string default_node_name();

// DeployUser USER [GROUP]: who a target's job runs as, resolved when the
// directive is read (httpd's parent, as root). Never uid or gid 0.
struct JobUser {
  std::string name;  // the user, as getpwnam() knows it
  uint32_t uid = 0;
  uint32_t gid = 0;  // GROUP, else the user's primary group
  std::string home;  // the job's default working directory
};

// The per-target directives as written; an empty optional is "unset", so a
// target inherits the server-level value field by field.
struct TargetDirectives {
  std::string name;
  std::string defined_at;  // "file:line", for messages
  std::optional<std::vector<std::string>> command;
  std::vector<ParamRule> params;
  std::optional<Micros> timeout, kill_grace, queue_timeout, quiet_window, max_wait;
  std::optional<uint32_t> concurrency;
  std::optional<std::string> group_by;  // DeployGroupBy PARAM
  EnvList env;
  std::optional<std::string> working_directory;
  std::optional<std::string> secret;  // the key itself
  EnvList secret_env;                 // DeploySecretEnv: NAME and the secret itself
  std::optional<JobUser> user;
  // Webhooks: DeployParamFrom, DeployFilter (only inside <DeployTarget>),
  // DeployToken (the token itself), DeployUnsignedUsers.
  std::vector<ParamFrom> param_from;
  std::vector<SubmissionFilter> filters;
  std::optional<std::string> token;
  std::optional<bool> unsigned_users;
  // Completion notifications: DeployNotify URLs in order, DeployNotifySecret
  // (the key itself).
  std::vector<std::string> notify;
  std::optional<std::string> notify_secret;
  std::optional<Supersede> supersede;             // DeploySupersede
  std::optional<std::string> idempotency_header;  // DeployIdempotencyHeader NAME
};

// A target with every setting decided; a Target{} holds the directives'
// defaults (directive_specs.h).
struct Target {
  std::string name;
  std::vector<std::string> command;
  std::vector<ParamRule> params;
  Micros timeout = directive_default<Micros>("DeployTimeout");
  Micros kill_grace = directive_default<Micros>("DeployKillGrace");
  Micros queue_timeout = directive_default<Micros>("DeployQueueTimeout");
  TargetPolicy policy;
  EnvList env;
  std::string working_directory;
  std::optional<std::string> secret;
  EnvList secret_env;           // DeploySecretEnv: in the job's environment, masked in its output
  std::optional<JobUser> user;  // none: the job runs as httpd's User
  std::vector<ParamFrom> param_from;
  std::vector<SubmissionFilter> filters;
  std::optional<std::string> token;  // DeployToken: X-Gitlab-Token must equal it
  bool unsigned_users = directive_default<bool>("DeployUnsignedUsers");
  // DeployNotify: the server level's URLs, then the target's (at most
  // kNotificationsMax); DeployNotifySecret signs their bodies.
  std::vector<std::string> notify;
  std::optional<std::string> notify_secret;
  Supersede supersede = Supersede::off;  // DeploySupersede
  static_assert(directive_spec("DeploySupersede").word == std::string_view("off"));
  // DeployIdempotencyHeader: the header that carries a submission's key
  // besides Idempotency-Key; none: Idempotency-Key alone.
  std::optional<std::string> idempotency_header;

  // A submission must prove it with a signature or a token.
  bool is_signed() const { return secret || token; }
  SubmissionRules submission_rules() const { return {params, param_from, filters}; }
};

// The server's settings; a Settings{} holds the directives' defaults
// (directive_specs.h).
struct Settings {
  std::string state_dir;
  uint32_t history = directive_default<uint32_t>("DeployHistory");
  uint32_t queue_limit = directive_default<uint32_t>("DeployQueueLimit");
  uint32_t max_running = directive_default<uint32_t>("DeployMaxRunning");
  uint64_t max_body = directive_default<uint64_t>("DeployMaxBody");
  Micros events_timeout = directive_default<Micros>("DeployEventsTimeout");
  // Open event streams at most: on the server (0: a quarter of
  // MaxRequestWorkers, decided in post_config) and per client address.
  uint32_t events_max_streams = directive_default<uint32_t>("DeployEventsMaxStreams");
  uint32_t events_max_per_client = directive_default<uint32_t>("DeployEventsMaxPerClient");
  // DeploySync: a change that was answered is on stable storage first.
  bool sync = directive_default<bool>("DeploySync");
  // DeployStore: the engine (file or postgresql); the conninfo is never shown
  // or logged. DeployNodeName: this node's name (default: the host name).
  // DeployLease: how long a runner may go without renewing its lease.
  StoreKind store = StoreKind::file;
  std::string store_conninfo;
  std::string node_name;
  Micros lease = directive_default<Micros>("DeployLease");
  // DeployNotifyCAFile: the certificates https:// notifications trust
  // instead of the system's ("": the system's).
  std::string notify_ca_file;
  // The store these name, for open_store and the launcher's environment.
  StoreSpec store_spec() const {
    return StoreSpec{store == StoreKind::postgresql, store_conninfo, node_name, lease};
  }
  std::vector<Target> targets;

  const Target* find(const std::string& name) const;
  // The DeployGroupBy of target `name`; none when it has none or is not
  // configured.
  const std::optional<std::string>& group_by(const std::string& name) const;
  // Sets job.group (job_group) from its params and its target's
  // DeployGroupBy: every Job shown to a client passes here.
  void set_group(Job& job) const { job.group = job_group(job.params, group_by(job.target)); }
  Limits limits() const { return Limits{max_running, queue_limit}; }
  std::map<std::string, TargetPolicy> policies() const;
  // The distinct DeployUsers of all targets: the launcher may run these.
  std::vector<JobUser> job_users() const;
  // Records the table holds: history, plus every job that may be unfinished.
  uint32_t table_capacity() const { return history + queue_limit + max_running + 16; }
};

struct ServerConfig {
  std::optional<std::string> state_dir;
  std::optional<uint32_t> history, queue_limit, max_running;
  std::optional<uint64_t> max_body;
  std::optional<Micros> events_timeout;
  std::optional<uint32_t> events_max_streams, events_max_per_client;
  std::optional<bool> sync;
  std::optional<StoreKind> store;
  std::string store_conninfo;  // DeployStore postgresql CONNINFO: never shown or logged
  std::optional<std::string> node_name;
  std::optional<Micros> lease;
  std::optional<std::string> notify_ca_file;
  TargetDirectives defaults;  // target directives given at server level
  std::vector<TargetDirectives> targets;
  TargetDirectives* parsing = nullptr;  // inside <DeployTarget> while it is read

  Settings settings;  // resolved by resolve_settings()
};

extern const command_rec directives[];

void* create_server_config(apr_pool_t* pool, server_rec* s);
ServerConfig& main_server_config();
// Merges defaults into targets and checks what one directive alone cannot
// (a missing DeployCommand, max wait below wait).
Status resolve_settings(ServerConfig& config, apr_pool_t* pool);

}  // namespace deploy
