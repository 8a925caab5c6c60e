// Request bodies: parse_submission_body under the content type the first
// byte picks, then validate_params against fixed rules. An error is a 400 or
// a 415; parameters hold no NUL, and those that fit survive the job record
// (store_params, load_params) unchanged.
//
// With the first byte's high bit set, a webhook delivery instead: the rest
// is "QUERY\nX-GitHub-Event\nBODY", read by read_submission with
// DeployParamFrom (json:, header:, query:) and DeployFilter rules. An error
// is a 400 or a 415; what is accepted passes validate_params, names each
// parameter once and fits in a job record; an ignored one says why.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
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
      {"BRANCH", "[A-Za-z0-9._/-]{1,100}"},  {"VERSION", "v?[0-9]+(\\.[0-9]+){0,3}"},
      {"ENVIRONMENT", "staging|production"}, {"MESSAGE", "(?s).*"},
      {"NAME", "\\p{L}[\\p{L} ]*"},          {"TAGS", "([a-z]+,?)+"},
  };
  std::vector<deploy::ParamRule> rules;
  for (const auto& [name, pattern] : declared) {
    deploy::ParamPattern compiled;
    FUZZ_CHECK(deploy::ParamPattern::compile(pattern, &compiled).is_ok());
    rules.push_back(deploy::ParamRule{name, std::move(compiled)});
  }
  return rules;
}

deploy::ValueSource source(const char* text) {
  deploy::ValueSource parsed;
  FUZZ_CHECK(deploy::parse_value_source(text, &parsed).is_ok());
  return parsed;
}

deploy::SubmissionRules webhook_rules() {
  deploy::SubmissionRules rules;
  rules.params = compile_rules();
  rules.param_from = {{"BRANCH", source("json:/ref")},
                      {"VERSION", source("json:/after")},
                      {"NAME", source("json:/repository/owner/name")},
                      {"MESSAGE", source("json:/commits/0/message")},
                      {"ENVIRONMENT", source("query:env")},
                      {"TAGS", source("header:X-GitHub-Event")}};
  deploy::ParamPattern main_branch, push;
  FUZZ_CHECK(deploy::ParamPattern::compile("refs/heads/main", &main_branch).is_ok() &&
             deploy::ParamPattern::compile("push|tag_push", &push).is_ok());
  rules.filters = {{source("json:/ref"), main_branch}, {source("header:X-GitHub-Event"), push}};
  return rules;
}

int fuzz_webhook(std::string_view content_type, std::string_view input) {
  static const deploy::SubmissionRules rules = webhook_rules();
  const std::vector<std::string_view> fields = deploy::fuzz::split_fields(input, 3);
  deploy::SubmissionRequest request;
  request.content_type = content_type;
  request.query = fields[0];
  request.body = fields[2];
  const std::string event(fields[1]);
  request.header = [&event](std::string_view name) -> std::optional<std::string> {
    if (name != "X-GitHub-Event" || event.empty()) return std::nullopt;
    return event;
  };
  auto read = deploy::read_submission(request, rules);
  if (const auto* error = std::get_if<deploy::RequestError>(&read)) {
    FUZZ_CHECK(error->status == 400 || error->status == 413 || error->status == 415);
    FUZZ_CHECK(!error->code.empty() && !error->message.empty());
    return 0;
  }
  const deploy::Submission& submission = std::get<deploy::Submission>(read);
  FUZZ_CHECK(!submission.ignored || !submission.ignored->empty());
  FUZZ_CHECK(!deploy::validate_params(submission.params, rules.params));
  for (size_t i = 0; i < submission.params.size(); ++i)
    for (size_t j = i + 1; j < submission.params.size(); ++j)
      FUZZ_CHECK(submission.params[i].first != submission.params[j].first);
  deploy::JobRecord record{};
  FUZZ_CHECK(deploy::store_params(record, submission.params));
  FUZZ_CHECK(deploy::load_params(record) == submission.params);
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<deploy::ParamRule> rules = compile_rules();
  if (size == 0) return 0;
  const std::string_view content_type = kContentTypes[data[0] % std::size(kContentTypes)];
  const std::string_view body = as_text(data + 1, size - 1);
  if (data[0] & 0x80) return fuzz_webhook(content_type, body);

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
