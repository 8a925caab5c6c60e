#include "job_details.h"

#include <algorithm>

#include "job_record.h"  // kStageMax
#include "names.h"
#include "progress.h"  // clean_text
#include "text.h"

namespace deploy {

namespace {

constexpr std::string_view kDetailsVersion = "deploy-details 1\n";

void put_field(std::string& out, std::string_view text) {
  out += std::to_string(text.size());
  out += ':';
  out += text;
}

// One "LEN:TEXT" field off the front of `in`; false when it is not one.
bool take_field(std::string_view& in, std::string_view* out) {
  const size_t colon = in.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 9) return false;
  const std::optional<uint64_t> length = parse_decimal(in.substr(0, colon));
  if (!length || *length > in.size() - colon - 1) return false;
  *out = in.substr(colon + 1, *length);
  in.remove_prefix(colon + 1 + *length);
  return true;
}

bool take_time(std::string_view& in, Micros* out) {
  std::string_view digits;
  if (!take_field(in, &digits)) return false;
  const std::optional<uint64_t> value = parse_decimal(digits);
  if (!value || *value > uint64_t(INT64_MAX)) return false;
  *out = Micros(*value);
  return true;
}

// What clean_text would leave of `text` as it is: the runner stored nothing else.
bool is_clean(std::string_view text, size_t max, bool trimmed) {
  return text.size() <= max && clean_text(text, max, trimmed) == text;
}

}  // namespace

bool enter_stage(std::vector<Stage>* stages, std::string_view name, Micros now) {
  if (!stages->empty() && stages->back().finished_at == 0 && stages->back().name == name)
    return false;
  if (!stages->empty() && stages->back().finished_at == 0) stages->back().finished_at = now;
  Stage stage{std::string(name), now, 0};
  if (stages->size() >= kStagesMax)
    stages->back() = std::move(stage);
  else
    stages->push_back(std::move(stage));
  return true;
}

OutputChange set_output(Outputs* outputs, std::string_view name, std::string_view value) {
  auto same = std::find_if(outputs->begin(), outputs->end(),
                           [&](const auto& output) { return output.first == name; });
  if (same != outputs->end()) {
    if (same->second == value) return OutputChange::unchanged;
    same->second = std::string(value);
    return OutputChange::set;
  }
  if (outputs->size() >= kOutputsMax) return OutputChange::full;
  outputs->emplace_back(std::string(name), std::string(value));
  return OutputChange::set;
}

std::string encode_stages(const std::vector<Stage>& stages) {
  std::string out;
  for (const Stage& stage : stages) {
    put_field(out, stage.name);
    put_field(out, std::to_string(std::max<Micros>(stage.started_at, 0)));
    put_field(out, std::to_string(std::max<Micros>(stage.finished_at, 0)));
  }
  return out;
}

bool decode_stages(std::string_view text, std::vector<Stage>* out) {
  out->clear();
  std::vector<Stage> stages;
  while (!text.empty()) {
    Stage stage;
    std::string_view name;
    if (stages.size() >= kStagesMax || !take_field(text, &name) || name.empty() ||
        !is_clean(name, kStageMax, true) || !take_time(text, &stage.started_at) ||
        !take_time(text, &stage.finished_at))
      return false;
    stage.name = std::string(name);
    stages.push_back(std::move(stage));
  }
  *out = std::move(stages);
  return true;
}

std::string encode_outputs(const Outputs& outputs) {
  std::string out;
  for (const auto& [name, value] : outputs) {
    put_field(out, name);
    put_field(out, value);
  }
  return out;
}

bool decode_outputs(std::string_view text, Outputs* out) {
  out->clear();
  Outputs outputs;
  while (!text.empty()) {
    std::string_view name, value;
    if (outputs.size() >= kOutputsMax || !take_field(text, &name) || !take_field(text, &value) ||
        !is_valid_param_name(name) || !is_clean(value, kOutputValueMax, false) ||
        std::any_of(outputs.begin(), outputs.end(),
                    [&](const auto& output) { return output.first == name; }))
      return false;
    outputs.emplace_back(std::string(name), std::string(value));
  }
  *out = std::move(outputs);
  return true;
}

std::string encode_details(const std::vector<Stage>& stages, const Outputs& outputs) {
  std::string out(kDetailsVersion);
  put_field(out, encode_stages(stages));
  put_field(out, encode_outputs(outputs));
  return out;
}

bool decode_details(std::string_view text, std::vector<Stage>* stages, Outputs* outputs) {
  stages->clear();
  outputs->clear();
  std::string_view stages_text, outputs_text;
  if (text.size() > kDetailsMax || !text.starts_with(kDetailsVersion)) return false;
  text.remove_prefix(kDetailsVersion.size());
  if (!take_field(text, &stages_text) || !take_field(text, &outputs_text) || !text.empty())
    return false;
  std::vector<Stage> s;
  Outputs o;
  if (!decode_stages(stages_text, &s) || !decode_outputs(outputs_text, &o)) return false;
  *stages = std::move(s);
  *outputs = std::move(o);
  return true;
}

}  // namespace deploy
