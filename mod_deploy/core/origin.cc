#include "origin.h"

#include <cstdint>
#include <optional>
#include <string>

#include "text.h"

namespace deploy {

namespace {

struct HostAndPort {
  std::string host;  // lower case; an IPv6 address keeps its brackets
  uint64_t port;
};

std::optional<uint64_t> default_port(std::string_view scheme) {
  if (equals_ignoring_case(scheme, "http")) return 80;
  if (equals_ignoring_case(scheme, "https")) return 443;
  return std::nullopt;
}

bool is_host_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_ascii_digit(c) || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool is_ipv6_char(char c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
         c == '.';
}

// host[:port] as in an origin; the port defaults to the
// scheme's. nullopt for anything else (user info, path, empty parts...).
std::optional<HostAndPort> parse_host_and_port(std::string_view text, std::string_view scheme) {
  std::string_view host;
  std::string_view after_host;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    for (char c : text.substr(1, close - 1)) {
      if (!is_ipv6_char(c)) return std::nullopt;
    }
    host = text.substr(0, close + 1);
    after_host = text.substr(close + 1);
  } else {
    const size_t colon = text.find(':');
    host = text.substr(0, colon);
    after_host = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
    if (host.empty()) return std::nullopt;
    for (char c : host) {
      if (!is_host_name_char(c)) return std::nullopt;
    }
  }

  HostAndPort result;
  for (char c : host) result.host += lower_ascii(c);
  if (after_host.empty()) {
    const auto port = default_port(scheme);
    if (!port) return std::nullopt;
    result.port = *port;
    return result;
  }
  if (after_host[0] != ':') return std::nullopt;
  const std::string_view digits = after_host.substr(1);
  const auto port = digits.size() <= 5 ? parse_decimal(digits) : std::nullopt;
  if (!port || *port == 0 || *port > 65535) return std::nullopt;
  result.port = *port;
  return result;
}

// A configured name as an origin shows it: lower case, an IPv6 address in
// brackets.
std::string normalized_name(std::string_view name) {
  std::string out;
  const bool bare_ipv6 = name.find(':') != std::string_view::npos && !name.starts_with('[');
  if (bare_ipv6) out += '[';
  for (char c : name) out += lower_ascii(c);
  if (bare_ipv6) out += ']';
  return out;
}

}  // namespace

bool matches_host_pattern(std::string_view host, std::string_view pattern) {
  // Iterative glob match: on a mismatch, let the last '*' swallow one more
  // character.
  size_t h = 0, p = 0, star = std::string_view::npos, resume = 0;
  while (h < host.size()) {
    if (p < pattern.size() &&
        (pattern[p] == '?' || lower_ascii(pattern[p]) == lower_ascii(host[h]))) {
      ++h;
      ++p;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = h;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      h = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool is_server_origin(std::string_view origin, const ServerOrigin& server) {
  constexpr std::string_view kSeparator = "://";
  const size_t separator = origin.find(kSeparator);
  if (separator == std::string_view::npos) return false;  // also "null"
  if (!equals_ignoring_case(origin.substr(0, separator), server.scheme)) return false;
  const auto from_origin =
      parse_host_and_port(origin.substr(separator + kSeparator.size()), server.scheme);
  if (!from_origin) return false;
  bool port_is_ours = false;
  for (uint16_t port : server.ports) port_is_ours = port_is_ours || port == from_origin->port;
  if (!port_is_ours) return false;
  for (const std::string& name : server.names)
    if (!name.empty() && normalized_name(name) == from_origin->host) return true;
  for (const std::string& pattern : server.patterns)
    if (matches_host_pattern(from_origin->host, pattern)) return true;
  return false;
}

}  // namespace deploy
