// The cross-origin check of POST requests: does an Origin header name this
// server? The server's own names decide, never the request's Host header:
// a DNS-rebinding page sends an Origin equal to the Host it chose.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deploy {

// How this server is reached, as its configuration and the connection say.
struct ServerOrigin {
  std::string scheme;                 // "http" or "https"
  std::vector<std::string> names;     // ServerName, ServerAlias, local addresses
  std::vector<std::string> patterns;  // ServerAlias with '*' or '?', as httpd matches them
  std::vector<uint16_t> ports;        // the ports the server is reached on
};

// True when `origin` (scheme://host[:port]) has the server's scheme, one of
// its ports (a missing port is the scheme's default) and one of its names,
// or a name matching one of its patterns. Compared case-insensitively; an
// IPv6 address matches with or without its brackets in `names`. "null" and
// malformed origins are never the server's.
bool is_server_origin(std::string_view origin, const ServerOrigin& server);

// httpd's wildcard match of a ServerAlias (ap_strcasecmp_match): '*' matches
// any run of characters, '?' one character, case-insensitively.
bool matches_host_pattern(std::string_view host, std::string_view pattern);

}  // namespace deploy
