// X-Hub-Signature-256: signature_matches on HEADER\nKEY\nBODY. The header a
// client computes with signature_header always matches, and stops matching
// when the body changes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "signature.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto fields = deploy::fuzz::split_fields(deploy::fuzz::as_text(data, size), 3);
  const std::string_view header = fields[0], key = fields[1], body = fields[2];

  (void)deploy::signature_matches(header, key, body);

  const std::string computed = deploy::signature_header(key, body);
  FUZZ_CHECK(computed.size() == 7 + 64);
  FUZZ_CHECK(deploy::signature_matches(computed, key, body));
  FUZZ_CHECK(!deploy::signature_matches(computed, key, std::string(body) + "x"));
  return 0;
}
