#include "deploy_config.h"

#include <httpd.h>
#include <apr_strings.h>
#include <http_log.h>
#include <http_main.h>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "deploy_module.h"
#include "duration.h"
#include "names.h"

namespace deploy {
namespace {

ServerConfig& config_of(cmd_parms* cmd) {
  return *static_cast<ServerConfig*>(
      ap_get_module_config(cmd->server->module_config, &deploy_module));
}

const char* error(cmd_parms* cmd, const std::string& text) {
  return apr_pstrdup(cmd->pool, text.c_str());
}

std::string named(cmd_parms* cmd, const char* value) {
  return std::string(cmd->cmd->name) + ": invalid value '" + value + "'";
}

// The directive's row of kDirectiveSpecs (directive_specs.h).
const DirectiveSpec& spec_of(cmd_parms* cmd) {
  static constexpr DirectiveSpec unlisted{"", DirectiveContext::server, DirectiveUnit::text};
  const DirectiveSpec* spec = find_directive_spec(cmd->cmd->name);
  return spec ? *spec : unlisted;
}

// Every directive belongs to the main server, not to a virtual host; inside
// or outside <DeployTarget> as its row's context says.
const char* check_context(cmd_parms* cmd) {
  if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) return err;
  const std::string name = cmd->cmd->name;
  if (!find_directive_spec(name))
    return error(cmd, name + " has no row in the directive table (directive_specs.h)");
  const bool in_target = config_of(cmd).parsing != nullptr;
  switch (spec_of(cmd).context) {
    case DirectiveContext::server:
      if (in_target) return error(cmd, name + " is not allowed inside <DeployTarget>");
      break;
    case DirectiveContext::target_section:
      if (!in_target) return error(cmd, name + " is allowed only inside <DeployTarget>");
      break;
    case DirectiveContext::server_or_target:
      break;
  }
  return nullptr;
}

// Target directives: the target being read, or the server level's defaults.
TargetDirectives* target_of(cmd_parms* cmd, const char** err) {
  *err = check_context(cmd);
  if (*err) return nullptr;
  ServerConfig& config = config_of(cmd);
  return config.parsing ? config.parsing : &config.defaults;
}

// The setters of counts, durations and sizes: the range is the row's.
const char* set_count(cmd_parms* cmd, std::optional<uint32_t>* field, const char* arg) {
  const DirectiveSpec& spec = spec_of(cmd);
  char* end = nullptr;
  errno = 0;
  long long value = strtoll(arg, &end, 10);
  if (errno || end == arg || *end || value < spec.min || value > spec.max)
    return error(cmd, named(cmd, arg) + " (a whole number from " + std::to_string(spec.min) +
                          " to " + std::to_string(spec.max) + ")");
  *field = uint32_t(value);
  return nullptr;
}

const char* set_duration(cmd_parms* cmd, std::optional<Micros>* field, const char* arg) {
  const DirectiveSpec& spec = spec_of(cmd);
  std::optional<Micros> value = parse_duration(arg);
  const bool bounded = spec.min > 0 || spec.max != kUnbounded;
  if (!value || *value < spec.min || *value > spec.max)
    return error(cmd, named(cmd, arg) +
                          (bounded ? " (a duration from " + written_duration(spec.min) + " to " +
                                         written_duration(spec.max) + ")"
                                   : " (a duration: a number of seconds, or with ms, s, mi or h)"));
  *field = *value;
  return nullptr;
}

const char* set_size(cmd_parms* cmd, std::optional<uint64_t>* field, const char* arg) {
  const DirectiveSpec& spec = spec_of(cmd);
  std::optional<uint64_t> size = parse_size(arg);
  if (!size || *size < uint64_t(spec.min) || *size > uint64_t(spec.max))
    return error(cmd, named(cmd, arg) + " (a size from " +
                          (spec.min == 1 ? std::string("1 byte") : written_size(spec.min)) +
                          " to " + written_size(spec.max) + ", as " + written_size(spec.value) +
                          ")");
  *field = *size;
  return nullptr;
}

// --- server-wide ---

const char* cmd_state_dir(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = check_context(cmd)) return err;
  const char* path = ap_server_root_relative(cmd->pool, arg);
  if (!path || !*arg) return error(cmd, named(cmd, arg));
  config_of(cmd).state_dir = path;
  return nullptr;
}

const char* cmd_history(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = check_context(cmd)) return err;
  return set_count(cmd, &config_of(cmd).history, arg);
}

const char* cmd_max_running(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = check_context(cmd)) return err;
  return set_count(cmd, &config_of(cmd).max_running, arg);
}

const char* cmd_queue_limit(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = check_context(cmd)) return err;
  return set_count(cmd, &config_of(cmd).queue_limit, arg);
}

