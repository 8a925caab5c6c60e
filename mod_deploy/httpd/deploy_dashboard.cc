#include "deploy_dashboard.h"

#include <httpd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dashboard_css.h"
#include "dashboard_js.h"
#include "dashboard_view_js.h"
#include "deploy_html.h"
#include "deploy_response.h"
#include "duration.h"
#include "job_json.h"
#include "job_store.h"
#include "route.h"
#include "text.h"

namespace deploy {
namespace {

constexpr size_t kHistoryRows = 50;

// The files of dashboard/ go inside <style> and <script> as they are.
static_assert(embedded::dashboard_css.find("</") == std::string_view::npos);
static_assert(embedded::dashboard_view_js.find("</") == std::string_view::npos);
static_assert(embedded::dashboard_js.find("</") == std::string_view::npos);

// The page of the history section a request asks for (BASE/?target=NAME&
// state=STATE&before=ID, the query of GET BASE/jobs): only finished jobs of
// that target, in that final state, with ids below `before`. A value the
// page could not have sent (not a target the page lists, not a final state,
// a malformed query) is ignored, so that nothing of it is shown back.
struct HistoryView {
  std::optional<std::string> target;
  std::optional<JobState> state;
  uint64_t before = 0;  // 0: the first page

  // The dashboard's URL for this view with `before` instead, for an href
  // (`base` HTML-escaped already, & as &amp;): "BASE/?target=...".
  std::string url(const std::string& base, uint64_t page_before) const {
    std::string query;
    auto add = [&](const char* name, std::string_view value) {
      query += (query.empty() ? "?" : "&amp;") + std::string(name) + "=" + std::string(value);
    };
    if (target) add("target", *target);  // a target name needs no escaping
    if (state) add("state", state_name(*state));
    if (page_before) add("before", std::to_string(page_before));
    return base + "/" + query;
  }
};

HistoryView parse_history_view(const request_rec* r, const std::vector<const Target*>& targets) {
  HistoryView view;
  auto parsed = parse_jobs_query(r->args ? r->args : "");
  const JobsQuery* q = std::get_if<JobsQuery>(&parsed);
  if (!q) return view;
  if (q->target && std::any_of(targets.begin(), targets.end(),
                               [&](const Target* t) { return t->name == *q->target; }))
    view.target = q->target;
  if (q->state && is_final(*q->state)) view.state = q->state;
  view.before = q->before;
  return view;
}

// What the page shows, copied under the table lock: every unfinished job,
// the page of the history `view` asks for (the kHistoryRows newest matching
// finished jobs, by id), and the newest finished job of each target. The
// other finished jobs (up to DeployHistory of them) are looked at, not copied.
struct DashboardSnapshot {
  std::deque<Job> jobs;     // not a vector: see chunked_text.h
  uint64_t change_seq = 0;  // every job above reflects the changes up to this one
  Micros now = 0;
  std::set<uint64_t> history;  // the ids of `jobs` on the history page
  bool older = false;          // more matching finished jobs below the page's lowest id
};

// Only the jobs of targets `access` has decided the request may read (see
// TargetAccess::may_read_decided). False (and *out untouched) when the table
// stays busy.
Status take_dashboard_snapshot(const ModuleState& state, TargetAccess& access,
                               const HistoryView& view, DashboardSnapshot* out) {
  DashboardSnapshot s;
  Overview overview;
  const HistoryPage page{kHistoryRows, view.target, view.state, view.before};
  if (Status st = state.store->overview(
          page, [&](std::string_view target) { return access.may_read_decided(target); },
          &overview);
      !st.is_ok())
    return st;
  s.now = wall_now();  // display: compared with the jobs' wall times
  s.change_seq = overview.seen;
  for (Job& job : overview.jobs) s.jobs.push_back(std::move(job));
  s.history = std::move(overview.history);
  s.older = overview.older;
  *out = std::move(s);
  return Status::ok();
}

// How a cell shows a job. The script has a function of the same name for
// each (KINDS in dashboard/dashboard_view.js).
enum class CellKind {
  link,
  text,
  badge,
  params,
  progress,
  time,
  elapsed,
  countdown,
  duration,
  result,
  actions
};

// The kinds' names in the script, in the order of CellKind.
constexpr std::string_view kKindNames[] = {"link",     "text",   "badge",   "params",
                                           "progress", "time",   "elapsed", "countdown",
                                           "duration", "result", "actions"};
static_assert(std::size(kKindNames) == size_t(CellKind::actions) + 1);

std::string_view kind_name(CellKind kind) { return kKindNames[size_t(kind)]; }

// One column of the job sections, for both renders: the server's here and the
// script's, which gets this table in <body data-columns> (columns_json).
struct Column {
  std::string_view field;  // its cells' data-field
  CellKind kind;
  std::string_view key;  // the member of the job's JSON the script reads ("": the kind's own)
  // The same member of Job, for the kinds that show one.
  std::optional<std::string> (*text)(const Job&) = nullptr;  // CellKind::text; nullopt: a dash
  Micros Job::*time = nullptr;   // CellKind::time, elapsed and countdown
  Params Job::*pairs = nullptr;  // CellKind::params: NAME=VALUE each
};

const Column kColumns[] = {
    {"id", CellKind::link, "id"},
    {"target", CellKind::text, "target", [](const Job& j) { return std::optional(j.target); }},
    {"state", CellKind::badge, "state"},
    {"params", CellKind::params, "params", nullptr, nullptr, &Job::params},
    {"outputs", CellKind::params, "outputs", nullptr, nullptr, &Job::outputs},
    {"progress", CellKind::progress, "progress"},
    {"stage", CellKind::text, "stage", [](const Job& j) { return j.stage; }},
    {"requests", CellKind::text, "requests",
     [](const Job& j) { return std::optional(std::to_string(j.requests)); }},
    {"submitted", CellKind::time, "submitted_at", nullptr, &Job::submitted_at},
    {"started", CellKind::time, "started_at", nullptr, &Job::started_at},
    {"finished", CellKind::time, "finished_at", nullptr, &Job::finished_at},
    {"elapsed", CellKind::elapsed, "started_at", nullptr, &Job::started_at},
    {"left", CellKind::countdown, "not_before", nullptr, &Job::not_before},
    {"duration", CellKind::duration, ""},
    {"result", CellKind::result, ""},
    {"by", CellKind::text, "submitted_by", [](const Job& j) { return j.submitted_by; }},
    {"actions", CellKind::actions, ""},
};

const Column& column(std::string_view field) {
  for (const Column& c : kColumns)
    if (c.field == field) return c;
  throw std::logic_error("the dashboard has no column " + std::string(field));
}

// Each job section: its columns (fields of kColumns) and their headings.
struct Section {
  const char* id;
  const char* title;
  const char* empty;
  std::vector<std::pair<const char*, const char*>> columns;  // field, heading
};

const std::vector<Section>& sections() {
  static const std::vector<Section> all = {
      {"running",
       "Running",
       "No job is running.",
       {{"id", "Job"},
        {"target", "Target"},
        {"state", "State"},
        {"params", "Parameters"},
        {"progress", "Progress"},
        {"stage", "Stage"},
        {"outputs", "Outputs"},
        {"started", "Started (UTC)"},
        {"elapsed", "Elapsed"},
        {"by", "By"},
        {"actions", ""}}},
      {"waiting",
       "Waiting (quiet window)",
       "No job is waiting.",
       {{"id", "Job"},
        {"target", "Target"},
        {"state", "State"},
        {"params", "Parameters"},
        {"requests", "Requests"},
        {"left", "Starts"},
        {"submitted", "Submitted (UTC)"},
        {"by", "By"},
        {"actions", ""}}},
      {"queued",
       "Queued",
       "No job is queued.",
       {{"id", "Job"},
        {"target", "Target"},
        {"state", "State"},
        {"params", "Parameters"},
        {"submitted", "Submitted (UTC)"},
        {"by", "By"},
        {"actions", ""}}},
      {"history",
       "History",
       "No job has finished yet.",
       {{"id", "Job"},
        {"target", "Target"},
        {"state", "State"},
        {"params", "Parameters"},
        {"stage", "Last stage"},
        {"outputs", "Outputs"},
        {"finished", "Finished (UTC)"},
        {"duration", "Duration"},
        {"result", "Result"},
        {"by", "By"},
        {"actions", ""}}},
  };
  return all;
}

// The tables above for the script: {"columns": {FIELD: {"kind", "key"}},
// "sections": {ID: [FIELD...]}}, HTML-escaped for an attribute.
const std::string& columns_json() {
  static const std::string text = [] {
    json_t* columns = json_object();
    for (const Column& c : kColumns) {
      json_t* spec = json_object();
      json_object_set_new(spec, "kind",
                          json_stringn(kind_name(c.kind).data(), kind_name(c.kind).size()));
      json_object_set_new(spec, "key", json_stringn(c.key.data(), c.key.size()));
      json_object_setn_new(columns, c.field.data(), c.field.size(), spec);
    }
    json_t* by_section = json_object();
    for (const Section& section : sections()) {
      json_t* fields = json_array();
      for (const auto& [field, heading] : section.columns)
        json_array_append_new(fields, json_string(std::string(column(field).field).c_str()));
      json_object_set_new(by_section, section.id, fields);
    }
    json_t* table = json_object();
    json_object_set_new(table, "columns", columns);
    json_object_set_new(table, "sections", by_section);
    return html_escape(dump_json(table));
  }();
  return text;
}

// Unfinished jobs have a section of their state's name; finished ones one.
std::string_view section_name(JobState s) { return is_final(s) ? "history" : state_name(s); }

class Renderer {
 public:
  // `targets`: the configured targets the page shows; `without_form`: those
  // a Deploy form cannot submit to (see send_dashboard).
  Renderer(std::vector<const Target*> targets, std::set<std::string> without_form,
           const DashboardSnapshot& snapshot, const HistoryView& view, std::string base_url,
           std::string nonce)
      : targets_(std::move(targets)),
        without_form_(std::move(without_form)),
        s_(snapshot),
        view_(view),
        base_(std::move(base_url)),
        nonce_(std::move(nonce)) {}

