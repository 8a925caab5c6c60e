// Progress lines of a job's output: "::progress N [STAGE]" and "::stage TEXT".
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

}  // namespace deploy