const char* cmd_max_body(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = check_context(cmd)) return err;
  return set_size(cmd, &config_of(cmd).max_body, arg);
}

const char* cmd_events_timeout(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = check_context(cmd)) return err;
  return set_duration(cmd, &config_of(cmd).events_timeout, arg);
}

const char* cmd_events_max_streams(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = check_context(cmd)) return err;
  return set_count(cmd, &config_of(cmd).events_max_streams, arg);
}

const char* cmd_events_max_per_client(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = check_context(cmd)) return err;
  return set_count(cmd, &config_of(cmd).events_max_per_client, arg);
}

// --- durability ---

const char* cmd_sync(cmd_parms* cmd, void*, int on) {
  if (const char* err = check_context(cmd)) return err;
  config_of(cmd).sync = on != 0;
  return nullptr;
}

// --- cluster ---

// DeployStore file | postgresql CONNINFO. The conninfo may hold secrets: no
// message repeats it, and configtest does not connect.
const char* cmd_store(cmd_parms* cmd, void*, const char* kind, const char* conninfo) {
  if (const char* err = check_context(cmd)) return err;
  ServerConfig& config = config_of(cmd);
  if (strcmp(kind, "file") == 0) {
    if (conninfo) return "DeployStore file takes no connection string";
    config.store = StoreKind::file;
    config.store_conninfo.clear();
    return nullptr;
  }
  if (strcmp(kind, "postgresql") == 0) {
    if (!conninfo || !*conninfo) return "DeployStore postgresql needs a connection string";
    if (strlen(conninfo) > 4096) return "DeployStore postgresql: the connection string is too long";
    for (const char* c = conninfo; *c; ++c)
      if (static_cast<unsigned char>(*c) < 0x20 || *c == 0x7f)
        return "DeployStore postgresql: the connection string holds a control character";
    config.store = StoreKind::postgresql;
    config.store_conninfo = conninfo;
    return nullptr;
  }
  return error(cmd, named(cmd, kind) + " (file, or postgresql CONNINFO)");
}

const char* cmd_node_name(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = check_context(cmd)) return err;
  if (!is_valid_target_name(arg))
    return error(cmd, named(cmd, arg) +
                          " (letters, digits, '.', '_', '-'; at most 64; starting with a letter "
                          "or digit)");
  config_of(cmd).node_name = arg;
  return nullptr;
}

const char* cmd_lease(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = check_context(cmd)) return err;
  return set_duration(cmd, &config_of(cmd).lease, arg);
}

// --- per target ---

const char* cmd_target_section(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) return err;
  ServerConfig& config = config_of(cmd);
  if (config.parsing) return "<DeployTarget> sections cannot be nested";
  std::string name(arg);
  if (name.empty() || name.back() != '>') return "<DeployTarget> lacks its closing '>'";
  name.pop_back();
  if (name.size() >= 2 && (name.front() == '"' || name.front() == '\'') &&
      name.back() == name.front())
    name = name.substr(1, name.size() - 2);
  if (!is_valid_target_name(name))
    return error(
        cmd, "<DeployTarget>: invalid target name '" + name +
                 "' (letters, digits, '.', '_', '-'; at most 64; starting with a letter or digit)");
  for (const TargetDirectives& t : config.targets)
    if (t.name == name)
      return error(cmd,
                   "<DeployTarget>: target '" + name + "' is already defined at " + t.defined_at);
  TargetDirectives target;
  target.name = name;
  target.defined_at =
      std::string(cmd->directive->filename) + ":" + std::to_string(cmd->directive->line_num);
  config.targets.push_back(std::move(target));
  config.parsing = &config.targets.back();
  const char* err = ap_walk_config(cmd->directive->first_child, cmd, cmd->context);
  config.parsing = nullptr;
  return err;
}

const char* cmd_command(cmd_parms* cmd, void*, const char* args) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  std::vector<std::string> words;
  while (*args) {
    const char* word = ap_getword_conf(cmd->temp_pool, &args);
    if (!*word) break;
    words.emplace_back(word);
  }
  if (words.empty()) return "DeployCommand needs a program";
  if (words[0][0] != '/')
    return error(cmd, "DeployCommand: invalid value '" + words[0] +
                          "' (the program must be an absolute path)");
  t->command = std::move(words);
  return nullptr;
}

