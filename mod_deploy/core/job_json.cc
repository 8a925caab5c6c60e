#include "job_json.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <utility>
#include <vector>

#include "text.h"

namespace deploy {

namespace {

// Params, stages and user names come from outside and may hold invalid
// UTF-8, which jansson refuses: repair it rather than lose the whole object.
json_t* text_json(std::string_view text) {
  const std::string valid = valid_utf8(text);
  return json_stringn(valid.data(), valid.size());
}

void set(json_t* object, std::string_view key, json_t* value) {
  const std::string valid = valid_utf8(key);
  json_object_setn_new(object, valid.data(), valid.size(), value);
}

}  // namespace

namespace {

// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
// civil_from_days): no lock, unlike gmtime_r, which takes glibc's tz lock.
void civil_from_days(int64_t days, int64_t* year, int* month, int* day) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;                                    // [0, 146096]
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
  *day = int(doy - (153 * mp + 2) / 5 + 1);
  *month = int(mp < 10 ? mp + 3 : mp - 9);
  *year = yoe + era * 400 + (*month <= 2);
}

void put_digits(char* at, int64_t value, int width) {
  for (int i = width - 1; i >= 0; --i, value /= 10) at[i] = char('0' + value % 10);
}

}  // namespace

std::string format_time(Micros t) {
  Micros seconds = t / 1'000'000;
  Micros micros = t % 1'000'000;
  if (micros < 0) {  // times before the epoch round towards the past
    micros += 1'000'000;
    --seconds;
  }
  Micros days = seconds / 86400;
  Micros second_of_day = seconds % 86400;
  if (second_of_day < 0) {
    second_of_day += 86400;
    --days;
  }
  int64_t year;
  int month, day;
  civil_from_days(days, &year, &month, &day);
  if (year < 0 || year > 9999) {  // rare: the width of the year varies
    char text[96];
    std::snprintf(text, sizeof text, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
                  static_cast<long long>(year), month, day, int(second_of_day / 3600),
                  int(second_of_day / 60 % 60), int(second_of_day % 60),
                  static_cast<int>(micros / 1000));
    return text;
  }
  char text[25] = "0000-00-00T00:00:00.000Z";
  put_digits(text, year, 4);
  put_digits(text + 5, month, 2);
  put_digits(text + 8, day, 2);
  put_digits(text + 11, second_of_day / 3600, 2);
  put_digits(text + 14, second_of_day / 60 % 60, 2);
  put_digits(text + 17, second_of_day % 60, 2);
  put_digits(text + 20, micros / 1000, 3);
  return std::string(text, 24);
}

namespace {

// The text jansson's json_dumps(JSON_COMPACT) writes, without building a
// json_t first: job_json is on the hot path (every GET of a job, every
// submission, and every event of every stream), and jansson's objects
// took most of its time.

// A JSON string as jansson dumps it: invalid UTF-8 repaired as text_json
// does, then ", \ and control characters escaped (\u00XX in upper case).
void append_string(std::string& out, std::string_view text) {
  std::string repaired;
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      repaired = valid_utf8(text);
      text = repaired;
      break;
    }
  }
  out += '"';
  size_t i = 0;
  while (i < text.size()) {
    // Runs of characters that need no escape are copied at once.
    size_t plain = i;
    while (plain < text.size() && static_cast<unsigned char>(text[plain]) >= 0x20 &&
           text[plain] != '"' && text[plain] != '\\')
      ++plain;
    out.append(text.data() + i, plain - i);
    if (plain == text.size()) break;
    const auto u = static_cast<unsigned char>(text[plain]);
    i = plain + 1;
    switch (u) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        static constexpr char kHex[] = "0123456789ABCDEF";
        out += "\\u00";
        out += kHex[u >> 4];
        out += kHex[u & 15];
      }
    }
  }
  out += '"';
}

void append_key(std::string& out, std::string_view key) {
  append_string(out, key);
  out += ':';
}

void append_time(std::string& out, Micros t) {
  if (t == 0) {
    out += "null";
  } else {
    out += '"';
    out += format_time(t);  // digits, '-', ':', '.', 'T', 'Z': nothing to escape
    out += '"';
  }
}

void append_integer(std::string& out, long long value) { out += std::to_string(value); }

void append_optional_integer(std::string& out, const std::optional<int>& value) {
  if (value)
    append_integer(out, *value);
  else
    out += "null";
}

