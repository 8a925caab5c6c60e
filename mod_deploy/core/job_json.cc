#include "job_json.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "text.h"

namespace deploy {

namespace {

// Params, stages and user names come from outside and may hold invalid
// UTF-8, which jansson refuses: repair it rather than lose the whole object.
json_t* text_json(std::string_view text) {
  const std::string valid = valid_utf8(text);
  return json_stringn(valid.data(), valid.size());
}

json_t* optional_text_json(const std::optional<std::string>& text) {
  return text ? text_json(*text) : json_null();
}

json_t* optional_integer_json(const std::optional<int>& value) {
  return value ? json_integer(*value) : json_null();
}

json_t* time_json(Micros t) { return t == 0 ? json_null() : text_json(format_time(t)); }

void set(json_t* object, std::string_view key, json_t* value) {
  const std::string valid = valid_utf8(key);
  json_object_setn_new(object, valid.data(), valid.size(), value);
}

}  // namespace

std::string format_time(Micros t) {
  Micros seconds = t / 1'000'000;
  Micros micros = t % 1'000'000;
  if (micros < 0) {  // times before the epoch round towards the past
    micros += 1'000'000;
    --seconds;
  }
  const time_t as_time_t = static_cast<time_t>(seconds);
  struct tm utc {};
  if (gmtime_r(&as_time_t, &utc) == nullptr) return "";
  char text[96];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(micros / 1000));
  return text;
}

json_t* job_to_json(const Job& job, std::string_view base) {
  json_t* params = json_object();
  for (const auto& [name, value] : job.params) set(params, name, text_json(value));

  const std::string self = std::string(base) + "/jobs/" + std::to_string(job.id);
  json_t* links = json_object();
  set(links, "self", text_json(self));
  set(links, "log", text_json(self + "/log"));
  set(links, "events", text_json(self + "/events"));
  set(links, "cancel", text_json(self + "/cancel"));

  json_t* object = json_object();
  set(object, "id", json_integer(static_cast<json_int_t>(job.id)));
  set(object, "target", text_json(job.target));
  set(object, "state", text_json(state_name(job.state)));
  set(object, "params", params);
  set(object, "progress", job.progress < 0 ? json_null() : json_integer(job.progress));
  set(object, "stage", optional_text_json(job.stage));
  set(object, "requests", json_integer(job.requests));
  set(object, "not_before", time_json(job.not_before));
  set(object, "submitted_by", optional_text_json(job.submitted_by));
  set(object, "submitted_at", time_json(job.submitted_at));
  set(object, "started_at", time_json(job.started_at));
  set(object, "finished_at", time_json(job.finished_at));
  set(object, "exit_code", optional_integer_json(job.exit_code));
  set(object, "signal", optional_integer_json(job.signal));
  set(object, "links", links);
  return object;
}

std::string job_json(const Job& job, std::string_view base, bool coalesced) {
  json_t* object = job_to_json(job, base);
  if (coalesced) set(object, "coalesced", json_true());
  return dump_json(object);
}

std::string error_json(const RequestError& error) {
  json_t* object = json_object();
  set(object, "error", text_json(error.code));
  set(object, "message", text_json(error.message));
  return dump_json(object);
}

std::string dump_json(json_t* value) {
  if (value == nullptr) return "null";
  char* text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(value);
  if (text == nullptr) return "";
  std::string result(text);
  std::free(text);
  return result;
}

}  // namespace deploy