const char* cmd_param(cmd_parms* cmd, void*, const char* name, const char* regex) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  if (!is_valid_param_name(name))
    return error(cmd, std::string("DeployParam: invalid parameter name '") + name +
                          "' (letters, digits and '_', not starting with a digit; at most 64)");
  ParamPattern pattern;
  if (Status compiled = ParamPattern::compile(regex, &pattern); !compiled.is_ok())
    return error(cmd, std::string("DeployParam ") + name + ": invalid regular expression '" +
                          regex + "': " + compiled.message());
  for (ParamRule& rule : t->params)
    if (rule.name == name)
      return error(cmd, std::string("DeployParam: parameter '") + name + "' is declared twice");
  t->params.push_back(ParamRule{name, std::move(pattern)});
  return nullptr;
}

#define TARGET_DURATION(fn, field)                         \
  const char* fn(cmd_parms* cmd, void*, const char* arg) { \
    const char* err;                                       \
    TargetDirectives* t = target_of(cmd, &err);            \
    return t ? set_duration(cmd, &t->field, arg) : err;    \
  }
TARGET_DURATION(cmd_timeout, timeout)
TARGET_DURATION(cmd_kill_grace, kill_grace)
TARGET_DURATION(cmd_queue_timeout, queue_timeout)
TARGET_DURATION(cmd_wait, quiet_window)
TARGET_DURATION(cmd_max_wait, max_wait)
#undef TARGET_DURATION

const char* cmd_concurrency(cmd_parms* cmd, void*, const char* arg) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  return t ? set_count(cmd, &t->concurrency, arg) : err;
}

// Checked against the target's DeployParams once every default is merged
// (resolve_settings).
const char* cmd_group_by(cmd_parms* cmd, void*, const char* name) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  if (!is_valid_param_name(name))
    return error(cmd, std::string("DeployGroupBy: invalid parameter name '") + name +
                          "' (letters, digits and '_', not starting with a digit; at most 64)");
  t->group_by = name;
  return nullptr;
}

const char* cmd_env(cmd_parms* cmd, void*, const char* name, const char* value) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  std::string n(name);
  if (n.empty() || n.find('=') != std::string::npos)
    return error(cmd, "DeployEnv: invalid variable name '" + n + "'");
  for (auto& [existing, v] : t->env)
    if (existing == n) {
      v = value;
      return nullptr;
    }
  t->env.emplace_back(n, value);
  return nullptr;
}

const char* cmd_working_directory(cmd_parms* cmd, void*, const char* arg) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  if (arg[0] != '/') return error(cmd, named(cmd, arg) + " (an absolute path)");
  t->working_directory = arg;
  return nullptr;
}

// file:PATH (one trailing newline dropped) or env:NAME, never empty: the
// key of DeploySecret, the token of DeployToken. Error text or nullptr.
const char* read_key(cmd_parms* cmd, const char* arg, std::string* key) {
  const std::string directive = cmd->cmd->name;
  std::string spec(arg);
  if (spec.rfind("file:", 0) == 0) {
    std::string path = ap_server_root_relative(cmd->temp_pool, spec.substr(5).c_str());
    std::ifstream in(path, std::ios::binary);
    if (!in) return error(cmd, directive + ": cannot read '" + spec + "': " + std::strerror(errno));
    std::ostringstream content;
    content << in.rdbuf();
    *key = content.str();
    if (!key->empty() && key->back() == '\n') key->pop_back();
  } else if (spec.rfind("env:", 0) == 0) {
    const char* value = getenv(spec.substr(4).c_str());
    if (!value)
      return error(cmd, directive + ": invalid value '" + spec + "' (the variable is not set)");
    *key = value;
  } else {
    return error(cmd, named(cmd, arg) + " (file:PATH or env:NAME)");
  }
  if (key->empty())
    return error(cmd, directive + ": invalid value '" + spec + "' (the key is empty)");
  return nullptr;
}

// A key of the target (read_key): DeploySecret, DeployToken,
// DeployNotifySecret.
const char* set_key(cmd_parms* cmd, const char* arg,
                    std::optional<std::string> TargetDirectives::*field) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  std::string key;
  if (const char* failed = read_key(cmd, arg, &key)) return failed;
  t->*field = std::move(key);
  return nullptr;
}

const char* cmd_secret(cmd_parms* cmd, void*, const char* arg) {
  return set_key(cmd, arg, &TargetDirectives::secret);
}

// --- DeploySecretEnv ---

// Shorter secrets would mask too much of the output to be told apart.
constexpr size_t kMinSecretSize = 4;

