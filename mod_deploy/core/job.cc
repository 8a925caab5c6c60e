#include "job.h"

#include <array>

namespace deploy {

namespace {

// Indexed by the state's value minus one; the names are part of the API.
constexpr std::array<std::string_view, 9> kStateNames = {
    "waiting",   "queued",   "running", "succeeded", "failed",
    "timed_out", "canceled", "expired", "lost",
};

}  // namespace

bool is_valid_state(uint8_t raw) {
  return raw >= static_cast<uint8_t>(JobState::waiting) &&
         raw <= static_cast<uint8_t>(JobState::lost);
}

std::string_view state_name(JobState s) {
  const auto raw = static_cast<uint8_t>(s);
  if (!is_valid_state(raw)) return "unknown";
  return kStateNames[raw - 1];
}

std::optional<JobState> state_from_name(std::string_view name) {
  for (size_t i = 0; i < kStateNames.size(); ++i) {
    if (kStateNames[i] == name) return static_cast<JobState>(i + 1);
  }
  return std::nullopt;
}

std::optional<std::string> job_group(const Params& params,
                                     const std::optional<std::string>& group_by) {
  if (!group_by) return std::nullopt;
  for (const auto& [name, value] : params) {
    if (name == *group_by) return value;
  }
  return std::string();
}

std::string cancel_note(const std::optional<std::string>& by, uint64_t superseded_by) {
  if (superseded_by != 0)
    return "deploy: superseded by job " + std::to_string(superseded_by) + "\n";
  if (!by) return "deploy: canceled by a request without an authenticated user\n";
  std::string line = "deploy: canceled by ";
  for (char c : *by)
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) line += c;
  return line + "\n";
}

}  // namespace deploy
