#include "progress.h"

#include "job_details.h"
#include "job_record.h"
#include "names.h"
#include "text.h"

namespace deploy {

namespace {

constexpr std::string_view kProgressPrefix = "::progress ";
constexpr std::string_view kStagePrefix = "::stage ";
constexpr std::string_view kOutputPrefix = "::output ";

// Stage text as it may be stored and shown: no surrounding whitespace, at
// most kStageMax bytes. nullopt when nothing is left.
std::optional<std::string> clean_stage(std::string_view raw) {
  std::string text = clean_text(raw, kStageMax, true);
  if (text.empty()) return std::nullopt;
  return text;
}

// "N" of "::progress N": 0..100, one to three digits, no sign.
std::optional<int> parse_percent(std::string_view digits) {
  if (digits.empty() || digits.size() > 3) return std::nullopt;
  const auto value = parse_decimal(digits);
  if (!value || *value > 100) return std::nullopt;
  return static_cast<int>(*value);
}

}  // namespace

std::string clean_text(std::string_view raw, size_t max, bool trim) {
  std::string text;
  for (char c : valid_utf8(raw)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) continue;
    text += c;
  }
  std::string_view kept = trim ? trim_whitespace(text) : std::string_view(text);
  if (kept.size() > max) {
    size_t cut = max;
    // Back up over continuation bytes (10xxxxxx) to the start of a character.
    while (cut > 0 && (static_cast<unsigned char>(kept[cut]) & 0xC0) == 0x80) --cut;
    kept = kept.substr(0, cut);
    if (trim) kept = trim_whitespace(kept);
  }
  return std::string(kept);
}

std::optional<OutputLine> parse_output_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!line.starts_with(kOutputPrefix)) return std::nullopt;
  const std::string_view rest = line.substr(kOutputPrefix.size());
  const size_t space = rest.find(' ');
  const std::string_view name = rest.substr(0, space);
  if (!is_valid_param_name(name)) return std::nullopt;
  OutputLine out{std::string(name), ""};
  if (space != std::string_view::npos)
    out.value = clean_text(rest.substr(space + 1), kOutputValueMax, false);
  return out;
}

std::optional<ProgressUpdate> parse_progress_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

  if (line.starts_with(kProgressPrefix)) {
    const std::string_view rest = line.substr(kProgressPrefix.size());
    const size_t space = rest.find(' ');
    const auto percent = parse_percent(rest.substr(0, space));
    if (!percent) return std::nullopt;
    ProgressUpdate update;
    update.progress = percent;
    if (space != std::string_view::npos) update.stage = clean_stage(rest.substr(space + 1));
    return update;
  }

  if (line.starts_with(kStagePrefix)) {
    auto stage = clean_stage(line.substr(kStagePrefix.size()));
    if (!stage) return std::nullopt;
    ProgressUpdate update;
    update.stage = std::move(stage);
    return update;
  }

  return std::nullopt;
}

}  // namespace deploy