// NAME as DeployEnv takes it, but no DEPLOY_* name: those are the job's own.
// Never says the secret in a message.
const char* cmd_secret_env(cmd_parms* cmd, void*, const char* name, const char* source) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  std::string n(name);
  if (n.empty() || n.find('=') != std::string::npos)
    return error(cmd, "DeploySecretEnv: invalid variable name '" + n + "'");
  if (n.rfind("DEPLOY_", 0) == 0)
    return error(cmd, "DeploySecretEnv: invalid variable name '" + n +
                          "' (DEPLOY_* names are set by mod_deploy)");
  std::string secret;
  if (const char* failed = read_key(cmd, source, &secret)) return failed;
  if (secret.size() < kMinSecretSize)
    return error(cmd, "DeploySecretEnv " + n + ": the secret from '" + source +
                          "' is shorter than " + std::to_string(kMinSecretSize) + " bytes");
  for (auto& [existing, value] : t->secret_env)
    if (existing == n) {
      value = std::move(secret);
      return nullptr;
    }
  t->secret_env.emplace_back(n, std::move(secret));
  return nullptr;
}

// --- webhooks: DeployParamFrom, DeployFilter, DeployToken, DeployUnsignedUsers ---

const char* value_source(cmd_parms* cmd, const char* arg, ValueSource* source) {
  if (Status parsed = parse_value_source(arg, source); !parsed.is_ok())
    return error(cmd, named(cmd, arg) + " (" + parsed.message() + ")");
  return nullptr;
}

const char* cmd_param_from(cmd_parms* cmd, void*, const char* name, const char* source) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  ParamFrom from;
  from.param = name;
  for (const ParamFrom& existing : t->param_from)
    if (existing.param == from.param)
      return error(cmd, "DeployParamFrom: parameter '" + from.param + "' has a source already");
  if (const char* failed = value_source(cmd, source, &from.source)) return failed;
  t->param_from.push_back(std::move(from));
  return nullptr;
}

const char* cmd_filter(cmd_parms* cmd, void*, const char* source, const char* regex) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  ValueSource from;
  if (const char* failed = value_source(cmd, source, &from)) return failed;
  ParamPattern pattern;
  if (Status compiled = ParamPattern::compile(regex, &pattern); !compiled.is_ok())
    return error(cmd, std::string("DeployFilter ") + source + ": invalid regular expression '" +
                          regex + "': " + compiled.message());
  t->filters.push_back(SubmissionFilter{std::move(from), std::move(pattern)});
  return nullptr;
}

const char* cmd_token(cmd_parms* cmd, void*, const char* arg) {
  return set_key(cmd, arg, &TargetDirectives::token);
}

const char* cmd_unsigned_users(cmd_parms* cmd, void*, int on) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  t->unsigned_users = on != 0;
  return nullptr;
}

// --- Completion notifications ---

// Longer URLs are refused: the deliverer keeps them in memory only, but a
// receiver's server may refuse a long one anyway.
constexpr size_t kNotifyUrlMax = 2048;

