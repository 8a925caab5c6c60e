// Signed submissions (DeploySecret): X-Hub-Signature-256.
#pragma once

#include <string_view>

namespace deploy {

// True when `header` is "sha256=<64 hex digits>" and the digits are the
// HMAC-SHA256 of `body` under `key`. Compared in constant time.
bool signature_matches(std::string_view header, std::string_view key, std::string_view body);

}  // namespace deploy
