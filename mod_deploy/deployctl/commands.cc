#include "commands.h"

#include <jansson.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <cstdio>
#include <string>
#include <vector>

#include "exit_code.h"
#include "follow.h"
#include "job_view.h"

namespace deploy::ctl {

namespace {

uint64_t job_id_argument(const Options& options) {
  return std::stoull(options.arguments.at(0));  // parse_options checked the digits
}

FollowOutput follow_output(const Options& options) {
  if (options.json) return FollowOutput::json;
  return isatty(STDOUT_FILENO) ? FollowOutput::progress_bar : FollowOutput::change_lines;
}

void print_body(const Reply& reply) {
  std::fwrite(reply.body.data(), 1, reply.body.size(), stdout);
  if (!reply.body.empty() && reply.body.back() != '\n') std::fputc('\n', stdout);
}

int unexpected_answer(const Client& client, const std::string& path) {
  std::fprintf(stderr, "deployctl: unexpected answer from %s%s\n", client.base_url().c_str(),
               path.c_str());
  return kExitServerError;
}

std::string time_or_dash(Micros t) { return t >= 0 ? format_timestamp(t) : "-"; }

// Columns padded to the widest cell; the last column is not padded.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], column_count(row[i]));
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - column_count(row[i]) + 2, ' ');
    }
    std::puts(line.c_str());
  }
}

std::string progress_cell(const JobView& job) {
  return job.progress ? std::to_string(*job.progress) + "%" : "-";
}

int command_submit(const Options& options, Client& client) {
  const std::string& target = options.arguments.at(0);
  json_t* params = json_object();
  for (size_t i = 1; i < options.arguments.size(); ++i) {
    const std::string& word = options.arguments[i];
    const size_t equals = word.find('=');
    const std::string name = word.substr(0, equals);
    json_t* value = json_stringn(word.data() + equals + 1, word.size() - equals - 1);
    if (!value || json_object_set_new(params, name.c_str(), value) != 0) {
      json_decref(params);
      std::fprintf(stderr, "deployctl: parameter %s is not valid UTF-8\n", printable(name).c_str());
      return kExitLocalError;
    }
  }
  json_t* document = json_pack("{s:o}", "params", params);
  char* text = json_dumps(document, JSON_COMPACT);
  json_decref(document);
  if (!text) throw std::bad_alloc();
  const std::string body(text);
  std::free(text);

  const std::string path = "/targets/" + client.escape(target);
  Reply reply = client.post(path, "application/json", body);
  if (!reply.ok()) return report_failure(reply, client);
  std::optional<JobView> job = parse_job(reply.body);
  if (!job) return unexpected_answer(client, path);
  if (options.json) {
    print_body(reply);
  } else {
    std::string line = "job " + std::to_string(job->id) + " of " + printable(job->target) + ": " +
                       printable(job->state);
    if (job->coalesced) line += " (coalesced, " + std::to_string(job->requests) + " requests)";
    if (job->state == "waiting" && job->not_before >= 0)
      line += ", starts at " + format_timestamp(job->not_before) + " at the earliest";
    std::puts(line.c_str());
  }
  std::fflush(stdout);
  if (!options.follow) return kExitSucceeded;
  return follow_job(client, job->id, follow_output(options));
}

// What a command does first with its answer: a failure is reported, and
// --json prints the server's JSON as it is; either way the command is done.
std::optional<int> reported_or_printed(const Reply& reply, const Options& options, Client& client) {
  if (!reply.ok()) return report_failure(reply, client);
  if (!options.json) return std::nullopt;
  print_body(reply);
  return kExitSucceeded;
}

int command_status(const Options& options, Client& client) {
  const std::string path = "/jobs/" + std::to_string(job_id_argument(options));
  Reply reply = client.get(path);
  if (std::optional<int> done = reported_or_printed(reply, options, client)) return *done;
  std::optional<JobView> job = parse_job(reply.body);
  if (!job) return unexpected_answer(client, path);
  std::string params;
  for (const auto& [name, value] : job->params)
    params += (params.empty() ? "" : " ") + printable(name) + "=" + printable(value);
  auto number = [](const std::optional<int64_t>& n) { return n ? std::to_string(*n) : "-"; };
  std::vector<std::vector<std::string>> rows = {
      {"job", std::to_string(job->id)},
      {"target", printable(job->target)},
      {"state", printable(job->state)},
      {"progress", progress_cell(*job)},
      {"stage", job->stage ? printable(*job->stage) : "-"},
      {"params", params.empty() ? "-" : params},
  };
  // A row for each output and each stage (its time: how long it took, or
  // has taken so far).
  for (size_t i = 0; i < job->outputs.size(); ++i)
    rows.push_back({i ? "" : "outputs",
                    printable(job->outputs[i].first) + "=" + printable(job->outputs[i].second)});
  if (job->outputs.empty()) rows.push_back({"outputs", "-"});
  for (size_t i = 0; i < job->stages.size(); ++i) {
    const JobView::Stage& stage = job->stages[i];
    std::string took = "-";
    if (stage.started_at >= 0 && stage.finished_at >= 0)
      took = format_duration(stage.finished_at - stage.started_at);
    else if (stage.started_at >= 0)
      took = format_duration(wall_now() - stage.started_at) + " so far";
    rows.push_back({i ? "" : "stages", printable(stage.name), took});
  }
  if (job->stages.empty()) rows.push_back({"stages", "-"});
  rows.insert(
      rows.end(),
      {
          {"requests", std::to_string(job->requests)},
          {"submitted", time_or_dash(job->submitted_at) +
                            (job->submitted_by ? " by " + printable(*job->submitted_by) : "")},
      });
  // Only a target with DeployGroupBy has groups: elsewhere the row would always be "-".
  if (job->group) rows.insert(rows.begin() + 2, {"group", printable(*job->group)});
  if (job->state == "waiting") rows.push_back({"not before", time_or_dash(job->not_before)});
  rows.push_back({"started", time_or_dash(job->started_at) +
                                 (job->node ? " on " + printable(*job->node) : "")});
  rows.push_back({"finished", time_or_dash(job->finished_at)});
  if (job->started_at >= 0) rows.push_back({"ran", format_duration(elapsed(*job, wall_now()))});
  rows.push_back({"exit code", number(job->exit_code)});
  rows.push_back({"signal", number(job->signal)});
  print_table(rows);
  return kExitSucceeded;
}