// DeployNotify URL: an absolute http:// or https:// URL with a host, as
// libcurl reads it, the host written after the scheme's "//". The URL may
// hold a token: messages do not repeat it.
const char* cmd_notify(cmd_parms* cmd, void*, const char* arg) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  const std::string url(arg);
  bool plain = !url.empty() && url.size() <= kNotifyUrlMax;
  for (unsigned char c : url) plain = plain && c > 0x20 && c < 0x7f;
  bool valid = false;
  if (plain) {
    CURLU* parsed = curl_url();
    char* scheme = nullptr;
    char* host = nullptr;
    valid = parsed && curl_url_set(parsed, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
            curl_url_get(parsed, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            curl_url_get(parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != 0 &&
            (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
            (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) &&
            // libcurl reads http:///hook as the host "hook": the host must
            // be written.
            url[url.find("://") + 3] != '/';
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(parsed);
  }
  if (!valid)
    return error(cmd,
                 "DeployNotify: invalid URL (an absolute http:// or https:// URL with a host, "
                 "at most " +
                     std::to_string(kNotifyUrlMax) + " printable ASCII characters)");
  t->notify.push_back(url);
  return nullptr;
}

const char* cmd_notify_secret(cmd_parms* cmd, void*, const char* arg) {
  return set_key(cmd, arg, &TargetDirectives::notify_secret);
}

const char* cmd_notify_ca_file(cmd_parms* cmd, void*, const char* arg) {
  if (const char* err = check_context(cmd)) return err;
  const char* path = ap_server_root_relative(cmd->pool, arg);
  if (!path || !*arg) return error(cmd, named(cmd, arg));
  if (access(path, R_OK) != 0)
    return error(cmd, std::string("DeployNotifyCAFile: cannot read '") + path +
                          "': " + std::strerror(errno));
  config_of(cmd).notify_ca_file = path;
  return nullptr;
}

// --- DeploySupersede, DeployIdempotencyHeader ---

const char* cmd_supersede(cmd_parms* cmd, void*, const char* arg) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  const std::string_view mode = arg;
  if (mode == "off")
    t->supersede = Supersede::off;
  else if (mode == "queued")
    t->supersede = Supersede::queued;
  else if (mode == "running")
    t->supersede = Supersede::running;
  else
    return error(cmd, std::string("DeploySupersede: '") + arg + "' is not off, queued or running");
  return nullptr;
}

const char* cmd_idempotency_header(cmd_parms* cmd, void*, const char* name) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  // An HTTP field name: a token (RFC 9110).
  const std::string_view text = name;
  const bool token = !text.empty() && text.size() <= 64 &&
                     text.find_first_not_of(
                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789!#$%&'*+-.^_`|~") == std::string_view::npos;
  if (!token)
    return error(cmd, std::string("DeployIdempotencyHeader: '") + name +
                          "' is not a header name (at most 64 characters of an HTTP token)");
  t->idempotency_header = name;
  return nullptr;
}

// --- DeployUser ---

const char* cmd_user(cmd_parms* cmd, void*, const char* user, const char* group) {
  const char* err;
  TargetDirectives* t = target_of(cmd, &err);
  if (!t) return err;
  errno = 0;
  const passwd* pw = getpwnam(user);
  if (!pw)
    return error(cmd, named(cmd, user) + (errno ? std::string(" (cannot look the user up: ") +
                                                      strerror(errno) + ")"
                                                : std::string(" (no such user)")));
  JobUser job_user;
  job_user.name = pw->pw_name;
  job_user.uid = pw->pw_uid;
  job_user.gid = pw->pw_gid;
  job_user.home = pw->pw_dir ? pw->pw_dir : "";
  if (job_user.uid == 0) return error(cmd, named(cmd, user) + " (uid 0: a job never runs as root)");
  if (group) {
    errno = 0;
    const struct group* gr = getgrnam(group);
    if (!gr)
      return error(cmd, named(cmd, group) + (errno ? std::string(" (cannot look the group up: ") +
                                                         strerror(errno) + ")"
                                                   : std::string(" (no such group)")));
    job_user.gid = gr->gr_gid;
  }
  if (job_user.gid == 0)
    return error(cmd,
                 named(cmd, group ? group : user) + " (gid 0: a job never runs as group root)");
  // The supplementary groups initgroups() gives the job must not hold root's
  // group either.
  std::vector<gid_t> groups(64);
  int count = int(groups.size());
  while (getgrouplist(job_user.name.c_str(), job_user.gid, groups.data(), &count) < 0) {
    groups.resize(size_t(count) + 64);
    count = int(groups.size());
  }
  for (int i = 0; i < count; ++i)
    if (groups[size_t(i)] == 0)
      return error(cmd, named(cmd, user) + " (a member of group root, gid 0)");
  t->user = std::move(job_user);
  return nullptr;
}

void delete_config(ServerConfig* config) { delete config; }

}  // namespace

// httpd's directive table stores every handler as one untyped function
// pointer and calls it with the arguments its kind (TAKE1, ...) promises.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-function-type"
const command_rec directives[] = {
    AP_INIT_TAKE1("DeployStateDir", (cmd_func)cmd_state_dir, nullptr, RSRC_CONF,
                  "Directory of the job table and the job logs"),
    AP_INIT_TAKE1("DeployHistory", (cmd_func)cmd_history, nullptr, RSRC_CONF, "Finished jobs kept"),
    AP_INIT_TAKE1("DeployMaxRunning", (cmd_func)cmd_max_running, nullptr, RSRC_CONF,
                  "Jobs running at once, all targets together"),
    AP_INIT_TAKE1("DeployQueueLimit", (cmd_func)cmd_queue_limit, nullptr, RSRC_CONF,
                  "Jobs accepted but not yet started"),
    AP_INIT_TAKE1("DeployMaxBody", (cmd_func)cmd_max_body, nullptr, RSRC_CONF,
                  "Largest request body accepted"),
    AP_INIT_TAKE1("DeployEventsTimeout", (cmd_func)cmd_events_timeout, nullptr, RSRC_CONF,
                  "Longest life of one event-stream connection"),
    AP_INIT_TAKE1("DeployEventsMaxStreams", (cmd_func)cmd_events_max_streams, nullptr, RSRC_CONF,
                  "Event streams open at once on the whole server"),
    AP_INIT_TAKE1("DeployEventsMaxPerClient", (cmd_func)cmd_events_max_per_client, nullptr,
                  RSRC_CONF, "Event streams open at once from one client address"),
    AP_INIT_FLAG("DeploySync", (cmd_func)cmd_sync, nullptr, RSRC_CONF,
                 "On: accepted jobs and their states reach stable storage before they are "
                 "answered or acted on"),
    AP_INIT_TAKE12("DeployStore", (cmd_func)cmd_store, nullptr, RSRC_CONF,
                   "file (the default), or postgresql CONNINFO: where jobs, queue and logs live"),
    AP_INIT_TAKE1("DeployNodeName", (cmd_func)cmd_node_name, nullptr, RSRC_CONF,
                  "This node's name, shown as node in the job JSON (default: the host name)"),
    AP_INIT_TAKE1("DeployLease", (cmd_func)cmd_lease, nullptr, RSRC_CONF,
                  "How long a running job's runner may go without renewing its lease"),
    AP_INIT_RAW_ARGS("<DeployTarget", (cmd_func)cmd_target_section, nullptr, RSRC_CONF,
                     "A deployment target and its settings"),
    AP_INIT_RAW_ARGS("DeployCommand", (cmd_func)cmd_command, nullptr, RSRC_CONF,
                     "Program (absolute path) and arguments of the job"),
    AP_INIT_TAKE2("DeployParam", (cmd_func)cmd_param, nullptr, RSRC_CONF,
                  "A parameter a submission may give, and the pattern its value must match"),
    AP_INIT_TAKE1("DeployTimeout", (cmd_func)cmd_timeout, nullptr, RSRC_CONF,
                  "Wall-clock limit of a running job"),
    AP_INIT_TAKE1("DeployKillGrace", (cmd_func)cmd_kill_grace, nullptr, RSRC_CONF,
                  "Time between SIGTERM and SIGKILL"),
    AP_INIT_TAKE1("DeployQueueTimeout", (cmd_func)cmd_queue_timeout, nullptr, RSRC_CONF,
                  "How long a job may wait to start before it expires"),
    AP_INIT_TAKE1("DeployWaitChangeNotification", (cmd_func)cmd_wait, nullptr, RSRC_CONF,
                  "Quiet window: start this long after the last trigger"),
    AP_INIT_TAKE1("DeployMaxWaitChangeNotification", (cmd_func)cmd_max_wait, nullptr, RSRC_CONF,
                  "Start never later than this long after the first trigger"),
    AP_INIT_TAKE1("DeployConcurrency", (cmd_func)cmd_concurrency, nullptr, RSRC_CONF,
                  "Jobs of the target running at once (0: only the global limit)"),
    AP_INIT_TAKE1("DeployGroupBy", (cmd_func)cmd_group_by, nullptr, RSRC_CONF,
                  "The DeployParam whose value groups the jobs (coalescing, concurrency)"),
    AP_INIT_TAKE2("DeployEnv", (cmd_func)cmd_env, nullptr, RSRC_CONF,
                  "An environment variable for the job"),
    AP_INIT_TAKE1("DeployWorkingDirectory", (cmd_func)cmd_working_directory, nullptr, RSRC_CONF,
                  "Working directory of the job"),
    AP_INIT_TAKE1("DeploySecret", (cmd_func)cmd_secret, nullptr, RSRC_CONF,
                  "file:PATH or env:NAME: key of the X-Hub-Signature-256 HMAC"),
    AP_INIT_TAKE2("DeploySecretEnv", (cmd_func)cmd_secret_env, nullptr, RSRC_CONF,
                  "NAME file:PATH or env:NAME: a secret in the job's environment, masked in its "
                  "output"),
    AP_INIT_TAKE2("DeployParamFrom", (cmd_func)cmd_param_from, nullptr, RSRC_CONF,
                  "NAME SOURCE: a parameter taken from json:/POINTER, header:NAME or query:NAME"),
    AP_INIT_TAKE2("DeployFilter", (cmd_func)cmd_filter, nullptr, RSRC_CONF,
                  "SOURCE REGEX: a submission whose SOURCE does not match is ignored"),
    AP_INIT_TAKE1("DeployToken", (cmd_func)cmd_token, nullptr, RSRC_CONF,
                  "file:PATH or env:NAME: the X-Gitlab-Token every submission must carry"),
    AP_INIT_FLAG("DeployUnsignedUsers", (cmd_func)cmd_unsigned_users, nullptr, RSRC_CONF,
                 "On: a user httpd authenticated may submit without signature or token"),
    AP_INIT_TAKE1("DeployNotify", (cmd_func)cmd_notify, nullptr, RSRC_CONF,
                  "An http:// or https:// URL POSTed the job's JSON when a job finishes"),
    AP_INIT_TAKE1("DeployNotifySecret", (cmd_func)cmd_notify_secret, nullptr, RSRC_CONF,
                  "file:PATH or env:NAME: the key of the notifications' X-Hub-Signature-256"),
    AP_INIT_TAKE1("DeployNotifyCAFile", (cmd_func)cmd_notify_ca_file, nullptr, RSRC_CONF,
                  "PEM certificates https:// notifications trust instead of the system's"),
    AP_INIT_TAKE1("DeploySupersede", (cmd_func)cmd_supersede, nullptr, RSRC_CONF,
                  "off, queued or running: which older jobs of the target a new one cancels"),
    AP_INIT_TAKE1("DeployIdempotencyHeader", (cmd_func)cmd_idempotency_header, nullptr, RSRC_CONF,
                  "NAME: a header whose value is the submission's idempotency key"),
    AP_INIT_TAKE12("DeployUser", (cmd_func)cmd_user, nullptr, RSRC_CONF,
                   "USER [GROUP]: the user (and group) the job runs as"),
    {nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr}};
#pragma GCC diagnostic pop

void* create_server_config(apr_pool_t* pool, server_rec*) {
  auto* config = new ServerConfig();
  apr_pool_cleanup_register(
      pool, config,
      [](void* c) -> apr_status_t {
        delete_config(static_cast<ServerConfig*>(c));
        return APR_SUCCESS;
      },
      apr_pool_cleanup_null);
  return config;
}

std::string default_node_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "localhost";
  std::string name(host);
  name = name.substr(0, name.find('.'));
  return is_valid_target_name(name) ? name : "localhost";
}

