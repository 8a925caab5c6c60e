// Durations and sizes as httpd directives spell them, and durations as the
// dashboard and deployctl show them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "job.h"

namespace deploy {

// httpd's convention (ap_timeout_parameter_parse): a bare number is seconds;
// the suffixes "ms", "s", "mi" (minutes) and "h" are accepted. Negative,
// overflowing or malformed text gives nullopt.
std::optional<Micros> parse_duration(std::string_view text);

// A byte count with an optional k, m or g suffix (powers of 1024), as "64k".
std::optional<uint64_t> parse_size(std::string_view text);

// The shortest way a directive writes `duration` (>= 0), for messages about
// ranges: "0", "500ms", "15s", "5mi", "1h"; parse_duration reads it back.
std::string written_duration(Micros duration);

// The same for a byte count: "1", "64k", "64m", "1g".
std::string written_size(uint64_t size);

// A duration for people, in whole seconds (rounded down): "0s", "42s",
// "4m 05s", "1h 02m 09s"; negative durations count as 0. The dashboard's
// script (formatDuration in httpd/dashboard/dashboard_view.js) gives the same
// text; tests/unit/duration_cases.json is the table both are tested with.
std::string format_duration(Micros duration);

}  // namespace deploy
