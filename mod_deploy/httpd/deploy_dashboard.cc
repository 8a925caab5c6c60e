#include "deploy_dashboard.h"

#include <httpd.h>
#include <apr_base64.h>
#include <apr_general.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "deploy_response.h"
#include "job_json.h"
#include "job_table.h"
#include "text.h"

namespace deploy {
namespace {

constexpr size_t kHistoryRows = 50;

// What the page shows, copied under the table lock: every unfinished job,
// the kHistoryRows jobs that finished last, and the newest finished job of
// each target. The other finished jobs (up to DeployHistory of them) are
// looked at, not copied.
struct DashboardSnapshot {
  std::deque<Job> jobs;     // not a vector: see chunked_text.h
  uint64_t change_seq = 0;  // every job above reflects the changes up to this one
  Micros now = 0;
};

// Only the jobs of targets `access` has decided the request may read (see
// TargetAccess::may_read_decided).
DashboardSnapshot take_snapshot(const ModuleState& state, TargetAccess& access) {
  struct Finished {
    Micros finished_at;
    uint64_t id;
    // The order of the history section: the latest finish first.
    bool operator<(const Finished& o) const {
      return finished_at != o.finished_at ? finished_at > o.finished_at : id > o.id;
    }
  };
  std::vector<Finished> history;  // a max-heap: its top finished first of those kept
  std::map<std::string, uint64_t, std::less<>> newest;  // by target
  DashboardSnapshot s;
  JobTable::Lock lock(*state.table);
  s.change_seq = state.table->change_seq();
  s.now = wall_now();  // display: compared with the jobs' wall times
  lock.for_each([&](JobRecord& rec) {
    if (!is_valid_state(rec.state)) return;
    std::string_view target(rec.target, strnlen(rec.target, sizeof rec.target));
    if (!access.may_read_decided(target)) return;
    if (!is_final(JobState(rec.state))) {
      s.jobs.push_back(record_to_job(rec));
      return;
    }
    history.push_back(Finished{rec.finished_at, rec.id});
    std::push_heap(history.begin(), history.end());
    if (history.size() > kHistoryRows) {
      std::pop_heap(history.begin(), history.end());
      history.pop_back();
    }
    auto it = newest.find(target);
    if (it == newest.end())
      newest.emplace(target, rec.id);
    else
      it->second = std::max(it->second, rec.id);
  });
  std::set<uint64_t> ids;
  for (const Finished& f : history) ids.insert(f.id);
  for (const auto& [target, id] : newest) ids.insert(id);
  for (uint64_t id : ids)
    if (JobRecord* rec = lock.find(id)) s.jobs.push_back(record_to_job(*rec));
  return s;
}

// Text from outside (params, stages, names, users): valid UTF-8, and safe both
// between tags and inside a double- or single-quoted attribute.
std::string escape(std::string_view text) {
  std::string out;
  for (char c : valid_utf8(text)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// "2026-11-21 10:00:05" (UTC), as the script shows times too.
std::string display_time(Micros t) {
  if (t == 0) return "\xE2\x80\x94";  // an em dash
  std::string iso = format_time(t);
  if (iso.size() < 19) return iso;
  return iso.substr(0, 10) + " " + iso.substr(11, 8);
}

// "42s", "4m 05s", "1h 02m": the script's formatDuration gives the same.
std::string format_duration(Micros d) {
  long long s = std::max<Micros>(d, 0) / 1000000;
  char text[48];
  if (s < 60)
    snprintf(text, sizeof text, "%llds", s);
  else if (s < 3600)
    snprintf(text, sizeof text, "%lldm %02llds", s / 60, s % 60);
  else
    snprintf(text, sizeof text, "%lldh %02lldm", s / 3600, (s / 60) % 60);
  return text;
}

std::string millis(Micros t) { return std::to_string(t / 1000); }

std::string state_label(JobState s) {
  std::string label(state_name(s));
  std::replace(label.begin(), label.end(), '_', ' ');
  return label;
}

std::string badge(JobState s) {
  return "<span class=\"badge s-" + std::string(state_name(s)) + "\">" + state_label(s) + "</span>";
}

// The columns of each job section. The script builds rows with the same
// fields (FIELDS there), so a row rendered here and one built there are
// filled by the same code when an event arrives.
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
        {"finished", "Finished (UTC)"},
        {"duration", "Duration"},
        {"result", "Result"},
        {"by", "By"},
        {"actions", ""}}},
  };
  return all;
}

