// Durations and sizes as httpd directives spell them.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "job.h"

namespace deploy {

// httpd's convention (ap_timeout_parameter_parse): a bare number is seconds;
// the suffixes "ms", "s", "mi" (minutes) and "h" are accepted. Negative,
// overflowing or malformed text gives nullopt.
std::optional<Micros> parse_duration(std::string_view text);

// A byte count with an optional k, m or g suffix (powers of 1024), as "64k".
std::optional<uint64_t> parse_size(std::string_view text);

}  // namespace deploy