  ChunkedText page() {
    std::map<std::string, std::vector<const Job*>> by_section;
    std::map<std::string, const Job*> last_result;  // newest finished job per target
    for (const Job& job : s_.jobs) {
      if (!is_final(job.state) || s_.history.count(job.id))
        by_section[std::string(section_name(job.state))].push_back(&job);
      if (!is_final(job.state)) continue;
      const Job*& last = last_result[job.target];
      if (!last || job.id > last->id) last = &job;
    }
    for (auto& [name, jobs] : by_section) {
      if (name == "history") {
        // Newest finish first: where the script puts a job that just ended.
        std::sort(jobs.begin(), jobs.end(), [](const Job* a, const Job* b) {
          return a->finished_at != b->finished_at ? a->finished_at > b->finished_at : a->id > b->id;
        });
      } else {
        std::sort(jobs.begin(), jobs.end(),
                  [](const Job* a, const Job* b) { return a->id > b->id; });
      }
    }

    out_ += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
    out_ += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
    out_ += "<title>Deployments</title><link rel=\"icon\" href=\"data:,\">";
    out_ += "<style nonce=\"" + nonce_ + "\">" + std::string(embedded::dashboard_css) +
            "</style></head>\n";
    out_ += "<body data-base=\"" + base_ + "\" data-since=\"" + std::to_string(s_.change_seq) +
            "\" data-now=\"" + millis(s_.now) + "\" data-history=\"" +
            std::to_string(kHistoryRows) + "\" data-filter-target=\"" +
            html_escape(view_.target.value_or("")) + "\" data-filter-state=\"" +
            std::string(view_.state ? state_name(*view_.state) : "") + "\" data-before=\"" +
            (view_.before ? std::to_string(view_.before) : "") + "\" data-older=\"" +
            (older_cursor() ? std::to_string(older_cursor()) : "") + "\" data-columns=\"" +
            columns_json() + "\">\n";
    out_ += "<header><h1>Deployments</h1><span id=\"live\" class=\"live off\">static page</span>";
    out_ += "<span class=\"meta\">as of " + display_time(s_.now) + " UTC &middot; <a href=\"" +
            base_ + "/\">reload</a> &middot; <a href=\"" + base_ +
            "/?auto\">?auto</a> &middot; <a href=\"" + base_ + "/metrics\">metrics</a></span>";
    out_ += "<p id=\"notice\" class=\"result\" role=\"status\"></p></header>\n";
    out_ +=
        "<noscript><p class=\"note\">Without JavaScript this page does not update itself: "
        "reload it. Deploy and cancel answer with the job's JSON.</p></noscript>\n<main>\n";
    targets(last_result);
    for (const Section& section : sections()) job_section(section, by_section[section.id]);
    // One script, so one nonce: the pure part, then the part that drives the page.
    out_ += "</main>\n<script nonce=\"" + nonce_ + "\">" +
            std::string(embedded::dashboard_view_js) + std::string(embedded::dashboard_js) +
            "</script>\n</body></html>\n";
    return std::move(out_);
  }

