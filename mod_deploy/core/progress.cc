#include "progress.h"

#include "job_record.h"
#include "text.h"

namespace deploy {

namespace {

constexpr std::string_view kProgressPrefix = "::progress ";
constexpr std::string_view kStagePrefix = "::stage ";

// Stage text as it may be stored and shown: valid UTF-8, no control
// characters, no surrounding whitespace, at most kStageMax bytes cut at a
// character boundary. nullopt when nothing is left.
std::optional<std::string> clean_stage(std::string_view raw) {
  std::string text;
  for (char c : valid_utf8(raw)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) continue;
    text += c;
  }
  std::string_view trimmed = trim_whitespace(text);
  if (trimmed.size() > kStageMax) {
    size_t cut = kStageMax;
    // Back up over continuation bytes (10xxxxxx) to the start of a character.
    while (cut > 0 && (static_cast<unsigned char>(trimmed[cut]) & 0xC0) == 0x80) --cut;
    trimmed = trim_whitespace(trimmed.substr(0, cut));
  }
  if (trimmed.empty()) return std::nullopt;
  return std::string(trimmed);
}

// "N" of "::progress N": 0..100, one to three digits, no sign.
std::optional<int> parse_percent(std::string_view digits) {
  if (digits.empty() || digits.size() > 3) return std::nullopt;
  const auto value = parse_decimal(digits);
  if (!value || *value > 100) return std::nullopt;
  return static_cast<int>(*value);
}

}  // namespace

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
