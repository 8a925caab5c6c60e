// Directive values: parse_duration and parse_size. What they accept is never
// negative, and a bare number of seconds means exactly that many seconds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "duration.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = deploy::fuzz::as_text(data, size);

  if (const auto duration = deploy::parse_duration(text)) {
    FUZZ_CHECK(*duration >= 0);
    if (const auto seconds = deploy::parse_duration(std::string(text) + "s"))
      FUZZ_CHECK(*seconds == *duration);
  }
  if (const auto bytes = deploy::parse_size(text)) {
    if (const auto same = deploy::parse_size(std::to_string(*bytes))) FUZZ_CHECK(*same == *bytes);
  }
  return 0;
}
