#include "job_view.h"

#include <jansson.h>

#include <algorithm>

namespace deploy::ctl {

namespace {

std::optional<std::string> text_field(json_t* object, const char* name) {
  const char* text = json_string_value(json_object_get(object, name));
  if (!text) return std::nullopt;
  return std::string(text);
}

std::optional<int64_t> integer_field(json_t* object, const char* name) {
  json_t* value = json_object_get(object, name);
  if (!json_is_integer(value)) return std::nullopt;
  return json_integer_value(value);
}

Micros time_field(json_t* object, const char* name) {
  std::optional<std::string> text = text_field(object, name);
  return text ? parse_timestamp(*text) : -1;
}

std::optional<JobView> job_from_json(json_t* object) {
  std::optional<int64_t> id = integer_field(object, "id");
  std::optional<std::string> state = text_field(object, "state");
  if (!json_is_object(object) || !id || *id <= 0 || !state) return std::nullopt;
  JobView job;
  job.id = static_cast<uint64_t>(*id);
  job.state = *state;
  job.target = text_field(object, "target").value_or("");
  const char* name;
  json_t* value;
  json_object_foreach(json_object_get(object, "params"), name, value) {
    if (json_is_string(value)) job.params.emplace_back(name, json_string_value(value));
  }
  json_object_foreach(json_object_get(object, "outputs"), name, value) {
    if (json_is_string(value)) job.outputs.emplace_back(name, json_string_value(value));
  }
  size_t index;
  json_t* stage;
  json_array_foreach(json_object_get(object, "stages"), index, stage) {
    std::optional<std::string> stage_name = text_field(stage, "name");
    if (!stage_name) continue;
    job.stages.push_back(
        {*stage_name, time_field(stage, "started_at"), time_field(stage, "finished_at")});
  }
  if (auto progress = integer_field(object, "progress"))
    job.progress = static_cast<int>(std::clamp<int64_t>(*progress, 0, 100));
  job.group = text_field(object, "group");
  job.stage = text_field(object, "stage");
  job.requests = integer_field(object, "requests").value_or(0);
  job.submitted_by = text_field(object, "submitted_by");
  job.node = text_field(object, "node");
  job.not_before = time_field(object, "not_before");
  job.submitted_at = time_field(object, "submitted_at");
  job.started_at = time_field(object, "started_at");
  job.finished_at = time_field(object, "finished_at");
  job.exit_code = integer_field(object, "exit_code");
  job.signal = integer_field(object, "signal");
  job.coalesced = json_is_true(json_object_get(object, "coalesced"));
  return job;
}

}  // namespace

std::optional<JobView> parse_job(std::string_view json_text) {
  json_t* object = json_loadb(json_text.data(), json_text.size(), 0, nullptr);
  std::optional<JobView> job = job_from_json(object);
  json_decref(object);
  return job;
}

std::optional<std::vector<JobView>> parse_jobs(std::string_view json_text) {
  json_t* array = json_loadb(json_text.data(), json_text.size(), 0, nullptr);
  std::optional<std::vector<JobView>> jobs;
  if (json_is_array(array)) {
    jobs.emplace();
    size_t index;
    json_t* element;
    json_array_foreach(array, index, element) {
      std::optional<JobView> job = job_from_json(element);
      if (!job) {
        jobs.reset();
        break;
      }
      jobs->push_back(std::move(*job));
    }
  }
  json_decref(array);
  return jobs;
}

bool is_final_state(std::string_view state) {
  return state == "succeeded" || state == "failed" || state == "timed_out" || state == "canceled" ||
         state == "expired" || state == "lost";
}

Micros elapsed(const JobView& job, Micros now) {
  if (job.started_at >= 0) return (job.finished_at >= 0 ? job.finished_at : now) - job.started_at;
  if (job.submitted_at >= 0)
    return (job.finished_at >= 0 ? job.finished_at : now) - job.submitted_at;
  return 0;
}

std::string change_line(const JobView& job, Micros now) {
  std::string line =
      format_timestamp(now) + " job " + std::to_string(job.id) + " " + printable(job.state);
  if (job.progress) line += " " + std::to_string(*job.progress) + "%";
  if (job.stage) line += " " + printable(*job.stage);
  return line;
}

std::string summary_line(const JobView& job) {
  std::string line = "job " + std::to_string(job.id) + " " + printable(job.state) + ":";
  if (job.exit_code) line += " exit code " + std::to_string(*job.exit_code) + ",";
  if (job.signal) line += " signal " + std::to_string(*job.signal) + ",";
  if (job.started_at >= 0) {
    line += " ran " + format_duration(elapsed(job, wall_now()));
  } else {
    line += " never started, waited " + format_duration(elapsed(job, wall_now()));
  }
  return line;
}

bool same_progress(const JobView& a, const JobView& b) {
  return a.state == b.state && a.progress == b.progress && a.stage == b.stage;
}

}  // namespace deploy::ctl
