#include "duration.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include "text.h"

namespace deploy {

namespace {

// The number at the start of `text` and the suffix after it.
struct NumberAndSuffix {
  uint64_t number;
  std::string_view suffix;
};

std::optional<NumberAndSuffix> split_number(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && is_ascii_digit(text[digits])) ++digits;
  const auto number = parse_decimal(text.substr(0, digits));
  if (!number) return std::nullopt;
  return NumberAndSuffix{*number, text.substr(digits)};
}

}  // namespace

std::optional<Micros> parse_duration(std::string_view text) {
  const auto parsed = split_number(text);
  if (!parsed) return std::nullopt;
  uint64_t unit;  // microseconds
  // Suffixes are case-sensitive, as in ap_timeout_parameter_parse.
  if (parsed->suffix.empty() || parsed->suffix == "s") {
    unit = 1'000'000;
  } else if (parsed->suffix == "ms") {
    unit = 1'000;
  } else if (parsed->suffix == "mi") {
    unit = 60'000'000;
  } else if (parsed->suffix == "h") {
    unit = 3'600'000'000;
  } else {
    return std::nullopt;
  }
  if (parsed->number > static_cast<uint64_t>(INT64_MAX) / unit) return std::nullopt;
  return static_cast<Micros>(parsed->number * unit);
}

std::optional<uint64_t> parse_size(std::string_view text) {
  const auto parsed = split_number(text);
  if (!parsed) return std::nullopt;
  uint64_t unit;
  if (parsed->suffix.empty()) {
    unit = 1;
  } else if (parsed->suffix.size() != 1) {
    return std::nullopt;
  } else if (lower_ascii(parsed->suffix[0]) == 'k') {
    unit = uint64_t{1} << 10;
  } else if (lower_ascii(parsed->suffix[0]) == 'm') {
    unit = uint64_t{1} << 20;
  } else if (lower_ascii(parsed->suffix[0]) == 'g') {
    unit = uint64_t{1} << 30;
  } else {
    return std::nullopt;
  }
  if (parsed->number > UINT64_MAX / unit) return std::nullopt;
  return parsed->number * unit;
}

std::string written_duration(Micros duration) {
  if (duration == 0) return "0";
  if (duration % 3'600'000'000 == 0) return std::to_string(duration / 3'600'000'000) + "h";
  if (duration % 60'000'000 == 0) return std::to_string(duration / 60'000'000) + "mi";
  if (duration % 1'000'000 == 0) return std::to_string(duration / 1'000'000) + "s";
  return std::to_string(duration / 1'000) + "ms";
}

std::string written_size(uint64_t size) {
  if (size == 0) return "0";
  for (const auto& [shift, suffix] : {std::pair{30, "g"}, std::pair{20, "m"}, std::pair{10, "k"}})
    if (size % (uint64_t{1} << shift) == 0) return std::to_string(size >> shift) + suffix;
  return std::to_string(size);
}

std::string format_duration(Micros duration) {
  const long long s = duration < 0 ? 0 : duration / 1'000'000;
  char text[64];
  if (s < 60)
    std::snprintf(text, sizeof text, "%llds", s);
  else if (s < 3600)
    std::snprintf(text, sizeof text, "%lldm %02llds", s / 60, s % 60);
  else
    std::snprintf(text, sizeof text, "%lldh %02lldm %02llds", s / 3600, s / 60 % 60, s % 60);
  return text;
}

}  // namespace deploy
