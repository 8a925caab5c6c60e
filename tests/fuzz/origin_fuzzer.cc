// The cross-origin check: is_same_origin on ORIGIN\nSCHEME\nHOST. The answer
// does not depend on the case of the scheme and host.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "origin.h"
#include "text.h"

namespace {

std::string lower(std::string_view text) {
  std::string out;
  for (char c : text) out += deploy::lower_ascii(c);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto fields = deploy::fuzz::split_fields(deploy::fuzz::as_text(data, size), 3);
  const std::string_view origin = fields[0], scheme = fields[1], host = fields[2];

  const bool same = deploy::is_same_origin(origin, scheme, host);
  FUZZ_CHECK(same == deploy::is_same_origin(lower(origin), lower(scheme), lower(host)));
  return 0;
}
