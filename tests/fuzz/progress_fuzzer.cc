// Job output: parse_progress_line on every line of the input (the runner's
// line splitter is private to runner.cc) and on the whole input as one line.
// A parsed update holds a progress within 0..100 and a stage of valid UTF-8,
// without control characters, at most kStageMax bytes, not empty.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "job_table.h"
#include "progress.h"
#include "text.h"

namespace {

void check_line(std::string_view line) {
  const auto update = deploy::parse_progress_line(line);
  if (!update) return;
  FUZZ_CHECK(update->progress || update->stage);
  if (update->progress) FUZZ_CHECK(*update->progress >= 0 && *update->progress <= 100);
  if (update->stage) {
    const std::string& stage = *update->stage;
    FUZZ_CHECK(!stage.empty() && stage.size() <= deploy::kStageMax);
    FUZZ_CHECK(deploy::valid_utf8(stage) == stage);
    for (char c : stage) {
      const auto byte = static_cast<unsigned char>(c);
      FUZZ_CHECK(byte >= 0x20 && byte != 0x7f);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = deploy::fuzz::as_text(data, size);
  check_line(rest);
  while (!rest.empty()) {
    const size_t newline = rest.find('\n');
    check_line(rest.substr(0, newline));
    if (newline == std::string_view::npos) break;
    rest.remove_prefix(newline + 1);
  }
  return 0;
}
