// The cross-origin check: is_server_origin of ORIGIN against a server with
// SCHEME, the name NAME and the wildcard alias PATTERN (on ports 80, 443 and
// 8080). The answer does not depend on the case of the origin, scheme, name
// and pattern.
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
  const auto fields = deploy::fuzz::split_fields(deploy::fuzz::as_text(data, size), 4);
  const std::string_view origin = fields[0], scheme = fields[1], name = fields[2],
                         pattern = fields[3];
  const deploy::ServerOrigin server{
      std::string(scheme), {std::string(name)}, {std::string(pattern)}, {80, 443, 8080}};
  const deploy::ServerOrigin lowered{
      lower(scheme), {lower(name)}, {lower(pattern)}, {80, 443, 8080}};
  FUZZ_CHECK(deploy::is_server_origin(origin, server) ==
             deploy::is_server_origin(lower(origin), lowered));
  return 0;
}