 private:
  std::string job_url(const Job& job) const { return base_ + "/jobs/" + std::to_string(job.id); }

  // The `before` of the older page: the lowest id shown; 0 when there is none.
  uint64_t older_cursor() const {
    return s_.older && !s_.history.empty() ? *s_.history.begin() : 0;
  }

  // Above the history table: a GET form for the filter and plain links to
  // the older and the newest page, which the script takes over.
  void history_controls() {
    out_ += "<form id=\"history-filter\" class=\"filter\" method=\"get\" action=\"" + base_ +
            "/\"><label>Target <select name=\"target\"><option value=\"\">any</option>";
    for (const Target* t : targets_) {
      std::string name = html_escape(t->name);
      out_ += "<option value=\"" + name + "\"" + (view_.target == t->name ? " selected" : "") +
              ">" + name + "</option>";
    }
    out_ += "</select></label> <label>State <select name=\"state\"><option value=\"\">any</option>";
    for (JobState st : {JobState::succeeded, JobState::failed, JobState::timed_out,
                        JobState::canceled, JobState::expired, JobState::lost}) {
      out_ += "<option value=\"" + std::string(state_name(st)) + "\"" +
              (view_.state == st ? " selected" : "") + ">" + state_label(st) + "</option>";
    }
    out_ += "</select></label> <button type=\"submit\">Show</button></form>";
    out_ += "<nav class=\"pager\"><a data-page=\"newest\" href=\"" + view_.url(base_, 0) + "\"" +
            (view_.before ? "" : " hidden") + ">&laquo; newest</a> <a data-page=\"older\" href=\"" +
            view_.url(base_, older_cursor()) + "\"" + (older_cursor() ? "" : " hidden") +
            ">older &raquo;</a></nav>";
  }

