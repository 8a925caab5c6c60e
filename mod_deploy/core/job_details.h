// The stages and outputs of a job (SPEC "Watching a deployment"): how its
// runner keeps them from the job's output, and the one text form both
// engines store them in (the file engine's sidecar file, PostgreSQL's
// columns), read back as untrusted.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "job.h"

namespace deploy {

constexpr size_t kStagesMax = 32;
constexpr size_t kOutputsMax = 16;
constexpr size_t kOutputValueMax = 512;  // bytes, after repair (progress.h)
// The largest encoded details (encode_details) of valid stages and outputs,
// rounded up: what a reader reads at most.
constexpr size_t kDetailsMax = 32 * 1024;

// The stage list after the job set `name` at wall time `now`: the open
// stage ends and a new one begins; past kStagesMax entries the last one is
// replaced by it. False (nothing changed) when `name` is the open stage's.
bool enter_stage(std::vector<Stage>* stages, std::string_view name, Micros now);

enum class OutputChange { set, unchanged, full };
// Sets output `name` (a later value wins, in the place of its first);
// `full`, nothing set, for a new name past kOutputsMax.
OutputChange set_output(Outputs* outputs, std::string_view name, std::string_view value);

// The text forms: "LEN:TEXT" fields, a stage as name, started_at and
// finished_at (decimal), an output as name and value. The decoders accept
// only what the runner could have written (bounds, names, UTF-8, no control
// characters, no repeated output) and leave *out empty otherwise.
std::string encode_stages(const std::vector<Stage>& stages);
bool decode_stages(std::string_view text, std::vector<Stage>* out);
std::string encode_outputs(const Outputs& outputs);
bool decode_outputs(std::string_view text, Outputs* out);
// Both, for one file: a version line, then the two encodings as fields.
std::string encode_details(const std::vector<Stage>& stages, const Outputs& outputs);
bool decode_details(std::string_view text, std::vector<Stage>* stages, Outputs* outputs);

}  // namespace deploy
