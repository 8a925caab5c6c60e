// Signed submissions (DeploySecret): X-Hub-Signature-256.
#pragma once

#include <string>
#include <string_view>

namespace deploy {

// True when `header` is "sha256=<64 hex digits>" and the digits are the
// HMAC-SHA256 of `body` under `key`. Compared in constant time.
bool signature_matches(std::string_view header, std::string_view key, std::string_view body);

// True when `given` (X-Gitlab-Token) equals `token` (DeployToken). Both are
// hashed first (HMAC-SHA256 under `token`) and the digests compared in
// constant time: the time taken tells nothing of the length or of the
// common prefix.
bool token_matches(std::string_view given, std::string_view token);

// The X-Hub-Signature-256 value a client sends with `body`:
// "sha256=" and the lower-case hex HMAC-SHA256 of `body` under `key`.
std::string signature_header(std::string_view key, std::string_view body);

}  // namespace deploy
