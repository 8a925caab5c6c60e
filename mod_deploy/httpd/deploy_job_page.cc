#include "deploy_job_page.h"

#include <string_view>

#include "dashboard_css.h"
#include "dashboard_view_js.h"
#include "deploy_html.h"
#include "deploy_response.h"
#include "duration.h"
#include "event_id.h"
#include "job_json.h"
#include "job_page_css.h"
#include "job_page_js.h"

namespace deploy {
namespace {

// The page inlines at most this much of the log, the newest part; the
// script then keeps at most kLogShown of it (SPEC: a job of 10 MiB of output
// stays readable).
constexpr size_t kLogInlined = 64 * 1024;
constexpr size_t kLogShown = 10 * 1024 * 1024;

static_assert(embedded::job_page_css.find("</") == std::string_view::npos);
static_assert(embedded::job_page_js.find("</") == std::string_view::npos);

// The newest whole lines of the log, at most kLogInlined bytes of them:
// `from` is where they begin, `end` where they end (the event stream goes on
// from there). While the job runs a last line without its newline is still
// being written: it is left to the stream, which sends whole lines too.
struct LogTail {
  std::string text;
  uint64_t from = 0, end = 0, size = 0;
};

LogTail read_log_tail(JobStore& store, uint64_t id, bool finished) {
  LogTail tail;
  uint64_t size = 0;
  if (!store.output_size(id, &size).is_ok() || size == 0) return tail;
  tail.size = size;
  tail.from = size > kLogInlined ? size - kLogInlined : 0;
  if (!store.read_output(id, tail.from, size_t(size - tail.from), &tail.text).is_ok())
    tail.text.clear();
  if (!finished) {
    size_t last = tail.text.rfind('\n');
    tail.text.resize(last == std::string::npos ? 0 : last + 1);
  }
  if (tail.from > 0) {  // begin at a line
    size_t first = tail.text.find('\n');
    size_t skip = first == std::string::npos ? tail.text.size() : first + 1;
    tail.text.erase(0, skip);
    tail.from += skip;
  }
  tail.end = tail.from + tail.text.size();
  return tail;
}

const std::string kDash = "\xE2\x80\x94";

// The durations the page shows; the script computes the same from the JSON
// (jobDurations in job_page.js).
std::string waited(const Job& job) {
  return job.started_at ? format_duration(job.started_at - job.submitted_at) : kDash;
}

// NAME=VALUE each (params, outputs), or "none".
std::string pairs_html(const Params& pairs) {
  std::string html;
  for (const auto& [name, value] : pairs)
    html += "<code>" + html_escape(name) + "=" + html_escape(value) + "</code>";
  return html.empty() ? "<span class=\"sub\">none</span>" : html;
}

// The stage timeline: a row per stage with its start and how long it took
// (an open stage: so far, counted on by the script from data-from). The
// script renders the same rows from the JSON (stageRows in
// dashboard_view.js).
std::string stages_html(const Job& job, Micros now) {
  std::string html;
  for (size_t i = 0; i < job.stages.size(); ++i) {
    const Stage& stage = job.stages[i];
    const Micros finished = stage_finished_at(job, i);
    html += "<li><span class=\"name\">" + html_escape(stage.name) +
            "</span><span class=\"sub\" title=\"" + format_time(stage.started_at) + "\">" +
            display_time(stage.started_at) + "</span><span class=\"took\"";
    if (finished)
      html += ">" + format_duration(finished - stage.started_at);
    else
      html += " data-from=\"" + millis(stage.started_at) + "\">" +
              format_duration(now - stage.started_at);
    html += "</span></li>";
  }
  return html;
}

std::string result(const Job& job) {
  if (job.exit_code) return "exit " + std::to_string(*job.exit_code);
  if (job.signal) return "signal " + std::to_string(*job.signal);
  return kDash;
}

}  // namespace

int send_job_page(request_rec* r, const ModuleState& state, TargetAccess& access,
                  const std::string& base, const Job& job) {
  const Target* target = state.settings->find(job.target);
  // As on the dashboard: a cancel from a form carries no signature, so the
  // button is there when a submission without one would be allowed.
  const bool cancelable = !is_final(job.state) && target && access.may_submit_unsigned(*target);
  const LogTail log = read_log_tail(*state.store, job.id, is_final(job.state));
  const Micros now = wall_now();  // display: compared with the job's wall times
  const std::string nonce = secure_html_headers(r);
  const std::string b = html_escape(ap_escape_uri(r->pool, base.c_str()));
  const std::string id = std::to_string(job.id);
  const std::string self = b + "/jobs/" + id;
  const std::string since = format_job_event_id(JobEventId{job.change_seq, log.end});
  const std::string name = html_escape(job.target);

  ChunkedText out;
  out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  out += "<title>Job #" + id + " \xC2\xB7 " + name + "</title><link rel=\"icon\" href=\"data:,\">";
  out += "<style nonce=\"" + nonce + "\">" + std::string(embedded::dashboard_css) +
         std::string(embedded::job_page_css) + "</style></head>\n";
  out += "<body class=\"job-page\" data-base=\"" + b + "\" data-job=\"" + id + "\" data-state=\"" +
         std::string(state_name(job.state)) + "\" data-since=\"" + since + "\" data-now=\"" +
         millis(now) + "\" data-log-from=\"" + std::to_string(log.from) + "\" data-log-limit=\"" +
         std::to_string(kLogShown) + "\">\n";
  out += "<header><h1>Job #" + id + " <span class=\"target\">" + name +
         "</span></h1><span id=\"live\" class=\"live off\">static page</span>";
  out += "<span class=\"meta\">as of " + display_time(now) + " UTC &middot; <a href=\"" + b +
         "/\">&laquo; dashboard</a> &middot; <a href=\"" + self +
         "\">reload</a> &middot; <a href=\"" + self + "/log\">raw log</a></span></header>\n";
  out +=
      "<noscript><p class=\"note\">Without JavaScript this page does not update itself: "
      "reload it. Cancel answers with the job's JSON.</p></noscript>\n<main>\n";

  out += "<section id=\"summary\"><h2>Job</h2><dl class=\"facts\">";
  auto fact = [&](const char* label, const char* field, const std::string& html,
                  const std::string& attributes = "") {
    out += std::string("<dt>") + label + "</dt><dd data-field=\"" + field + "\"" + attributes +
           ">" + html + "</dd>";
  };
  fact("Target", "target", name);
  fact("State", "state", state_badge(job.state));
  std::string pct = job.progress < 0 ? "" : std::to_string(job.progress);
  fact("Progress", "progress",
       "<progress max=\"100\"" + (pct.empty() ? "" : " value=\"" + pct + "\"") +
           "></progress><span class=\"pct\">" + (pct.empty() ? kDash : pct + "%") + "</span>");
  fact("Stage", "stage", job.stage ? html_escape(*job.stage) : kDash);
  fact("Parameters", "params", pairs_html(job.params));
  fact("Outputs", "outputs", pairs_html(job.outputs));
  fact("Submitted by", "by", job.submitted_by ? html_escape(*job.submitted_by) : kDash);
  fact("Requests", "requests", std::to_string(job.requests));
  auto time = [&](const char* label, const char* field, Micros t) {
    fact(label, field, display_time(t), " title=\"" + (t ? format_time(t) : "") + "\"");
  };
  time("Submitted (UTC)", "submitted", job.submitted_at);
  time("Started (UTC)", "started", job.started_at);
  time("Finished (UTC)", "finished", job.finished_at);
  fact("Waited", "waited", waited(job));
  if (job.started_at && !job.finished_at)
    fact("Duration", "duration", format_duration(now - job.started_at),
         " data-from=\"" + millis(job.started_at) + "\"");
  else
    fact("Duration", "duration",
         job.started_at ? format_duration(job.finished_at - job.started_at) : kDash);
  const bool bad = (job.exit_code && *job.exit_code != 0) || job.signal;
  fact("Result", "result", result(job), bad ? " class=\"bad\"" : "");
  out += "</dl>";
  out += std::string(
             "<form id=\"cancel\" class=\"cancel\" data-kind=\"cancel\" method=\"post\" "
             "action=\"") +
         self + "/cancel\"" + (cancelable ? "" : " hidden") +
         "><button type=\"submit\">Cancel</button> <span class=\"result\" "
         "role=\"status\"></span></form>";
  out += "</section>\n";

  out += "<section id=\"stages\"><h2>Stages</h2><ol id=\"stage-list\" class=\"stages\">" +
         stages_html(job, now) + "</ol><p id=\"stages-empty\" class=\"empty\"" +
         (job.stages.empty() ? "" : " hidden") + ">No stage yet.</p></section>\n";

  out += "<section id=\"output\"><h2>Log</h2><p id=\"log-cut\" class=\"note\"";
  out += std::string(log.from ? "" : " hidden") + "><span class=\"text\">The first " +
         std::to_string(log.from) + " bytes of the log are not shown here.</span> <a href=\"" +
         self + "/log\">The whole log</a></p>";
  out += "<pre id=\"log\" class=\"log\" tabindex=\"0\">\n" + html_escape(log.text) + "</pre>";
  out += std::string("<p id=\"log-empty\" class=\"empty\"") + (log.end ? " hidden" : "") +
         ">No output yet.</p></section>\n";

  out += "</main>\n<script nonce=\"" + nonce + "\">" + std::string(embedded::dashboard_view_js) +
         std::string(embedded::job_page_js) + "</script>\n</body></html>\n";
  return send_body(r, HTTP_OK, "text/html; charset=utf-8", out);
}

}  // namespace deploy
