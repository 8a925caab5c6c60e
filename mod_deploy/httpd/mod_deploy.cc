// mod_deploy: the module record and its hooks. The work is elsewhere:
// deploy_config (directives), deploy_handler (routes), deploy_scheduler_process
// (when jobs start), ../runner (the process that owns a running job), ../core
// (the domain, without httpd).
#include <httpd.h>
#include <ap_expr.h>
#include <apr_strings.h>
#include <dlfcn.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <libgen.h>
#include <unistd.h>
#include <unixd.h>

#include <algorithm>
#include <exception>
#include <string>

#include "deploy_access.h"
#include "deploy_config.h"
#include "deploy_handler.h"
#include "deploy_module.h"
#include "deploy_scheduler_process.h"
#include "deploy_server_status.h"
#include "deploy_state.h"
#include "store_spec.h"

namespace deploy {
namespace {

ModuleState* g_state = nullptr;

std::string location_path(const char* args) {
  std::string path(args ? args : "");
  if (!path.empty() && path.back() == '>') path.pop_back();
  if (path.size() >= 2 && (path.front() == '"' || path.front() == '\'') &&
      path.back() == path.front())
    path = path.substr(1, path.size() - 2);
  while (!path.empty() && path.back() == '/') path.pop_back();
  return path;
}

// The handler is mounted with `SetHandler deploy` inside <Location BASE>:
// httpd does not tell a handler which section selected it, so the bases are
// read from the configuration tree once.
void find_bases(const ap_directive_t* node, std::vector<std::string>* bases) {
  for (; node; node = node->next) {
    if (strcasecmp(node->directive, "<Location") == 0) {
      for (const ap_directive_t* child = node->first_child; child; child = child->next)
        if (strcasecmp(child->directive, "SetHandler") == 0 && child->args &&
            strcasecmp(child->args, "deploy") == 0)
          bases->push_back(location_path(node->args));
    }
    find_bases(node->first_child, bases);
  }
}

std::string runner_beside_module() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&deploy_module), &info) == 0 || !info.dli_fname) return "";
  std::string path(info.dli_fname);
  size_t slash = path.rfind('/');
  return (slash == std::string::npos ? std::string(".") : path.substr(0, slash)) + "/deploy-runner";
}

// DeployEventsMaxStreams, or a quarter of MaxRequestWorkers: three quarters
// of the workers stay free for everything else, whatever the streams do.
uint32_t stream_limit(const Settings& settings) {
  if (settings.events_max_streams > 0) return settings.events_max_streams;
  int daemons = 0, threads = 0;
  if (ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons) != APR_SUCCESS) daemons = 1;
  if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS || threads < 1) threads = 1;
  return uint32_t(std::max(1, std::max(daemons, 1) * threads / 4));
}

int check_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec* s) {
  try {
    Status resolved = resolve_settings(main_server_config(), pconf);
    // A DeployUser that is httpd's User would look closed and be open.
    for (const Target& t : main_server_config().settings.targets) {
      if (resolved.is_ok() && t.user && t.user->uid == uint32_t(ap_unixd_config.user_id))
        resolved = Status::error("<DeployTarget " + t.name + ">: DeployUser " + t.user->name +
                                 " is httpd's User, who owns the job table; leave DeployUser "
                                 "out to run the job as User, or name a user of its own");
    }
    if (!resolved.is_ok()) {
      ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s, "mod_deploy: %s",
                   resolved.message().c_str());
      return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
  } catch (const std::exception& e) {
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s, "mod_deploy: %s", e.what());
    return HTTP_INTERNAL_SERVER_ERROR;
  }
}

