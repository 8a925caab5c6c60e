// The cross-origin check of submissions.
#pragma once

#include <string_view>

namespace deploy {

// True when `origin` (the Origin header: scheme://host[:port]) names the same
// origin as the request itself: `scheme` ("http"/"https") and `host` (the
// Host header, host[:port]). Compared case-insensitively, with default ports
// (80, 443) made explicit. "null" and malformed origins are not the same.
bool is_same_origin(std::string_view origin, std::string_view scheme, std::string_view host);

}  // namespace deploy
