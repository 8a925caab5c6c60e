// The job's JSON: job_json of a Job built from arbitrary bytes (target,
// params, stage and user with invalid UTF-8 or NUL bytes, any times and
// numbers) is always valid JSON, an object whose texts are the job's texts
// with invalid UTF-8 replaced.
#include <fuzzer/FuzzedDataProvider.h>
#include <jansson.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "job.h"
#include "job_json.h"
#include "text.h"

namespace {

constexpr size_t kMaxParams = 8;

std::optional<std::string> optional_text(FuzzedDataProvider& input) {
  if (!input.ConsumeBool()) return std::nullopt;
  return input.ConsumeRandomLengthString(300);
}

template <typename T>
std::optional<T> optional_number(FuzzedDataProvider& input) {
  if (!input.ConsumeBool()) return std::nullopt;
  return input.ConsumeIntegral<T>();
}

deploy::Job job_from(FuzzedDataProvider& input) {
  deploy::Job job;
  job.id = input.ConsumeIntegral<uint64_t>();
  job.state = static_cast<deploy::JobState>(input.ConsumeIntegral<uint8_t>());
  job.progress = input.ConsumeIntegral<int>();
  job.requests = input.ConsumeIntegral<uint32_t>();
  job.not_before = input.ConsumeIntegral<deploy::Micros>();
  job.submitted_at = input.ConsumeIntegral<deploy::Micros>();
  job.started_at = input.ConsumeIntegral<deploy::Micros>();
  job.finished_at = input.ConsumeIntegral<deploy::Micros>();
  job.change_seq = input.ConsumeIntegral<uint64_t>();
  job.exit_code = optional_number<int>(input);
  job.signal = optional_number<int>(input);
  job.target = input.ConsumeRandomLengthString(100);
  job.stage = optional_text(input);
  job.submitted_by = optional_text(input);
  const size_t param_count = input.ConsumeIntegralInRange<size_t>(0, kMaxParams);
  for (size_t i = 0; i < param_count; ++i) {
    // A name never holds NUL (submissions refuse it, the record separates
    // names with it), and jansson's parser refuses \u0000 in a key.
    std::string name = input.ConsumeRandomLengthString(80);
    std::erase(name, '\0');
    job.params.emplace_back(std::move(name), input.ConsumeRandomLengthString(300));
  }
  return job;
}

std::string_view string_member(json_t* object, const char* key) {
  json_t* value = json_object_get(object, key);
  FUZZ_CHECK(json_is_string(value));
  return std::string_view(json_string_value(value), json_string_length(value));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const bool coalesced = input.ConsumeBool();
  const std::string base = input.ConsumeRandomLengthString(40);
  const deploy::Job job = job_from(input);

  const std::string text = deploy::job_json(job, base, coalesced ? "coalesced" : "");
  json_error_t error;
  json_t* root = json_loadb(text.data(), text.size(), JSON_ALLOW_NUL, &error);
  if (root == nullptr) {
    std::fprintf(stderr, "invalid JSON (%s): %s\n", error.text, text.c_str());
    FUZZ_CHECK(root != nullptr);
  }
  FUZZ_CHECK(json_is_object(root));
  FUZZ_CHECK(string_member(root, "target") == deploy::valid_utf8(job.target));
  FUZZ_CHECK(string_member(root, "state") == deploy::state_name(job.state));
  if (job.stage) FUZZ_CHECK(string_member(root, "stage") == deploy::valid_utf8(*job.stage));
  if (job.submitted_by)
    FUZZ_CHECK(string_member(root, "submitted_by") == deploy::valid_utf8(*job.submitted_by));
  json_t* params = json_object_get(root, "params");
  FUZZ_CHECK(json_is_object(params) && json_object_size(params) <= job.params.size());
  FUZZ_CHECK(json_is_true(json_object_get(root, "coalesced")) == coalesced);
  json_decref(root);

  // Repairing is idempotent: repaired text is valid as it is.
  const std::string repaired = deploy::valid_utf8(job.target);
  FUZZ_CHECK(deploy::valid_utf8(repaired) == repaired);
  return 0;
}