// Unfinished jobs have a section of their state's name; finished ones one.
std::string_view section_of(JobState s) { return is_final(s) ? "history" : state_name(s); }

class Renderer {
 public:
  // `targets`: the configured targets the page shows; `without_form`: those
  // a Deploy form cannot submit to (see send_dashboard).
  Renderer(std::vector<const Target*> targets, std::set<std::string> without_form,
           const DashboardSnapshot& snapshot, std::string base_url, std::string nonce)
      : targets_(std::move(targets)),
        without_form_(std::move(without_form)),
        s_(snapshot),
        base_(std::move(base_url)),
        nonce_(std::move(nonce)) {}

  ChunkedText page() {
    std::map<std::string, std::vector<const Job*>> by_section;
    std::map<std::string, const Job*> last_result;  // newest finished job per target
    for (const Job& job : s_.jobs) {
      by_section[std::string(section_of(job.state))].push_back(&job);
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
        if (jobs.size() > kHistoryRows) jobs.resize(kHistoryRows);
      } else {
        std::sort(jobs.begin(), jobs.end(),
                  [](const Job* a, const Job* b) { return a->id > b->id; });
      }
    }

    out_ += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
    out_ += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
    out_ += "<title>Deployments</title><link rel=\"icon\" href=\"data:,\">";
    out_ += "<style nonce=\"" + nonce_ + "\">" + std::string(kStyle) + "</style></head>\n";
    out_ += "<body data-base=\"" + base_ + "\" data-since=\"" + std::to_string(s_.change_seq) +
            "\" data-now=\"" + millis(s_.now) + "\" data-history=\"" +
            std::to_string(kHistoryRows) + "\">\n";
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
    out_ += "</main>\n<script nonce=\"" + nonce_ + "\">" + std::string(kScript) +
            "</script>\n</body></html>\n";
    return std::move(out_);
  }

 private:
  static const std::string_view kStyle;
  static const std::string_view kScript;

  std::string job_url(const Job& job) const { return base_ + "/jobs/" + std::to_string(job.id); }

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
      std::string name = escape(t.name);
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
        out_ += "<div><code>" + escape(rule.name) + "</code> <span class=\"sub mono\">" +
                escape(rule.pattern.source()) + "</span></div>";
      out_ += "</td><td data-field=\"last\"";
      auto it = last_result.find(t.name);
      if (it == last_result.end()) {
        out_ += "><span class=\"sub\">never finished</span></td>";
      } else {
        const Job& job = *it->second;
        out_ += " data-job=\"" + std::to_string(job.id) + "\"><a class=\"mono\" href=\"" +
                job_url(job) + "\">#" + std::to_string(job.id) + "</a> " + badge(job.state) +
                " <span class=\"sub\" title=\"" + escape(format_time(job.finished_at)) + "\">" +
                display_time(job.finished_at) + "</span></td>";
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
        std::string param = escape(rule.name);
        std::string pattern = escape(rule.pattern.source());
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
    out_ += std::string("<p class=\"empty\"") + (jobs.empty() ? "" : " hidden") + ">" +
            section.empty + "</p>";
    out_ += std::string("<table") + (jobs.empty() ? " hidden" : "") + "><thead><tr>";
    for (const auto& [field, heading] : section.columns)
      out_ += std::string("<th>") + heading + "</th>";
    out_ += "</tr></thead><tbody>";
    for (const Job* job : jobs) {
      out_ += "<tr data-job=\"" + std::to_string(job->id) + "\" data-section=\"" + id + "\">";
      for (const auto& [field, heading] : section.columns) cell(field, *job);
      out_ += "</tr>";
    }
    out_ += "</tbody></table></section>\n";
  }

  void cell(std::string_view field, const Job& job) {
    std::string open = "<td data-field=\"" + std::string(field) + "\"";
    if (field == "id") {
      out_ += open + "><a class=\"mono\" href=\"" + job_url(job) + "\">#" + std::to_string(job.id) +
              "</a></td>";
    } else if (field == "target") {
      out_ += open + ">" + escape(job.target) + "</td>";
    } else if (field == "state") {
      out_ += open + ">" + badge(job.state) + "</td>";
    } else if (field == "params") {
      out_ += open + ">";
      for (const auto& [name, value] : job.params)
        out_ += "<code>" + escape(name) + "=" + escape(value) + "</code>";
      out_ += "</td>";
    } else if (field == "progress") {
      std::string pct = job.progress < 0 ? "" : std::to_string(job.progress);
      out_ += open + "><progress max=\"100\"" + (pct.empty() ? "" : " value=\"" + pct + "\"") +
              "></progress><span class=\"pct\">" + (pct.empty() ? "\xE2\x80\x94" : pct + "%") +
              "</span></td>";
    } else if (field == "stage") {
      out_ += open + ">" + escape(job.stage.value_or("")) + "</td>";
    } else if (field == "submitted" || field == "started" || field == "finished") {
      Micros t = field == "submitted" ? job.submitted_at
                 : field == "started" ? job.started_at
                                      : job.finished_at;
      out_ += open + " title=\"" + (t ? format_time(t) : "") + "\">" + display_time(t) + "</td>";
    } else if (field == "elapsed") {
      if (job.started_at == 0)
        out_ += open + ">\xE2\x80\x94</td>";
      else
        out_ += open + " data-from=\"" + millis(job.started_at) + "\">" +
                format_duration(s_.now - job.started_at) + "</td>";
    } else if (field == "left") {
      Micros left = job.not_before - s_.now;
      out_ += open + " data-until=\"" + millis(job.not_before) + "\">" +
              (left > 0 ? "in " + format_duration(left) : "now") + "</td>";
    } else if (field == "requests") {
      out_ += open + ">" + std::to_string(job.requests) + "</td>";
    } else if (field == "duration") {
      out_ += open + ">" +
              (job.started_at && job.finished_at ? format_duration(job.finished_at - job.started_at)
                                                 : "\xE2\x80\x94") +
              "</td>";
    } else if (field == "result") {
      std::string text = "\xE2\x80\x94";
      bool bad = false;
      if (job.exit_code) {
        text = "exit " + std::to_string(*job.exit_code);
        bad = *job.exit_code != 0;
      } else if (job.signal) {
        text = "signal " + std::to_string(*job.signal);
        bad = true;
      }
      out_ += open + (bad ? " class=\"bad\"" : "") + ">" + text + "</td>";
    } else if (field == "by") {
      out_ +=
          open + ">" + (job.submitted_by ? escape(*job.submitted_by) : "\xE2\x80\x94") + "</td>";
    } else if (field == "actions") {
      out_ += open + ">";
      if (job.started_at) out_ += "<a href=\"" + job_url(job) + "/log\">log</a>";
      if (!is_final(job.state))
        out_ += "<form class=\"cancel\" data-kind=\"cancel\" method=\"post\" action=\"" +
                job_url(job) + "/cancel\"><button type=\"submit\">Cancel</button></form>";
      out_ += "</td>";
    }
  }

  const std::vector<const Target*> targets_;
  const std::set<std::string> without_form_;
  const DashboardSnapshot& s_;
  const std::string base_;   // URL-escaped, then HTML-escaped
  const std::string nonce_;  // base64: nothing to escape
  ChunkedText out_;
};