  void targets(const std::map<std::string, const Job*>& last_result) {
    out_ += "<section id=\"targets\"><h2>Targets <span class=\"count\">" +
            std::to_string(targets_.size()) + "</span></h2>";
    if (targets_.empty()) {
      out_ += "<p class=\"empty\">No target is configured (&lt;DeployTarget&gt;).</p></section>\n";
      return;
    }
    out_ +=
        "<table><thead><tr><th>Target</th><th>Parameters</th><th>Last result</th>"
        "<th>Deploy</th></tr></thead><tbody>";
    for (const Target* target : targets_) {
      const Target& t = *target;
      std::string name = html_escape(t.name);
      out_ += "<tr data-target=\"" + name + "\"" + (t.is_signed() ? " data-signed=\"true\"" : "") +
              "><td><strong>" + name + "</strong>";
      const char* proof = t.secret ? "X-Hub-Signature-256" : "X-Gitlab-Token";
      if (t.is_signed())
        out_ += std::string("<div class=\"sub signed\">signed: ") + proof +
                (t.unsigned_users ? ", or a signed-in user" : "") + "</div>";
      if (t.policy.quiet_window > 0) {
        out_ += "<div class=\"sub\">quiet window " + format_duration(t.policy.quiet_window);
        if (t.policy.max_wait > 0) out_ += ", max wait " + format_duration(t.policy.max_wait);
        out_ += "</div>";
      }
      out_ += "</td><td>";
      if (t.params.empty()) out_ += "<span class=\"sub\">none</span>";
      for (const ParamRule& rule : t.params)
        out_ += "<div><code>" + html_escape(rule.name) + "</code> <span class=\"sub mono\">" +
                html_escape(rule.pattern.source()) + "</span></div>";
      out_ += "</td><td data-field=\"last\"";
      auto it = last_result.find(t.name);
      if (it == last_result.end()) {
        out_ += "><span class=\"sub\">never finished</span></td>";
      } else {
        const Job& job = *it->second;
        out_ += " data-job=\"" + std::to_string(job.id) + "\"><a class=\"mono\" href=\"" +
                job_url(job) + "\">#" + std::to_string(job.id) + "</a> " + state_badge(job.state) +
                " <span class=\"sub\" title=\"" + html_escape(format_time(job.finished_at)) +
                "\">" + display_time(job.finished_at) + "</span></td>";
      }
      if (without_form_.count(t.name)) {
        out_ += "<td><p class=\"sub no-form\">" +
                std::string(!t.filters.empty()
                                ? "Deploys by webhook only: a DeployFilter turns a form away."
                                : std::string("Deploys need the ") + proof +
                                      (t.unsigned_users ? " header, or signing in."
                                                        : " header: a browser cannot sign.")) +
                "</p></td></tr>";
        continue;
      }
      out_ += "<td><form class=\"deploy\" data-kind=\"deploy\" method=\"post\" action=\"" + base_ +
              "/targets/" + name + "\" enctype=\"application/x-www-form-urlencoded\">";
      for (const ParamRule& rule : t.params) {
        std::string param = html_escape(rule.name);
        std::string pattern = html_escape(rule.pattern.source());
        out_ += "<label>" + param + " <input name=\"" + param +
                "\" autocomplete=\"off\" spellcheck=\"false\" placeholder=\"" + pattern +
                "\" title=\"must match " + pattern + "\"></label> ";
      }
      out_ += "<button type=\"submit\">Deploy</button> <span class=\"result\" role=\"status\">" +
              std::string("</span></form></td></tr>");
    }
    out_ += "</tbody></table></section>\n";
  }

