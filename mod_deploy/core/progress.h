// Progress lines of a job's output: "::progress N [STAGE]", "::stage TEXT"
// and "::output NAME VALUE".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace deploy {

struct ProgressUpdate {
  std::optional<int> progress;  // 0..100
  std::optional<std::string>
      stage;  // valid UTF-8, control characters removed, at most kStageMax bytes
};

// `line` is one line of output without its newline (a trailing '\r' is
// ignored). nullopt when it is not a well-formed progress or stage line.
std::optional<ProgressUpdate> parse_progress_line(std::string_view line);

// "::output NAME VALUE": NAME of the parameter-name grammar (names.h),
// VALUE the rest of the line after one space (none: ""), repaired as a
// stage is (valid UTF-8, control characters removed, not trimmed) and cut
// to kOutputValueMax bytes at a character boundary.
struct OutputLine {
  std::string name;
  std::string value;
};
std::optional<OutputLine> parse_output_line(std::string_view line);

// `raw` as valid UTF-8 without control characters, at most `max` bytes cut
// at a character boundary; surrounding whitespace trimmed when `trim`.
std::string clean_text(std::string_view raw, size_t max, bool trim);

}  // namespace deploy
