// Small text helpers the core's parsers and JSON output share: ASCII case,
// NUL bytes, whitespace, decimal numbers and UTF-8 repair. Header-only so that the
// core's source list in CMakeLists.txt stays as it is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace deploy {

inline char lower_ascii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower_ascii(a[i]) != lower_ascii(b[i])) return false;
  }
  return true;
}

// True when `text` holds a NUL byte (which no C string can carry).
inline bool has_nul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

inline bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

// 0..15, or -1 when `c` is not a hexadecimal digit.
inline int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline bool is_ascii_whitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

inline std::string_view trim_whitespace(std::string_view text) {
  while (!text.empty() && is_ascii_whitespace(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ascii_whitespace(text.back())) text.remove_suffix(1);
  return text;
}

// Digits only (no sign, no space), at least one, and the value fits in 64 bits.
inline std::optional<uint64_t> parse_decimal(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : digits) {
    if (!is_ascii_digit(c)) return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

// `text` with every invalid UTF-8 sequence replaced by U+FFFD, one
// replacement per maximal invalid subpart (as the Unicode standard
// recommends). Overlong forms, surrogates and code points past U+10FFFF are
// invalid.
inline std::string valid_utf8(std::string_view text) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      out += static_cast<char>(lead);
      ++i;
      continue;
    }
    size_t continuation_bytes = 0;
    // The second byte's range is narrower for some leads: that is what rules
    // out overlong forms, surrogates and values past U+10FFFF.
    unsigned char second_min = 0x80, second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      continuation_bytes = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      continuation_bytes = 2;
      if (lead == 0xE0) second_min = 0xA0;
      if (lead == 0xED) second_max = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      continuation_bytes = 3;
      if (lead == 0xF0) second_min = 0x90;
      if (lead == 0xF4) second_max = 0x8F;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    size_t length = 1;
    while (length <= continuation_bytes && i + length < text.size()) {
      const auto c = static_cast<unsigned char>(text[i + length]);
      const unsigned char min = length == 1 ? second_min : 0x80;
      const unsigned char max = length == 1 ? second_max : 0xBF;
      if (c < min || c > max) break;
      ++length;
    }
    if (length == continuation_bytes + 1) {
      out.append(text.substr(i, length));
    } else {
      out += kReplacement;
    }
    i += length;
  }
  return out;
}

}  // namespace deploy