  void job_section(const Section& section, const std::vector<const Job*>& jobs) {
    std::string id = section.id;
    out_ += "<section id=\"" + id + "\"><h2>" + section.title + " <span class=\"count\">" +
            std::to_string(jobs.size()) + "</span></h2>";
    if (id == "history") history_controls();
    const bool filtered = id == "history" && (view_.target || view_.state || view_.before);
    out_ += std::string("<p class=\"empty\"") + (jobs.empty() ? "" : " hidden") + ">" +
            (filtered ? "No finished job matches." : section.empty) + "</p>";
    out_ += std::string("<table") + (jobs.empty() ? " hidden" : "") + "><thead><tr>";
    for (const auto& [field, heading] : section.columns)
      out_ += std::string("<th>") + heading + "</th>";
    out_ += "</tr></thead><tbody>";
    for (const Job* job : jobs) {
      out_ += "<tr data-job=\"" + std::to_string(job->id) + "\" data-section=\"" + id + "\">";
      for (const auto& [field, heading] : section.columns) cell(column(field), *job);
      out_ += "</tr>";
    }
    out_ += "</tbody></table></section>\n";
  }

  void cell(const Column& column, const Job& job) {
    std::string open = "<td data-field=\"" + std::string(column.field) + "\"";
    const std::string dash = "\xE2\x80\x94";
    switch (column.kind) {
      case CellKind::link:
        out_ += open + "><a class=\"mono\" href=\"" + job_url(job) + "\">#" +
                std::to_string(job.id) + "</a></td>";
        break;
      case CellKind::text: {
        std::optional<std::string> text = column.text(job);
        out_ += open + ">" + (text ? html_escape(*text) : dash) + "</td>";
        break;
      }
      case CellKind::badge:
        out_ += open + ">" + state_badge(job.state) + "</td>";
        break;
      case CellKind::params:
        out_ += open + ">";
        for (const auto& [name, value] : job.*column.pairs)
          out_ += "<code>" + html_escape(name) + "=" + html_escape(value) + "</code>";
        out_ += "</td>";
        break;
      case CellKind::progress: {
        std::string pct = job.progress < 0 ? "" : std::to_string(job.progress);
        out_ += open + "><progress max=\"100\"" + (pct.empty() ? "" : " value=\"" + pct + "\"") +
                "></progress><span class=\"pct\">" + (pct.empty() ? dash : pct + "%") +
                "</span></td>";
        break;
      }
      case CellKind::time: {
        Micros t = job.*column.time;
        out_ += open + " title=\"" + (t ? format_time(t) : "") + "\">" + display_time(t) + "</td>";
        break;
      }
      case CellKind::elapsed: {
        Micros from = job.*column.time;
        if (from == 0)
          out_ += open + ">" + dash + "</td>";
        else
          out_ += open + " data-from=\"" + millis(from) + "\">" + format_duration(s_.now - from) +
                  "</td>";
        break;
      }
      case CellKind::countdown: {
        Micros until = job.*column.time;
        out_ += open + " data-until=\"" + millis(until) + "\">" +
                (until > s_.now ? "in " + format_duration(until - s_.now) : "now") + "</td>";
        break;
      }
      case CellKind::duration:
        out_ +=
            open + ">" +
            (job.started_at && job.finished_at ? format_duration(job.finished_at - job.started_at)
                                               : dash) +
            "</td>";
        break;
      case CellKind::result: {
        std::string text = dash;
        bool bad = false;
        if (job.exit_code) {
          text = "exit " + std::to_string(*job.exit_code);
          bad = *job.exit_code != 0;
        } else if (job.signal) {
          text = "signal " + std::to_string(*job.signal);
          bad = true;
        }
        out_ += open + (bad ? " class=\"bad\"" : "") + ">" + text + "</td>";
        break;
      }
      case CellKind::actions:
        out_ += open + ">";
        if (job.started_at) out_ += "<a href=\"" + job_url(job) + "/log\">log</a>";
        if (!is_final(job.state))
          out_ += "<form class=\"cancel\" data-kind=\"cancel\" method=\"post\" action=\"" +
                  job_url(job) + "/cancel\"><button type=\"submit\">Cancel</button></form>";
        out_ += "</td>";
        break;
    }
  }

