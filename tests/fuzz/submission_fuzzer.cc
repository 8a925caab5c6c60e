// Request bodies: parse_submission_body under the content type the first
// byte picks, then validate_params against fixed rules. An error is a 400 or
// a 415; parameters hold no NUL, and those that fit survive the job record
// (store_params, load_params) unchanged.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz_support.h"
#include "job_table.h"
#include "submission.h"

namespace {

using deploy::fuzz::as_text;

constexpr std::string_view kContentTypes[] = {
    "application/json",
    "application/x-www-form-urlencoded",
    "Application/JSON; charset=utf-8",
    " application/x-www-form-urlencoded ; charset=UTF-8",
    "",
    "text/plain",
    "application/json;",
    "multipart/form-data; boundary=x",
};

std::vector<deploy::ParamRule> compile_rules() {
  // Patterns a target might declare, one with nested repeats: the match
  // limits must keep it cheap.
  const std::pair<const char*, const char*> declared[] = {
      {"BRANCH", "[A-Za-z0-9._/-]{1,100}"},
      {"VERSION", "v?[0-9]+(\\.[0-9]+){0,3}"},
      {"ENVIRONMENT", "staging|production"},
      {"MESSAGE", "(?s).*"},
      {"NAME", "\\p{L}[\\p{L} ]*"},
      {"TAGS", "([a-z]+,?)+"},
  };
  std::vector<deploy::ParamRule> rules;
  for (const auto& [name, pattern] : declared) {
    std::string error;
    auto compiled = deploy::ParamPattern::compile(pattern, &error);
    FUZZ_CHECK(compiled.has_value());
    rules.push_back(deploy::ParamRule{name, std::move(*compiled)});
  }
  return rules;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<deploy::ParamRule> rules = compile_rules();
  if (size == 0) return 0;
  const std::string_view content_type = kContentTypes[data[0] % std::size(kContentTypes)];
  const std::string_view body = as_text(data + 1, size - 1);

  auto parsed = deploy::parse_submission_body(content_type, body);
  if (const auto* error = std::get_if<deploy::RequestError>(&parsed)) {
    FUZZ_CHECK(error->status == 400 || error->status == 415);
    FUZZ_CHECK(!error->code.empty() && !error->message.empty());
    return 0;
  }
  const deploy::Params& params = std::get<deploy::Params>(parsed);
  for (const auto& [name, value] : params) {
    FUZZ_CHECK(name.find('\0') == std::string::npos && value.find('\0') == std::string::npos);
  }

  const auto invalid = deploy::validate_params(params, rules);
  if (!invalid) FUZZ_CHECK(deploy::stored_params_size(params) <= deploy::kParamsMax);
  if (invalid) FUZZ_CHECK(invalid->status == 400 || invalid->status == 413);

  if (deploy::stored_params_size(params) <= deploy::kParamsMax) {
    deploy::JobRecord record{};
    FUZZ_CHECK(deploy::store_params(record, params));
    FUZZ_CHECK(deploy::load_params(record) == params);
  }
  return 0;
}