int command_list(const Options& options, Client& client) {
  std::string query;
  auto add = [&](const char* name, const std::optional<std::string>& value) {
    if (!value) return;
    query += (query.empty() ? "?" : "&") + std::string(name) + "=" + client.escape(*value);
  };
  add("target", options.target_filter);
  add("state", options.state_filter);
  add("limit", options.limit);
  const std::string path = "/jobs" + query;
  Reply reply = client.get(path);
  if (std::optional<int> done = reported_or_printed(reply, options, client)) return *done;
  std::optional<std::vector<JobView>> jobs = parse_jobs(reply.body);
  if (!jobs) return unexpected_answer(client, path);
  std::vector<std::vector<std::string>> rows = {
      {"ID", "TARGET", "STATE", "PROGRESS", "SUBMITTED", "STAGE"}};
  for (const JobView& job : *jobs) {
    rows.push_back({std::to_string(job.id), printable(job.target), printable(job.state),
                    progress_cell(job), time_or_dash(job.submitted_at),
                    job.stage ? printable(*job.stage) : "-"});
  }
  print_table(rows);
  return kExitSucceeded;
}

int command_targets(const Options& options, Client& client) {
  Reply reply = client.get("/targets");
  if (std::optional<int> done = reported_or_printed(reply, options, client)) return *done;
  json_t* array = json_loadb(reply.body.data(), reply.body.size(), 0, nullptr);
  if (!json_is_array(array)) {
    json_decref(array);
    return unexpected_answer(client, "/targets");
  }
  std::vector<std::vector<std::string>> rows = {{"TARGET", "SIGNED", "LATEST JOB", "STATE"}};
  size_t index;
  json_t* target;
  json_array_foreach(array, index, target) {
    const char* name = json_string_value(json_object_get(target, "name"));
    const bool is_signed = json_is_true(json_object_get(target, "signed"));
    std::string latest = "-";
    std::string state = "-";
    if (json_t* job = json_object_get(target, "latest_job"); json_is_object(job)) {
      latest = std::to_string(json_integer_value(json_object_get(job, "id")));
      const char* job_state = json_string_value(json_object_get(job, "state"));
      state = printable(job_state ? job_state : "?");
    }
    rows.push_back({printable(name ? name : "?"), is_signed ? "yes" : "no", latest, state});
  }
  json_decref(array);
  print_table(rows);
  return kExitSucceeded;
}

int command_cancel(const Options& options, Client& client) {
  const uint64_t id = job_id_argument(options);
  const std::string path = "/jobs/" + std::to_string(id) + "/cancel";
  Reply reply = client.post(path, "application/json", "");
  if (std::optional<int> done = reported_or_printed(reply, options, client)) return *done;
  std::optional<JobView> job = parse_job(reply.body);
  if (!job) return unexpected_answer(client, path);
  if (is_final_state(job->state))
    std::printf("job %llu %s\n", static_cast<unsigned long long>(id),
                printable(job->state).c_str());
  else
    std::printf("job %llu: cancel requested; it is being stopped (%s)\n",
                static_cast<unsigned long long>(id), printable(job->state).c_str());
  return kExitSucceeded;
}

}  // namespace

int run_command(const Options& options, Client& client) {
  const std::string& command = options.command;
  if (command == "submit") return command_submit(options, client);
  if (command == "follow")
    return follow_job(client, job_id_argument(options), follow_output(options));
  if (command == "status") return command_status(options, client);
  if (command == "list") return command_list(options, client);
  if (command == "cancel") return command_cancel(options, client);
  if (command == "log") return copy_log(client, job_id_argument(options), options.follow);
  if (command == "targets") return command_targets(options, client);
  std::fprintf(stderr, "deployctl: unknown command '%s'\n", command.c_str());
  return kExitLocalError;
}

}  // namespace deploy::ctl