  const std::vector<const Target*> targets_;
  const std::set<std::string> without_form_;
  const DashboardSnapshot& s_;
  const HistoryView& view_;
  const std::string base_;   // URL-escaped, then HTML-escaped
  const std::string nonce_;  // base64: nothing to escape
  ChunkedText out_;
};

}  // namespace

int send_dashboard(request_rec* r, const ModuleState& state, TargetAccess& access,
                   const std::string& base) {
  std::vector<const Target*> targets;
  for (const Target& t : state.settings->targets)
    if (access.may_read(t.name)) targets.push_back(&t);
  // A Deploy form sends neither a signature nor a forge's payload or headers.
  std::set<std::string> without_form;
  for (const Target* t : targets)
    if (!t->filters.empty() || (t->is_signed() && !access.may_submit_unsigned(*t)))
      without_form.insert(t->name);
  const HistoryView view = parse_history_view(r, targets);
  DashboardSnapshot snapshot;
  do {
    if (Status st = take_dashboard_snapshot(state, access, view, &snapshot); !st.is_ok())
      return send_error(r, table_busy(r, st));
  } while (access.decide_noted());
  std::string nonce = secure_html_headers(r);
  std::string base_url = html_escape(ap_escape_uri(r->pool, base.c_str()));
  ChunkedText html =
      Renderer(std::move(targets), std::move(without_form), snapshot, view, base_url, nonce).page();
  return send_body(r, HTTP_OK, "text/html; charset=utf-8", html);
}

}  // namespace deploy
