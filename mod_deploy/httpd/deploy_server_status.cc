#include "deploy_server_status.h"

#include <httpd.h>
#include <apr_optional_hooks.h>
#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>
#include <mod_status.h>

#include <exception>
#include <string>
#include <vector>

#include "deploy_module.h"
#include "deploy_state.h"
#include "job_json.h"

namespace deploy {
namespace {

struct RunningJob {
  uint64_t id;
  std::string target;
  int progress;  // -1: none
  std::string stage;
  Micros started_at;
};

// Copied under the table lock, rendered after it (as mod_status does).
struct StatusSnapshot {
  uint64_t waiting = 0, queued = 0;
  std::vector<RunningJob> running;
  uint64_t accepted = 0, succeeded = 0, failed = 0;
};

// An error (and *out untouched) when the table stays busy.
Status take_status_snapshot(const ModuleState& state, StatusSnapshot* out) {
  StatusSnapshot s;
  StoreCounters store;
  if (Status st = state.store->counters(&store); !st.is_ok()) return st;
  const TableCounters& counters = store.counters;
  s.accepted = counters.accepted;
  s.succeeded = counters.finished[uint8_t(JobState::succeeded)];
  s.failed = counters.finished[uint8_t(JobState::failed)];
  for (const Job& job : store.unfinished) {
    if (job.state == JobState::waiting) ++s.waiting;
    if (job.state == JobState::queued) ++s.queued;
    if (job.state == JobState::running)
      s.running.push_back(
          RunningJob{job.id, job.target, job.progress, job.stage.value_or(""), job.started_at});
  }
  *out = std::move(s);
  return Status::ok();
}

void render_short(request_rec* r, const StatusSnapshot& s) {
  ap_rprintf(r, "DeployWaiting: %" APR_UINT64_T_FMT "\n", apr_uint64_t(s.waiting));
  ap_rprintf(r, "DeployQueued: %" APR_UINT64_T_FMT "\n", apr_uint64_t(s.queued));
  ap_rprintf(r, "DeployRunning: %" APR_UINT64_T_FMT "\n", apr_uint64_t(s.running.size()));
  ap_rprintf(r, "DeployAccepted: %" APR_UINT64_T_FMT "\n", apr_uint64_t(s.accepted));
  ap_rprintf(r, "DeploySucceeded: %" APR_UINT64_T_FMT "\n", apr_uint64_t(s.succeeded));
  ap_rprintf(r, "DeployFailed: %" APR_UINT64_T_FMT "\n", apr_uint64_t(s.failed));
}

const char* html(request_rec* r, const std::string& text) {
  return ap_escape_html(r->pool, text.c_str());
}

void render_html(request_rec* r, const ModuleState& state, const StatusSnapshot& s) {
  ap_rputs("<hr />\n<h2><a name=\"deploy\">mod_deploy</a></h2>\n", r);
  ap_rprintf(r,
             "<dl><dt>Jobs waiting: %" APR_UINT64_T_FMT ", queued: %" APR_UINT64_T_FMT
             ", running: %" APR_UINT64_T_FMT " (at most %u)</dt>\n",
             apr_uint64_t(s.waiting), apr_uint64_t(s.queued), apr_uint64_t(s.running.size()),
             state.settings->max_running);
  ap_rprintf(r,
             "<dt>Accepted: %" APR_UINT64_T_FMT ", succeeded: %" APR_UINT64_T_FMT
             ", failed: %" APR_UINT64_T_FMT "</dt>\n",
             apr_uint64_t(s.accepted), apr_uint64_t(s.succeeded), apr_uint64_t(s.failed));
  for (const std::string& base : state.bases)
    ap_rprintf(r, "<dt>Dashboard: <a href=\"%s/\">%s/</a></dt>\n", html(r, base), html(r, base));
  ap_rputs("</dl>\n", r);
  if (s.running.empty()) return;
  ap_rputs(
      "<table border=\"0\"><tr><th>Job</th><th>Target</th><th>Progress</th><th>Stage</th>"
      "<th>Started</th></tr>\n",
      r);
  for (const RunningJob& job : s.running) {
    const std::string progress = job.progress < 0 ? "-" : std::to_string(job.progress) + "%";
    ap_rprintf(
        r, "<tr><td>%" APR_UINT64_T_FMT "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
        apr_uint64_t(job.id), html(r, job.target), progress.c_str(), html(r, job.stage),
        job.started_at ? format_time(job.started_at).c_str() : "");
  }
  ap_rputs("</table>\n", r);
}

int status_hook(request_rec* r, int flags) {
  const ModuleState* state = module_state();
  if (!state || !state->table) return OK;
  try {
    StatusSnapshot s;
    if (Status st = take_status_snapshot(*state, &s); !st.is_ok()) {
      // The rest of the status page is still shown.
      ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "mod_deploy: server-status: %s",
                    st.message().c_str());
      return OK;
    }
    if (flags & AP_STATUS_SHORT)
      render_short(r, s);
    else
      render_html(r, *state, s);
  } catch (const std::exception& e) {
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_deploy: server-status: %s", e.what());
  }
  return OK;
}

}  // namespace

void register_server_status_hook() {
  APR_OPTIONAL_HOOK(ap, status_hook, status_hook, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace deploy