int post_config(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec* s) {
  // The first, throw-away run of post_config at start-up does nothing.
  if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;
  try {
    auto* state = new ModuleState();
    apr_pool_cleanup_register(
        pconf, state,
        [](void* p) -> apr_status_t {
          if (g_state == p) g_state = nullptr;
          delete static_cast<ModuleState*>(p);
          return APR_SUCCESS;
        },
        apr_pool_cleanup_null);
    const Settings& settings = main_server_config().settings;
    state->settings = &settings;
    state->started_mono = mono_now();
    find_bases(ap_conftree, &state->bases);
    state->runner_path = runner_beside_module();
    if (access(state->runner_path.c_str(), X_OK) != 0) {
      ap_log_error(APLOG_MARK, APLOG_EMERG, errno, s,
                   "mod_deploy: the runner %s (expected beside mod_deploy.so) is not executable",
                   state->runner_path.c_str());
      return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!settings.job_users().empty() && geteuid() != 0) {
      ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                   "mod_deploy: DeployUser needs httpd to be started as root");
      return HTTP_INTERNAL_SERVER_ERROR;
    }
    // The launcher becomes User keeping CAP_SETUID: never as root.
    if (!settings.job_users().empty() &&
        (ap_unixd_config.user_id == 0 || ap_unixd_config.group_id == 0)) {
      ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                   "mod_deploy: DeployUser needs httpd's User and Group not to be root");
      return HTTP_INTERNAL_SERVER_ERROR;
    }
    int uid = -1, gid = -1;
    if (geteuid() == 0) {
      uid = int(ap_unixd_config.user_id);
      gid = int(ap_unixd_config.group_id);
    }
    std::vector<std::string> warnings;
    Status st = JobTable::open_for_startup(settings.state_dir, settings.table_capacity(), uid, gid,
                                           &state->table, &warnings);
    for (const std::string& w : warnings)
      ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_deploy: %s", w.c_str());
    if (!st.is_ok()) {
      ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_deploy: DeployStateDir %s: %s",
                   settings.state_dir.c_str(), st.message().c_str());
      return HTTP_INTERNAL_SERVER_ERROR;
    }
    st = StreamSlots::create(pconf, stream_limit(settings), settings.events_max_per_client,
                             &state->stream_slots);
    if (!st.is_ok()) {
      ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_deploy: %s", st.message().c_str());
      return HTTP_INTERNAL_SERVER_ERROR;
    }
    state->table->set_sync(settings.sync);
    // The postgresql engine connects on its first call, which comes in the
    // forked processes only (each its own connections): httpd starts while
    // the database is down.
    state->store = open_store(settings.store_spec(), *state->table);
    g_state = state;
    if (ap_state_query(AP_SQ_RUN_MODE) != AP_SQ_RM_NORMAL) return OK;
    apr_status_t rv = start_scheduler_process(pconf, s, state);
    if (rv != APR_SUCCESS) {
      ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                   "mod_deploy: cannot start the scheduler process");
      return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
  } catch (const std::exception& e) {
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_deploy: %s", e.what());
    return HTTP_INTERNAL_SERVER_ERROR;
  }
}

// A request for the deploy handler names no file, so core's directory walk
// (a stat and an .htaccess lookup per component of the path) is skipped, as
// mod_proxy skips it for proxied requests. Whether the handler is deploy is
// known from the <Location> sections, which httpd walks again, from its
// cache, after this hook; <Directory> sections never applied to BASE.
int map_to_storage(request_rec* r) {
  try {
    if (!g_state || !r->uri || !base_of_path(*g_state, r->uri)) return DECLINED;
    ap_conf_vector_t* const before = r->per_dir_config;
    if (ap_location_walk(r) == OK) {
      auto* core = static_cast<core_dir_config*>(ap_get_core_module_config(r->per_dir_config));
      const char* error = nullptr;
      const char* handler =
          core->expr_handler ? ap_expr_str_exec(r, core->expr_handler, &error) : nullptr;
      if (!error && handler && strcasecmp(handler, "deploy") == 0) return OK;
    }
    r->per_dir_config = before;
    return DECLINED;
  } catch (const std::exception& e) {
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_deploy: %s", e.what());
    return DECLINED;
  }
}

void child_init(apr_pool_t*, server_rec* s) {
  if (!g_state || !g_state->table) return;
  Status st = g_state->table->reopen_lock();
  if (!st.is_ok())
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "mod_deploy: %s", st.message().c_str());
}

int handler(request_rec* r) {
  if (!r->handler || strcmp(r->handler, "deploy") != 0) return DECLINED;
  return handle_request(r);
}

void register_hooks(apr_pool_t*) {
  ap_hook_check_config(check_config, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_post_config(post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_child_init(child_init, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_map_to_storage(map_to_storage, nullptr, nullptr, APR_HOOK_FIRST);
  register_access_hooks();
  ap_hook_handler(handler, nullptr, nullptr, APR_HOOK_MIDDLE);
  register_server_status_hook();
}

}  // namespace

ModuleState* module_state() { return g_state; }

const std::string* base_of_path(const ModuleState& state, std::string_view path) {
  const std::string* best = nullptr;
  for (const std::string& base : state.bases) {
    const bool under = path.substr(0, base.size()) == base &&
                       (path.size() == base.size() || path[base.size()] == '/');
    if (under && (!best || base.size() > best->size())) best = &base;
  }
  return best;
}

}  // namespace deploy

extern "C" {
module AP_MODULE_DECLARE_DATA deploy_module = {
    STANDARD20_MODULE_STUFF,
    nullptr,  // per-directory config: none
    nullptr,
    deploy::create_server_config,  // per-server config
    nullptr,                       // server-level values are read from the main server only
    deploy::directives,
    deploy::register_hooks,
    AP_MODULE_FLAG_NONE,
};
}