ServerConfig& main_server_config() {
  return *static_cast<ServerConfig*>(
      ap_get_module_config(ap_server_conf->module_config, &deploy_module));
}

const Target* Settings::find(const std::string& name) const {
  for (const Target& t : targets)
    if (t.name == name) return &t;
  return nullptr;
}

const std::optional<std::string>& Settings::group_by(const std::string& name) const {
  static const std::optional<std::string> none;
  const Target* target = find(name);
  return target ? target->policy.group_by : none;
}

std::map<std::string, TargetPolicy> Settings::policies() const {
  std::map<std::string, TargetPolicy> out;
  for (const Target& t : targets) out[t.name] = t.policy;
  return out;
}

std::vector<JobUser> Settings::job_users() const {
  std::vector<JobUser> out;
  for (const Target& t : targets) {
    if (!t.user) continue;
    bool seen = false;
    for (const JobUser& u : out) seen |= u.uid == t.user->uid && u.gid == t.user->gid;
    if (!seen) out.push_back(*t.user);
  }
  return out;
}

// A DeployUser job must not start in the state dir: it starts in the
// user's home directory, or in / when the user has none.
static std::string default_working_directory(const std::optional<JobUser>& user,
                                             const std::string& state_dir) {
  if (!user) return state_dir;
  struct stat st;
  if (!user->home.empty() && user->home[0] == '/' && stat(user->home.c_str(), &st) == 0 &&
      S_ISDIR(st.st_mode))
    return user->home;
  return "/";
}

