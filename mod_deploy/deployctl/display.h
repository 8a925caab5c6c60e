// Text for a person's terminal: what came from the server made harmless,
// durations and times written the short way.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "clock.h"
#include "duration.h"

namespace deploy::ctl {

// The clocks are core's (clock.h): wall_now() for what is shown, mono_now()
// for every duration the client waits.
using deploy::mono_now;
using deploy::wall_now;

// `text` with every control character (escape sequences, \r, \n...)
// replaced by '?', so that a stage or message from the server cannot move
// the cursor or restyle the terminal.
std::string printable(std::string_view text);

// "0s", "12s", "1m 02s", "2h 05m 09s": the dashboard's format (core/duration.h).
using deploy::format_duration;

// "2026-11-21T10:00:01Z" (whole seconds, UTC).
std::string format_timestamp(Micros t);

// "2026-11-21T10:00:00.123Z" (RFC 3339 UTC, as the server writes) as
// Micros; -1 when `text` is not such a time.
Micros parse_timestamp(std::string_view text);

// The first `columns` characters of UTF-8 `text` (a character is one
// column here; wide characters may overshoot, which only costs a wrap).
std::string first_columns(std::string_view text, size_t columns);

// Number of characters of UTF-8 `text`.
size_t column_count(std::string_view text);

}  // namespace deploy::ctl