const std::string_view Renderer::kStyle = R"CSS(
:root{--fg:#1d2430;--muted:#667085;--line:#e3e7ee;--bg:#f6f8fb;--card:#fff;--accent:#2f6fde}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.4rem 1rem;padding:.9rem 1.5rem;background:#1d2430;color:#fff}
header h1{margin:0;font-size:1.25rem;font-weight:600}
header a{color:#b9cdf5}
.meta{color:#aab4c3;font-size:.85rem}
.live{font-size:.75rem;padding:.1rem .55rem;border-radius:1rem;background:#3b4556;color:#dfe5ee}
.live.on{background:#1f8a4c;color:#fff}
.live.retry{background:#b7791f;color:#fff}
#notice{margin:0;flex-basis:100%}
#notice:empty{display:none}
main{padding:.5rem 1.5rem 2rem;max-width:1400px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:1rem 0;padding:.6rem 1rem 1rem}
h2{font-size:1rem;margin:.3rem 0 .6rem}
.count{display:inline-block;min-width:1.6em;padding:0 .4em;border-radius:1em;background:var(--line);color:var(--muted);font-size:.8rem;text-align:center}
table{width:100%;border-collapse:collapse}
th{text-align:left;font-weight:600;color:var(--muted);font-size:.78rem;text-transform:uppercase;letter-spacing:.03em;border-bottom:1px solid var(--line);padding:.3rem .5rem}
td{padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:middle}
tbody tr:last-child td{border-bottom:0}
td[data-field=stage],td[data-field=params]{max-width:22rem;overflow-wrap:anywhere}
td[data-field=actions]{text-align:right;white-space:nowrap}
td[data-field=started],td[data-field=submitted],td[data-field=finished],td[data-field=elapsed],td[data-field=left],td[data-field=duration]{white-space:nowrap;font-variant-numeric:tabular-nums}
td[data-field=actions] form{display:inline;margin-left:.5rem}
.mono,code,td[data-field=id]{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
code{display:inline-block;margin:0 .3rem .15rem 0;padding:0 .3rem;background:#eef1f6;border-radius:4px;font-size:.85em;white-space:pre-wrap}
.sub{color:var(--muted);font-size:.85em}
.empty{color:var(--muted);margin:.2rem 0}
.note{margin:1rem 1.5rem;padding:.5rem .8rem;background:#fff7e0;border:1px solid #f0d48a;border-radius:6px}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-size:.78rem;font-weight:600;white-space:nowrap;color:#fff;background:#8792a2}
.s-waiting{background:#7c5cd6}.s-queued{background:#5c6b82}.s-running{background:var(--accent)}
.s-succeeded{background:#1f8a4c}.s-failed{background:#c9302c}.s-timed_out{background:#d9660b}
.s-canceled{background:#8792a2}.s-expired{background:#a38b2f}.s-lost{background:#6d2c91}
progress{width:10rem;height:.8rem;vertical-align:middle;appearance:none;border:0;border-radius:1rem;background:#e6ebf3;overflow:hidden}
progress::-webkit-progress-bar{background:#e6ebf3;border-radius:1rem}
progress::-webkit-progress-value{background:var(--accent);border-radius:1rem;transition:width .4s}
progress::-moz-progress-bar{background:var(--accent)}
.pct{display:inline-block;min-width:3em;margin-left:.5rem;font-variant-numeric:tabular-nums}
td.bad{color:#c9302c;font-weight:600}
form.deploy{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center}
form.deploy label{font-family:ui-monospace,monospace;font-size:.85rem}
input{font:inherit;padding:.2rem .4rem;border:1px solid #c5ccd8;border-radius:4px;width:11rem}
button{font:inherit;padding:.2rem .75rem;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
form.cancel button{background:#fff;color:#c9302c;border-color:#e3a9a7;font-size:.85rem;padding:.1rem .55rem}
.result{font-size:.85rem}
.result.ok{color:#1f8a4c}.result.err{color:#c9302c}
@keyframes flash{from{background:#fff6c9}to{background:transparent}}
tr.flash td{animation:flash 1.2s ease-out}
)CSS";

// Only textContent and createElement touch job data: never innerHTML.
const std::string_view Renderer::kScript = R"JS(
"use strict";
(() => {
  const body = document.body;
  const base = body.dataset.base;
  const historyLimit = Number(body.dataset.history);
  const clockOffset = Number(body.dataset.now) - Date.now();
  const now = () => Date.now() + clockOffset;
  const FIELDS = {
    running: ["id", "target", "state", "params", "progress", "stage", "started", "elapsed", "by", "actions"],
    waiting: ["id", "target", "state", "params", "requests", "left", "submitted", "by", "actions"],
    queued: ["id", "target", "state", "params", "submitted", "by", "actions"],
    history: ["id", "target", "state", "params", "stage", "finished", "duration", "result", "by", "actions"],
  };
  const DASH = "\u2014";
  const FINAL = new Set(["succeeded", "failed", "timed_out", "canceled", "expired", "lost"]);
  const rows = new Map();
  for (const tr of document.querySelectorAll("tr[data-job]")) rows.set(tr.dataset.job, tr);
  const targetRows = new Map();
  for (const tr of document.querySelectorAll("tr[data-target]")) targetRows.set(tr.dataset.target, tr);

  const el = (tag, props, text) => {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const pad = (n) => String(n).padStart(2, "0");
  const formatDuration = (ms) => {
    const s = Math.floor(Math.max(ms, 0) / 1000);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + pad(s % 60) + "s";
    return Math.floor(s / 3600) + "h " + pad(Math.floor(s / 60) % 60) + "m";
  };
  const displayTime = (iso) => (iso ? iso.slice(0, 10) + " " + iso.slice(11, 19) : DASH);
  const badge = (state) => el("span", { className: "badge s-" + state }, state.replace("_", " "));
  const sectionOf = (state) => (FINAL.has(state) ? "history" : state);

  const fill = {
    id(td, job) { td.replaceChildren(el("a", { className: "mono", href: job.links.self }, "#" + job.id)); },
    target(td, job) { td.textContent = job.target; },
    state(td, job) { td.replaceChildren(badge(job.state)); },
    params(td, job) {
      td.replaceChildren(...Object.entries(job.params || {}).map(([k, v]) => el("code", {}, k + "=" + v)));
    },
    progress(td, job) {
      let bar = td.querySelector("progress");
      let pct = td.querySelector(".pct");
      if (!bar) {
        bar = el("progress", { max: 100 });
        pct = el("span", { className: "pct" });
        td.replaceChildren(bar, pct);
      }
      if (job.progress === null) {
        bar.removeAttribute("value");
        pct.textContent = DASH;
      } else {
        bar.value = job.progress;
        pct.textContent = job.progress + "%";
      }
    },
    stage(td, job) { td.textContent = job.stage ?? ""; },
    submitted(td, job) { td.textContent = displayTime(job.submitted_at); td.title = job.submitted_at ?? ""; },
    started(td, job) { td.textContent = displayTime(job.started_at); td.title = job.started_at ?? ""; },
    finished(td, job) { td.textContent = displayTime(job.finished_at); td.title = job.finished_at ?? ""; },
    elapsed(td, job) { td.dataset.from = Date.parse(job.started_at); tickCell(td); },
    left(td, job) { td.dataset.until = Date.parse(job.not_before); tickCell(td); },
    requests(td, job) { td.textContent = job.requests; },
    duration(td, job) {
      td.textContent = job.started_at && job.finished_at
        ? formatDuration(Date.parse(job.finished_at) - Date.parse(job.started_at)) : DASH;
    },
    result(td, job) {
      let text = DASH, bad = false;
      if (job.exit_code !== null) { text = "exit " + job.exit_code; bad = job.exit_code !== 0; }
      else if (job.signal !== null) { text = "signal " + job.signal; bad = true; }
      td.textContent = text;
      td.classList.toggle("bad", bad);
    },
    by(td, job) { td.textContent = job.submitted_by ?? DASH; },
    actions(td, job) {
      const parts = [];
      if (job.started_at) parts.push(el("a", { href: job.links.log }, "log"));
      if (!FINAL.has(job.state)) {
        const form = el("form", { className: "cancel", method: "post", action: job.links.cancel });
        form.dataset.kind = "cancel";
        form.append(el("button", { type: "submit" }, "Cancel"));
        parts.push(form);
      }
      td.replaceChildren(...parts);
    },
  };

  function tickCell(td) {
    if (td.dataset.field === "elapsed") {
      const from = Number(td.dataset.from);
      td.textContent = Number.isFinite(from) ? formatDuration(now() - from) : DASH;
    } else {
      const left = Number(td.dataset.until) - now();
      td.textContent = !Number.isFinite(left) ? DASH : left > 0 ? "in " + formatDuration(left) : "now";
    }
  }
  setInterval(() => {
    for (const td of document.querySelectorAll("td[data-field=elapsed],td[data-field=left]")) tickCell(td);
  }, 1000);

  function refreshSection(id) {
    const section = document.getElementById(id);
    const n = section.querySelector("tbody").rows.length;
    section.querySelector("h2 .count").textContent = n;
    section.querySelector("table").hidden = n === 0;
    section.querySelector(".empty").hidden = n > 0;
  }

  function place(tr, section, job) {
    const tbody = document.querySelector("#" + section + " tbody");
    if (section === "history") {
      tbody.prepend(tr);
      while (tbody.rows.length > historyLimit) {
        const last = tbody.rows[tbody.rows.length - 1];
        rows.delete(last.dataset.job);
        last.remove();
      }
      return;
    }
    const after = [...tbody.rows].find((row) => Number(row.dataset.job) < job.id);
    tbody.insertBefore(tr, after || null);
  }

  function updateTarget(job) {
    const tr = targetRows.get(job.target);
    if (!tr || !FINAL.has(job.state)) return;
    const td = tr.querySelector("td[data-field=last]");
    if (Number(td.dataset.job || 0) > job.id) return;
    td.dataset.job = job.id;
    td.replaceChildren(el("a", { className: "mono", href: job.links.self }, "#" + job.id), " ",
                       badge(job.state), " ",
                       el("span", { className: "sub", title: job.finished_at }, displayTime(job.finished_at)));
  }

  function update(job) {
    const key = String(job.id);
    const section = sectionOf(job.state);
    let tr = rows.get(key);
    const from = tr && tr.dataset.section;
    if (!tr || from !== section) {
      if (tr) tr.remove();
      tr = el("tr");
      tr.dataset.job = key;
      tr.dataset.section = section;
      for (const field of FIELDS[section]) {
        const td = el("td");
        td.dataset.field = field;
        tr.append(td);
      }
      rows.set(key, tr);
      place(tr, section, job);
    }
    for (const td of tr.cells) fill[td.dataset.field](td, job);
    tr.classList.remove("flash");
    void tr.offsetWidth;  // restarts the animation
    tr.classList.add("flash");
    if (from && from !== section) refreshSection(from);
    refreshSection(section);
    updateTarget(job);
  }

  const live = document.getElementById("live");
  const setLive = (text, cls) => { live.textContent = text; live.className = "live " + cls; };
  // EventSource reconnects by itself and sends Last-Event-ID, which the
  // server prefers to ?since: no change is lost across reconnects.
  const events = new EventSource(base + "/events?since=" + encodeURIComponent(body.dataset.since));
  events.addEventListener("open", () => setLive("live", "on"));
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) setLive("disconnected: reload the page", "off");
    else setLive("reconnecting\u2026", "retry");
  });
  events.addEventListener("job", (event) => {
    let job;
    try {
      job = JSON.parse(event.data);
    } catch (e) {
      console.warn("mod_deploy: ignoring an event that is not a job", e);
      return;
    }
    if (job && typeof job.id === "number" && typeof job.state === "string" && FIELDS[sectionOf(job.state)])
      update(job);
  });

  // Forms still work without this; with it the answer shows inline.
  const notice = document.getElementById("notice");
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.kind) return;
    event.preventDefault();
    const out = form.querySelector(".result") || notice;
    const data = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value !== "") data.append(name, value);
    const button = form.querySelector("button");
    button.disabled = true;
    out.className = "result";
    out.textContent = form.dataset.kind === "deploy" ? "submitting\u2026" : "";
    try {
      const response = await fetch(form.action, { method: "POST", body: data, headers: { Accept: "application/json" } });
      let answer = null;
      try { answer = await response.json(); } catch (e) { answer = null; }
      if (response.ok && answer && typeof answer.id === "number") {
        out.className = "result ok";
        out.dataset.job = answer.id;
        out.textContent = form.dataset.kind === "deploy"
          ? "job #" + answer.id + (answer.coalesced ? " joined (coalesced)" : " accepted")
          : "cancel of job #" + answer.id + " requested";
        // The event stream has the newest state; this only fills the gap
        // when the job is not on the page yet.
        if (!rows.has(String(answer.id))) update(answer);
      } else {
        out.className = "result err";
        out.textContent = (answer && answer.message) || "HTTP " + response.status;
      }
    } catch (e) {
      out.className = "result err";
      out.textContent = "request failed: " + e.message;
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  });
})();
)JS";

// A fresh nonce for every response: 16 random bytes in base64.
std::string make_nonce(request_rec* r) {
  unsigned char bytes[16];
  if (apr_generate_random_bytes(bytes, sizeof bytes) != APR_SUCCESS)
    throw std::runtime_error("no random bytes for the dashboard's script nonce");
  char* encoded =
      static_cast<char*>(apr_palloc(r->pool, size_t(apr_base64_encode_len(sizeof bytes))));
  apr_base64_encode(encoded, reinterpret_cast<const char*>(bytes), sizeof bytes);
  return encoded;
}

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
  DashboardSnapshot snapshot;
  do snapshot = take_snapshot(state, access);
  while (access.decide_noted());
  std::string nonce = make_nonce(r);
  std::string base_url = escape(ap_escape_uri(r->pool, base.c_str()));
  ChunkedText html =
      Renderer(std::move(targets), std::move(without_form), snapshot, base_url, nonce).page();
  std::string policy = "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'nonce-" +
                       nonce +
                       "'; img-src data:; connect-src 'self'; form-action 'self'; "
                       "base-uri 'none'; frame-ancestors 'none'";
  apr_table_set(r->headers_out, "Content-Security-Policy", policy.c_str());
  apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
  apr_table_setn(r->headers_out, "Referrer-Policy", "same-origin");
  return send_body(r, HTTP_OK, "text/html; charset=utf-8", html);
}

}  // namespace deploy
