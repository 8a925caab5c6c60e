#include "display.h"

#include <time.h>

#include <cstdio>

namespace deploy::ctl {

namespace {

bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xc0) == 0x80; }

}  // namespace

std::string printable(std::string_view text) {
  std::string result(text);
  for (char& c : result) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = '?';
  }
  return result;
}

std::string format_timestamp(Micros t) {
  const time_t seconds = static_cast<time_t>(t / 1'000'000);
  struct tm utc {};
  if (gmtime_r(&seconds, &utc) == nullptr) return "?";
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
  return text;
}

Micros parse_timestamp(std::string_view text) {
  // Exactly the server's form: 2026-11-21T10:00:00.123Z
  if (text.size() != 24 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != '.' || text[23] != 'Z')
    return -1;
  auto number = [&](size_t from, size_t length) {
    int value = 0;
    for (size_t i = from; i < from + length; ++i) {
      if (text[i] < '0' || text[i] > '9') return -1;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  struct tm utc {};
  utc.tm_year = number(0, 4) - 1900;
  utc.tm_mon = number(5, 2) - 1;
  utc.tm_mday = number(8, 2);
  utc.tm_hour = number(11, 2);
  utc.tm_min = number(14, 2);
  utc.tm_sec = number(17, 2);
  const int millis = number(20, 3);
  if (utc.tm_year < 0 || utc.tm_mon < 0 || utc.tm_mday < 0 || utc.tm_hour < 0 || utc.tm_min < 0 ||
      utc.tm_sec < 0 || millis < 0)
    return -1;
  const time_t seconds = timegm(&utc);
  return Micros(seconds) * 1'000'000 + Micros(millis) * 1000;
}

std::string first_columns(std::string_view text, size_t columns) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (is_continuation_byte(text[i])) continue;
    if (seen == columns) return std::string(text.substr(0, i));
    ++seen;
  }
  return std::string(text);
}

size_t column_count(std::string_view text) {
  size_t count = 0;
  for (char c : text) {
    if (!is_continuation_byte(c)) ++count;
  }
  return count;
}

}  // namespace deploy::ctl
