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

// host[:port] as in a Host header or an origin; the port defaults to the
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

}  // namespace

bool is_same_origin(std::string_view origin, std::string_view scheme, std::string_view host) {
  constexpr std::string_view kSeparator = "://";
  const size_t separator = origin.find(kSeparator);
  if (separator == std::string_view::npos) return false;  // also "null"
  const std::string_view origin_scheme = origin.substr(0, separator);
  if (!equals_ignoring_case(origin_scheme, scheme)) return false;

  const auto from_origin =
      parse_host_and_port(origin.substr(separator + kSeparator.size()), scheme);
  const auto from_request = parse_host_and_port(host, scheme);
  if (!from_origin || !from_request) return false;
  return from_origin->host == from_request->host && from_origin->port == from_request->port;
}

}  // namespace deploy
