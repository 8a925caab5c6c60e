#include "deploy_status.h"

#include <httpd.h>
#include <apr_time.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "deploy_response.h"
#include "job_store.h"

namespace deploy {
namespace {

constexpr JobState kAllStates[] = {JobState::waiting,   JobState::queued,  JobState::running,
                                   JobState::succeeded, JobState::failed,  JobState::timed_out,
                                   JobState::canceled,  JobState::expired, JobState::lost};

struct CountersSnapshot {
  TableCounters counters;
  uint64_t ignored = 0;                                     // submissions a DeployFilter ignored
  std::vector<TargetStats> stats;                           // targets seen since the table began
  std::map<std::string, std::map<JobState, uint64_t>> now;  // unfinished jobs, per target and state
  std::map<JobState, uint64_t> total_now;
  uint64_t node_running = 0;  // running jobs whose node is this one (DeployNodeName)
  // Indexed as stats: finished_at of the target's newest succeeded job, or 0.
  std::vector<Micros> last_success;
};

// An error (and *out untouched) when the table stays busy.
Status take_counters_snapshot(const ModuleState& state, CountersSnapshot* out) {
  CountersSnapshot s;
  // Every configured target appears, even before its first job.
  for (const Target& t : state.settings->targets) s.now[t.name];
  StoreCounters counters;
  if (Status st = state.store->counters(&counters); !st.is_ok()) return st;
  s.counters = counters.counters;
  s.ignored = counters.ignored;
  for (const TargetCounters& t : counters.targets) {
    s.stats.push_back(t.stats);
    s.last_success.push_back(t.last_success);
  }
  // Finished jobs are in the counters: only the unfinished ones are read.
  for (const Job& job : counters.unfinished) {
    s.now[job.target][job.state]++;
    s.total_now[job.state]++;
    if (job.state == JobState::running && job.node == state.settings->node_name) s.node_running++;
  }
  *out = std::move(s);
  return Status::ok();
}

// Prometheus label values: backslash, double quote and newline escaped.
std::string label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string camel(std::string_view name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper ? char(toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return out;
}

}  // namespace

int send_auto_status(request_rec* r, const ModuleState& state) {
  CountersSnapshot s;
  if (Status st = take_counters_snapshot(state, &s); !st.is_ok())
    return send_error(r, table_busy(r, st));
  std::string out;
  auto line = [&out](const std::string& key, uint64_t value) {
    out += key + ": " + std::to_string(value) + "\n";
  };
  line("Uptime", uint64_t((mono_now() - state.started_mono) / 1000000));
  line("Targets", state.settings->targets.size());
  line("MaxRunning", state.settings->max_running);
  line("QueueLimit", state.settings->queue_limit);
  line("Running", s.total_now[JobState::running]);
  line("Waiting", s.total_now[JobState::waiting]);
  line("Queued", s.total_now[JobState::queued]);
  for (JobState st : kAllStates)
    if (is_final(st)) line("Total" + camel(state_name(st)), s.counters.finished[uint8_t(st)]);
  line("SubmissionsAccepted", s.counters.accepted);
  line("SubmissionsCoalesced", s.counters.coalesced);
  line("SubmissionsIgnored", s.ignored);
  uint64_t rejected = 0;
  for (size_t i = 0; i < size_t(Rejection::count_); ++i) rejected += s.counters.rejected[i];
  line("SubmissionsRejected", rejected);
  // About this node itself; the lines above are the store's (the cluster's).
  out += "DeployNodeName: " + state.settings->node_name + "\n";
  line("DeployNodeRunning", s.node_running);
  return send_body(r, HTTP_OK, "text/plain; charset=utf-8", out);
}

int send_metrics(request_rec* r, const ModuleState& state, TargetAccess& access) {
  CountersSnapshot s;
  if (Status st = take_counters_snapshot(state, &s); !st.is_ok())
    return send_error(r, table_busy(r, st));
  // Only the targets the request may read; last_success stays indexed as stats.
  for (size_t i = s.stats.size(); i-- > 0;) {
    if (access.may_read(s.stats[i].target)) continue;
    s.stats.erase(s.stats.begin() + std::ptrdiff_t(i));
    s.last_success.erase(s.last_success.begin() + std::ptrdiff_t(i));
  }
  std::erase_if(s.now, [&](const auto& entry) { return !access.may_read(entry.first); });
  std::string out;
  auto help = [&out](const char* name, const char* type, const char* text) {
    out += std::string("# HELP ") + name + " " + text + "\n# TYPE " + name + " " + type + "\n";
  };

  help("deploy_jobs_finished_total", "counter",
       "Jobs that reached a final state, by target and state.");
  for (const TargetStats& t : s.stats)
    for (JobState st : kAllStates)
      if (is_final(st))
        out += "deploy_jobs_finished_total{target=\"" + label(t.target) + "\",state=\"" +
               std::string(state_name(st)) + "\"} " + std::to_string(t.finished[uint8_t(st)]) +
               "\n";

  const std::pair<const char*, JobState> gauges[] = {{"deploy_jobs_running", JobState::running},
                                                     {"deploy_jobs_waiting", JobState::waiting},
                                                     {"deploy_jobs_queued", JobState::queued}};
  for (const auto& [name, st] : gauges) {
    std::string text = std::string("Jobs ") + std::string(state_name(st)) + " now, by target.";
    help(name, "gauge", text.c_str());
    for (auto& [target, counts] : s.now)
      out += std::string(name) + "{target=\"" + label(target) + "\"} " +
             std::to_string(counts[st]) + "\n";
  }

  help("deploy_job_duration_seconds", "histogram",
       "Time from start to end of jobs that ran, by target.");
  for (const TargetStats& t : s.stats) {
    uint64_t cumulative = 0;
    std::string target = label(t.target);
    for (size_t b = 0; b <= kDurationBuckets; ++b) {
      cumulative += t.duration_buckets[b];
      std::string le =
          b < kDurationBuckets ? std::to_string(kDurationBucketBounds[b] / 1000000) : "+Inf";
      out += "deploy_job_duration_seconds_bucket{target=\"" + target + "\",le=\"" + le + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    char sum[64];
    snprintf(sum, sizeof sum, "%.6f", double(t.duration_sum_micros) / 1e6);
    out += "deploy_job_duration_seconds_sum{target=\"" + target + "\"} " + sum + "\n";
    out += "deploy_job_duration_seconds_count{target=\"" + target + "\"} " +
           std::to_string(t.duration_count) + "\n";
  }

  help("deploy_last_success_timestamp_seconds", "gauge",
       "When the newest succeeded job of each target finished, in seconds since the epoch; 0: "
       "none yet.");
  for (size_t i = 0; i < s.stats.size(); ++i) {
    char seconds[64];
    const Micros last = std::max<Micros>(s.last_success[i], 0);
    snprintf(seconds, sizeof seconds, "%lld.%06lld", static_cast<long long>(last / 1000000),
             static_cast<long long>(last % 1000000));
    out += "deploy_last_success_timestamp_seconds{target=\"" + label(s.stats[i].target) + "\"} " +
           seconds + "\n";
  }

  help("deploy_submissions_total", "counter", "Submissions by result (rejected ones by reason).");
  out += "deploy_submissions_total{result=\"accepted\",reason=\"\"} " +
         std::to_string(s.counters.accepted) + "\n";
  out += "deploy_submissions_total{result=\"coalesced\",reason=\"\"} " +
         std::to_string(s.counters.coalesced) + "\n";
  out += "deploy_submissions_total{result=\"ignored\",reason=\"\"} " + std::to_string(s.ignored) +
         "\n";
  for (size_t i = 0; i < size_t(Rejection::count_); ++i)
    out += "deploy_submissions_total{result=\"rejected\",reason=\"" +
           std::string(rejection_name(Rejection(i))) + "\"} " +
           std::to_string(s.counters.rejected[i]) + "\n";

  help("deploy_queue_limit", "gauge", "DeployQueueLimit.");
  out += "deploy_queue_limit " + std::to_string(state.settings->queue_limit) + "\n";
  // Per node: DeployMaxRunning and the jobs this node runs.
  const std::string node = "{node=\"" + label(state.settings->node_name) + "\"} ";
  help("deploy_max_running", "gauge", "DeployMaxRunning, of this node.");
  out += "deploy_max_running" + node + std::to_string(state.settings->max_running) + "\n";
  help("deploy_node_jobs_running", "gauge", "Jobs running now on this node.");
  out += "deploy_node_jobs_running" + node + std::to_string(s.node_running) + "\n";
  return send_body(r, HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", out);
}

}  // namespace deploy
