#include "signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>
#include <cstdint>
#include <cstring>

#include "text.h"

namespace deploy {

namespace {

constexpr std::string_view kPrefix = "sha256=";
constexpr size_t kDigestSize = 32;

// HMAC-SHA256 of body under key; false when OpenSSL refuses.
bool hmac_sha256(std::string_view key, std::string_view body,
                 unsigned char (&digest)[kDigestSize]) {
  if (key.size() > static_cast<size_t>(INT_MAX)) return false;
  // An empty string_view may hold a null pointer, which HMAC() does not take.
  static const unsigned char kNothing = 0;
  const void* key_data = key.empty() ? &kNothing : static_cast<const void*>(key.data());
  const auto* body_data =
      body.empty() ? &kNothing : reinterpret_cast<const unsigned char*>(body.data());
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_size = 0;
  if (HMAC(EVP_sha256(), key_data, static_cast<int>(key.size()), body_data, body.size(), out,
           &out_size) == nullptr ||
      out_size != kDigestSize)
    return false;
  memcpy(digest, out, kDigestSize);
  return true;
}

}  // namespace

bool signature_matches(std::string_view header, std::string_view key, std::string_view body) {
  if (!header.starts_with(kPrefix)) return false;
  const std::string_view hex = header.substr(kPrefix.size());
  if (hex.size() != 2 * kDigestSize) return false;
  unsigned char given[kDigestSize];
  for (size_t i = 0; i < kDigestSize; ++i) {
    const int high = hex_digit_value(hex[2 * i]);
    const int low = hex_digit_value(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    given[i] = static_cast<unsigned char>(high * 16 + low);
  }
  unsigned char expected[kDigestSize];
  return hmac_sha256(key, body, expected) && CRYPTO_memcmp(given, expected, kDigestSize) == 0;
}

bool token_matches(std::string_view given, std::string_view token) {
  unsigned char given_digest[kDigestSize];
  unsigned char token_digest[kDigestSize];
  return hmac_sha256(token, given, given_digest) && hmac_sha256(token, token, token_digest) &&
         CRYPTO_memcmp(given_digest, token_digest, kDigestSize) == 0;
}

std::string signature_header(std::string_view key, std::string_view body) {
  unsigned char digest[kDigestSize];
  if (!hmac_sha256(key, body, digest)) return std::string(kPrefix);
  static const char kHex[] = "0123456789abcdef";
  std::string header(kPrefix);
  for (unsigned char byte : digest) {
    header += kHex[byte >> 4];
    header += kHex[byte & 0xf];
  }
  return header;
}

}  // namespace deploy
