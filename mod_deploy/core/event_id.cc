#include "event_id.h"

#include "text.h"

namespace deploy {

std::string format_job_event_id(const JobEventId& id) {
  return std::to_string(id.change) + "." + std::to_string(id.offset);
}

std::optional<JobEventId> parse_job_event_id(std::string_view text, uint64_t latest_change) {
  const size_t dot = text.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::optional<uint64_t> change = parse_change_event_id(text.substr(0, dot), latest_change);
  std::optional<uint64_t> offset = parse_decimal(text.substr(dot + 1));
  if (!change || !offset) return std::nullopt;
  return JobEventId{*change, *offset};
}

std::optional<uint64_t> parse_change_event_id(std::string_view text, uint64_t latest_change) {
  std::optional<uint64_t> change = parse_decimal(text);
  if (!change || *change > latest_change) return std::nullopt;
  return change;
}

}  // namespace deploy