void append_optional_text(std::string& out, const std::optional<std::string>& text) {
  if (text)
    append_string(out, *text);
  else
    out += "null";
}

// Name-value pairs (params, outputs) as a JSON object: a repeated name keeps
// its first place and takes the last value (names are repaired first, as
// jansson's keys are).
void append_object(std::string& out, const Params& pairs) {
  std::vector<std::pair<std::string, std::string_view>> kept;
  for (const auto& [name, value] : pairs) {
    std::string key = valid_utf8(name);
    auto same =
        std::find_if(kept.begin(), kept.end(), [&key](const auto& p) { return p.first == key; });
    if (same != kept.end())
      same->second = value;
    else
      kept.emplace_back(std::move(key), value);
  }
  out += '{';
  for (size_t i = 0; i < kept.size(); ++i) {
    if (i) out += ',';
    append_key(out, kept[i].first);
    append_string(out, kept[i].second);
  }
  out += '}';
}

// A JSON array of `count` elements, each written by `element(i)`.
template <class F>
void append_array(std::string& out, size_t count, F&& element) {
  out += '[';
  for (size_t i = 0; i < count; ++i) {
    if (i) out += ',';
    element(i);
  }
  out += ']';
}

}  // namespace

std::string job_json(const Job& job, std::string_view base, std::string_view flag) {
  std::string out;
  out.reserve(512);
  out += "{\"id\":";
  append_integer(out, static_cast<long long>(static_cast<json_int_t>(job.id)));
  out += ",\"target\":";
  append_string(out, job.target);
  out += ",\"state\":";
  append_string(out, state_name(job.state));
  out += ",\"params\":";
  append_object(out, job.params);
  out += ",\"outputs\":";
  append_object(out, job.outputs);
  out += ",\"group\":";
  append_optional_text(out, job.group);
  out += ",\"progress\":";
  if (job.progress < 0)
    out += "null";
  else
    append_integer(out, job.progress);
  out += ",\"stage\":";
  append_optional_text(out, job.stage);
  out += ",\"stages\":";
  append_array(out, job.stages.size(), [&](size_t i) {
    out += "{\"name\":";
    append_string(out, job.stages[i].name);
    out += ",\"started_at\":";
    append_time(out, job.stages[i].started_at);
    out += ",\"finished_at\":";
    append_time(out, stage_finished_at(job, i));
    out += '}';
  });
  out += ",\"requests\":";
  append_integer(out, job.requests);
  out += ",\"not_before\":";
  append_time(out, job.not_before);
  out += ",\"submitted_by\":";
  append_optional_text(out, job.submitted_by);
  out += ",\"submitted_at\":";
  append_time(out, job.submitted_at);
  out += ",\"started_at\":";
  append_time(out, job.started_at);
  out += ",\"finished_at\":";
  append_time(out, job.finished_at);
  out += ",\"node\":";
  append_optional_text(out, job.node);
  out += ",\"exit_code\":";
  append_optional_integer(out, job.exit_code);
  out += ",\"signal\":";
  append_optional_integer(out, job.signal);
  out += job.log_complete ? ",\"log_complete\":true" : ",\"log_complete\":false";
  out += ",\"canceled_by\":";
  append_optional_text(out, shown_canceled_by(job));
  out += ",\"superseded_by\":";
  if (job.superseded_by != 0 && job.state == JobState::canceled)
    append_integer(out, static_cast<long long>(job.superseded_by));
  else
    out += "null";
  // Never the URL, which may hold a token.
  out += ",\"notifications\":";
  append_array(out, job.notifications.size(), [&](size_t i) {
    const Notification& n = job.notifications[i];
    out += "{\"state\":";
    append_string(out, notification_state_name(n.state));
    out += ",\"attempts\":";
    append_integer(out, n.attempts);
    out += ",\"status\":";
    append_optional_integer(out, n.status);
    out += '}';
  });
  const std::string self = std::string(base) + "/jobs/" + std::to_string(job.id);
  out += ",\"links\":{\"self\":";
  append_string(out, self);
  out += ",\"log\":";
  append_string(out, self + "/log");
  out += ",\"events\":";
  append_string(out, self + "/events");
  out += ",\"cancel\":";
  append_string(out, self + "/cancel");
  out += '}';
  if (!flag.empty()) {
    out += ',';
    append_key(out, flag);
    out += "true";
  }
  out += '}';
  return out;
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