// The server level's variables, then the target's, which win for one name.
static EnvList merged_env(const EnvList& server, const EnvList& target) {
  EnvList out = server;
  for (const auto& [name, value] : target) {
    bool replaced = false;
    for (auto& [n, v] : out)
      if (n == name) v = value, replaced = true;
    if (!replaced) out.emplace_back(name, value);
  }
  return out;
}

// An unset directive takes its default: every field of a Settings{} and a
// Target{} starts as its directive's default (directive_specs.h).
Status resolve_settings(ServerConfig& config, apr_pool_t* pool) {
  Settings s;
  s.state_dir = config.state_dir
                    ? *config.state_dir
                    : ap_server_root_relative(pool, directive_spec("DeployStateDir").word);
  s.history = config.history.value_or(s.history);
  s.queue_limit = config.queue_limit.value_or(s.queue_limit);
  s.max_running = config.max_running.value_or(s.max_running);
  s.max_body = config.max_body.value_or(s.max_body);
  s.events_timeout = config.events_timeout.value_or(s.events_timeout);
  s.events_max_streams = config.events_max_streams.value_or(s.events_max_streams);
  s.events_max_per_client = config.events_max_per_client.value_or(s.events_max_per_client);
  s.sync = config.sync.value_or(s.sync);
  static_assert(directive_spec("DeployStore").word == std::string_view("file"));
  s.store = config.store.value_or(StoreKind::file);
  s.store_conninfo = s.store == StoreKind::postgresql ? config.store_conninfo : std::string();
  s.node_name = config.node_name ? *config.node_name : default_node_name();
  s.lease = config.lease.value_or(s.lease);
  s.notify_ca_file = config.notify_ca_file.value_or("");
  const TargetDirectives& d = config.defaults;
  for (const TargetDirectives& t : config.targets) {
    Target target;
    target.name = t.name;
    if (!(t.command || d.command))
      return Status::error("<DeployTarget " + t.name + "> at " + t.defined_at +
                           " has no DeployCommand");
    target.command = t.command ? *t.command : *d.command;
    // Parameters and environment add up; the target's win for one name.
    target.params = t.params;
    for (const ParamRule& rule : d.params) {
      bool overridden = false;
      for (const ParamRule& own : t.params) overridden |= own.name == rule.name;
      if (!overridden) target.params.push_back(rule);
    }
    target.env = merged_env(d.env, t.env);
    target.secret_env = merged_env(d.secret_env, t.secret_env);
    for (const auto& [name, secret] : target.secret_env)
      for (const auto& [env_name, value] : target.env)
        if (env_name == name)
          return Status::error("<DeployTarget " + t.name + "> at " + t.defined_at +
                               ": DeploySecretEnv " + name + " and DeployEnv " + name +
                               " set the same variable");
    // The target's own value, else the server level's, else the default.
    target.timeout = t.timeout.value_or(d.timeout.value_or(target.timeout));
    target.kill_grace = t.kill_grace.value_or(d.kill_grace.value_or(target.kill_grace));
    target.queue_timeout = t.queue_timeout.value_or(d.queue_timeout.value_or(target.queue_timeout));
    TargetPolicy& policy = target.policy;
    policy.queue_timeout = target.queue_timeout;
    policy.quiet_window = t.quiet_window.value_or(d.quiet_window.value_or(policy.quiet_window));
    policy.max_wait = t.max_wait.value_or(d.max_wait.value_or(policy.max_wait));
    policy.concurrency = t.concurrency.value_or(d.concurrency.value_or(policy.concurrency));
    if (target.policy.max_wait != 0 && target.policy.max_wait < target.policy.quiet_window)
      return Status::error("<DeployTarget " + t.name + "> at " + t.defined_at +
                           ": DeployMaxWaitChangeNotification (" +
                           std::to_string(target.policy.max_wait / 1000) +
                           " ms) is smaller than DeployWaitChangeNotification (" +
                           std::to_string(target.policy.quiet_window / 1000) + " ms)");
    target.policy.group_by = t.group_by ? t.group_by : d.group_by;
    if (const std::optional<std::string>& by = target.policy.group_by) {
      bool declared = false;
      for (const ParamRule& rule : target.params) declared |= rule.name == *by;
      if (!declared)
        return Status::error("<DeployTarget " + t.name + "> at " + t.defined_at +
                             ": DeployGroupBy " + *by + ": no DeployParam " + *by +
                             " is declared for the target");
    }
    for (const TargetDirectives* level : {&t, &d})
      if (level->secret && level->token)
        return Status::error(
            (level == &d ? std::string("the server level")
                         : "<DeployTarget " + t.name + "> at " + t.defined_at) +
            " has both DeploySecret and DeployToken: a target is signed by one of them");
    // A target's own DeploySecret or DeployToken replaces the server's of either kind.
    const TargetDirectives& signer = t.secret || t.token ? t : d;
    target.secret = signer.secret;
    target.token = signer.token;
    target.unsigned_users =
        t.unsigned_users.value_or(d.unsigned_users.value_or(target.unsigned_users));
    target.supersede = t.supersede.value_or(d.supersede.value_or(target.supersede));
    target.idempotency_header = t.idempotency_header ? t.idempotency_header : d.idempotency_header;
    target.param_from = t.param_from;
    target.filters = t.filters;
    for (const ParamFrom& from : t.param_from) {
      bool declared = false;
      for (const ParamRule& rule : target.params) declared |= rule.name == from.param;
      if (!declared)
        return Status::error("<DeployTarget " + t.name + "> at " + t.defined_at +
                             ": DeployParamFrom " + from.param +
                             " names a parameter that no DeployParam declares");
    }
    // The server level's URLs apply to every target, before its own.
    target.notify = d.notify;
    target.notify.insert(target.notify.end(), t.notify.begin(), t.notify.end());
    if (target.notify.size() > kNotificationsMax)
      return Status::error("<DeployTarget " + t.name + "> at " + t.defined_at + " has " +
                           std::to_string(target.notify.size()) +
                           " DeployNotify URLs (with the server level's): at most " +
                           std::to_string(kNotificationsMax));
    target.notify_secret = t.notify_secret ? t.notify_secret : d.notify_secret;
    target.user = t.user ? t.user : d.user;
    target.working_directory =
        t.working_directory
            ? *t.working_directory
            : d.working_directory.value_or(default_working_directory(target.user, s.state_dir));
    s.targets.push_back(std::move(target));
  }
  config.settings = std::move(s);
  return Status::ok();
}

}  // namespace deploy
