// Submission bodies and their parameters: parsing, then checking against the
// target's declared parameters.
#include "submission.h"

#include <map>
#include <string>

#include "job_table.h"
#include "unit_test.h"

using deploy::ParamPattern;
using deploy::ParamRule;
using deploy::Params;
using deploy::RequestError;
using deploy::Submission;
using deploy::SubmissionRequest;
using deploy::SubmissionRules;
using deploy::ValueSource;

namespace {

constexpr const char* kJson = "application/json";
constexpr const char* kForm = "application/x-www-form-urlencoded";
constexpr const char* kVersionPattern = "^[0-9][0-9A-Za-z.+-]{0,63}$";

ParamPattern pattern(const std::string& source) {
  ParamPattern compiled;
  const deploy::Status st = ParamPattern::compile(source, &compiled);
  ck_assert_msg(st.is_ok(), "'%s' should compile: %s", source.c_str(), st.message().c_str());
  return compiled;
}

std::vector<ParamRule> webapp_rules() {
  return {{"version", pattern(kVersionPattern)}, {"env", pattern("prod|staging")}};
}

Params params_of(const std::string& content_type, const std::string& body) {
  auto result = deploy::parse_submission_body(content_type, body);
  if (const auto* error = std::get_if<RequestError>(&result)) {
    ck_abort_msg("'%s' should parse, got %s: %s", body.c_str(), error->code.c_str(),
                 error->message.c_str());
  }
  return std::get<Params>(result);
}

RequestError refusal_of(const std::string& content_type, const std::string& body) {
  auto result = deploy::parse_submission_body(content_type, body);
  ck_assert_msg(std::holds_alternative<RequestError>(result), "'%s' should be refused",
                body.c_str());
  return std::get<RequestError>(result);
}

void assert_bad_request(const std::string& content_type, const std::string& body) {
  const RequestError error = refusal_of(content_type, body);
  ck_assert_msg(error.status == 400 && error.code == "bad_request",
                "'%s' should be 400 bad_request, got %d %s", body.c_str(), error.status,
                error.code.c_str());
}

void assert_params(const Params& actual, const Params& expected) {
  ck_assert_uint_eq(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_TEXT_EQ(actual[i].first, expected[i].first);
    ck_assert(actual[i].second == expected[i].second);
  }
}

RequestError invalid_param_of(const Params& params, const std::vector<ParamRule>& rules) {
  const auto error = deploy::validate_params(params, rules);
  ck_assert(error.has_value());
  ck_assert_int_eq(error->status, 400);
  ASSERT_TEXT_EQ(error->code, "invalid_param");
  return *error;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// --- patterns

START_TEST(pattern_must_match_the_whole_value) {
  const ParamPattern digits = pattern("[0-9]+");
  ck_assert(digits.full_match("123"));
  ck_assert(!digits.full_match("123a"));
  ck_assert(!digits.full_match("a123"));
  ck_assert(!digits.full_match(""));
  const ParamPattern alternatives = pattern("prod|staging");
  ck_assert(alternatives.full_match("staging"));
  ck_assert(!alternatives.full_match("prodx"));
  ck_assert(!alternatives.full_match("xstaging"));
}
END_TEST

START_TEST(dollar_does_not_let_a_trailing_newline_through) {
  const ParamPattern version = pattern(kVersionPattern);
  ck_assert(version.full_match("1.2.3"));
  ck_assert(!version.full_match("1.2.3\n"));
  ck_assert(!version.full_match("1.2.3\nrm -rf /"));
}
END_TEST

START_TEST(pattern_keeps_its_source) {
  ASSERT_TEXT_EQ(pattern(kVersionPattern).source(), kVersionPattern);
}
END_TEST

START_TEST(pattern_matches_utf8_characters_and_refuses_invalid_utf8) {
  const ParamPattern one_char = pattern("^.$");
  ck_assert(one_char.full_match("\xE2\x82\xAC"));
  ck_assert(!one_char.full_match("\xFF"));
  const ParamPattern anything = pattern(".*");
  ck_assert(anything.full_match(""));
  ck_assert(!anything.full_match("ok \xC3"));
}
END_TEST

START_TEST(bad_pattern_does_not_compile_and_says_why) {
  ParamPattern compiled;
  const deploy::Status unbalanced = ParamPattern::compile("([0-9]", &compiled);
  ck_assert(!unbalanced.is_ok());
  ck_assert(!unbalanced.message().empty());
  ck_assert(!ParamPattern::compile("\xFF", &compiled).is_ok());
  ck_assert(!ParamPattern::compile("(", &compiled).is_ok());
  ck_assert(ParamPattern::compile("a", &compiled).is_ok());
  ck_assert(compiled.full_match("a"));
}
END_TEST

START_TEST(runaway_backtracking_gives_up_as_no_match) {
  // Exponential backtracking ends in a match-limit error (ours is tighter
  // than PCRE2's default), which must count as no match. The 'b' in the
  // subject keeps PCRE2 from giving up early for a missing required character.
  const ParamPattern nested = pattern("(a+)+b");
  ck_assert(!nested.full_match(std::string(64, 'a') + "cb"));
  ck_assert(nested.full_match("aaab"));
}
END_TEST

START_TEST(default_pattern_matches_nothing) {
  const ParamPattern unset;
  ck_assert(!unset.full_match(""));
  ck_assert(!unset.full_match("x"));
}
END_TEST

// --- bodies

START_TEST(empty_body_means_no_params_whatever_the_type) {
  for (const char* type : {"", kJson, kForm, "text/plain"}) {
    ck_assert_uint_eq(params_of(type, "").size(), 0);
  }
}
END_TEST

START_TEST(json_body_gives_params_in_order) {
  assert_params(params_of(kJson, R"({"params": {"version": "1.2.3", "env": "prod"}})"),
                {{"version", "1.2.3"}, {"env", "prod"}});
  assert_params(params_of(kJson, R"({"params": {}})"), {});
  assert_params(params_of(kJson, "{}"), {});
  assert_params(params_of(kJson, R"({"params": {"note": "caf\u00e9"}})"),
                {{"note", "caf\xC3\xA9"}});
}
END_TEST

START_TEST(content_type_ignores_case_and_parameters) {
  const std::string body = R"({"params": {"env": "prod"}})";
  assert_params(params_of("Application/JSON; charset=utf-8", body), {{"env", "prod"}});
  assert_params(params_of(" application/json ;charset=UTF-8", body), {{"env", "prod"}});
  assert_params(params_of("APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8", "env=prod"),
                {{"env", "prod"}});
}
END_TEST

START_TEST(json_body_that_is_not_json_is_bad_request) {
  assert_bad_request(kJson, "{");
  assert_bad_request(kJson, "params=1");
  assert_bad_request(kJson, R"({"params": {"a": "1"}} trailing)");
  assert_bad_request(kJson, "{\"params\": {\"a\": \"\xFF\"}}");
}
END_TEST

START_TEST(json_body_that_is_not_an_object_is_bad_request) {
  assert_bad_request(kJson, "[]");
  assert_bad_request(kJson, R"(["params"])");
  assert_bad_request(kJson, "\"params\"");
  assert_bad_request(kJson, "42");
  assert_bad_request(kJson, "null");
}
END_TEST

START_TEST(json_keys_other_than_params_are_bad_request) {
  const RequestError error = refusal_of(kJson, R"({"params": {}, "target": "x"})");
  ASSERT_TEXT_EQ(error.code, "bad_request");
  ck_assert(contains(error.message, "target"));
  assert_bad_request(kJson, R"({"version": "1.2.3"})");
}
END_TEST

START_TEST(json_params_not_an_object_of_strings_is_bad_request) {
  assert_bad_request(kJson, R"({"params": null})");
  assert_bad_request(kJson, R"({"params": ["a"]})");
  assert_bad_request(kJson, R"({"params": "version=1"})");
  assert_bad_request(kJson, R"({"params": {"version": 1}})");
  assert_bad_request(kJson, R"({"params": {"version": null}})");
  assert_bad_request(kJson, R"({"params": {"version": true}})");
  assert_bad_request(kJson, R"({"params": {"version": ["1"]}})");
  assert_bad_request(kJson, R"({"params": {"version": {"v": "1"}}})");
}
END_TEST

START_TEST(json_duplicate_keys_are_bad_request) {
  assert_bad_request(kJson, R"({"params": {"env": "prod", "env": "staging"}})");
  assert_bad_request(kJson, R"({"params": {}, "params": {}})");
}
END_TEST

START_TEST(json_nul_byte_in_name_or_value_is_bad_request) {
  assert_bad_request(kJson, R"({"params": {"env": "prod\u0000x"}})");
  assert_bad_request(kJson, R"({"params": {"e\u0000nv": "prod"}})");
}
END_TEST

START_TEST(form_body_is_decoded) {
  assert_params(params_of(kForm, "version=1.2.3&env=prod"),
                {{"version", "1.2.3"}, {"env", "prod"}});
  assert_params(params_of(kForm, "note=a+b%2Bc%20d"), {{"note", "a b+c d"}});
}
END_TEST

START_TEST(form_empty_pairs_are_tolerated_and_bare_name_has_empty_value) {
  assert_params(params_of(kForm, "a=1&&b=2&"), {{"a", "1"}, {"b", "2"}});
  assert_params(params_of(kForm, "flag&b="), {{"flag", ""}, {"b", ""}});
}
END_TEST

START_TEST(form_malformed_escape_is_bad_request) {
  assert_bad_request(kForm, "a=%");
  assert_bad_request(kForm, "a=%2");
  assert_bad_request(kForm, "a=%G0");
  assert_bad_request(kForm, "%=1");
}
END_TEST

START_TEST(form_duplicate_name_is_bad_request) {
  const RequestError error = refusal_of(kForm, "env=prod&version=1&env=staging");
  ASSERT_TEXT_EQ(error.code, "bad_request");
  ck_assert(contains(error.message, "env"));
  assert_bad_request(kForm, "env=prod&%65nv=staging");
}
END_TEST

START_TEST(form_nul_byte_is_bad_request) {
  assert_bad_request(kForm, "env=pr%00od");
  assert_bad_request(kForm, "e%00nv=prod");
}
END_TEST

START_TEST(body_without_or_with_other_content_type_is_unsupported) {
  for (const char* type : {"", "text/plain", "application/xml", "multipart/form-data; boundary=x",
                           "application/json-patch+json", "application/jsonx"}) {
    const RequestError error = refusal_of(type, "version=1");
    ck_assert_int_eq(error.status, 415);
    ASSERT_TEXT_EQ(error.code, "unsupported_media_type");
  }
}
END_TEST

// --- validation

START_TEST(declared_params_that_match_are_accepted) {
  ck_assert(!deploy::validate_params({}, webapp_rules()).has_value());
  ck_assert(!deploy::validate_params({{"version", "1.2.3"}, {"env", "prod"}}, webapp_rules())
                 .has_value());
}
END_TEST

START_TEST(undeclared_param_is_invalid_and_named) {
  const RequestError error = invalid_param_of({{"version", "1.2.3"}, {"x", "1"}}, webapp_rules());
  ASSERT_TEXT_EQ(error.message, "parameter 'x' is not declared for this target");
  invalid_param_of({{"version", "1"}}, {});
}
END_TEST

START_TEST(param_failing_its_pattern_is_invalid_and_named) {
  const RequestError error = invalid_param_of({{"version", "v1; reboot"}}, webapp_rules());
  ck_assert(contains(error.message, "parameter 'version' does not match"));
  ck_assert(contains(error.message, kVersionPattern));
  invalid_param_of({{"env", "production"}}, webapp_rules());
  invalid_param_of({{"version", ""}}, webapp_rules());
}
END_TEST

START_TEST(invalid_param_name_is_invalid_param) {
  for (const char* name : {"", "1x", "my-param", "a b"}) {
    const RequestError error = invalid_param_of({{name, "1"}}, webapp_rules());
    ck_assert(contains(error.message, std::string("'") + name + "'"));
  }
}
END_TEST

START_TEST(first_offending_param_is_the_one_named) {
  const RequestError error =
      invalid_param_of({{"env", "dev"}, {"undeclared", "1"}}, webapp_rules());
  ck_assert(contains(error.message, "'env'"));
}
END_TEST

START_TEST(params_too_large_to_store_are_too_large) {
  const std::vector<ParamRule> rules = {{"blob", pattern("[a]*")}};
  // name + NUL + value + NUL must fit in kParamsMax.
  const size_t largest_value = deploy::kParamsMax - std::string("blob").size() - 2;
  ck_assert(!deploy::validate_params({{"blob", std::string(largest_value, 'a')}}, rules));
  const auto error =
      deploy::validate_params({{"blob", std::string(largest_value + 1, 'a')}}, rules);
  ck_assert(error.has_value());
  ck_assert_int_eq(error->status, 413);
  ASSERT_TEXT_EQ(error->code, "too_large");
}
END_TEST

START_TEST(pattern_failure_is_reported_before_size) {
  const std::vector<ParamRule> rules = {{"blob", pattern("[a]*")}};
  invalid_param_of({{"blob", std::string(deploy::kParamsMax, 'b')}}, rules);
}
END_TEST

// --- webhooks: DeployParamFrom, DeployFilter, query strings ---

// A GitHub push delivery's payload, shortened.
constexpr const char* kGitHubPush = R"({
  "ref": "refs/heads/main",
  "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
  "after": "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5",
  "created": false, "forced": false,
  "repository": {"id": 186853002, "name": "webapp", "full_name": "acme/webapp",
                 "private": true, "size": 42, "topics": []},
  "pusher": {"name": "alice", "email": null},
  "commits": [{"id": "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5", "distinct": true}]
})";

ValueSource source(const std::string& text) {
  ValueSource parsed;
  const deploy::Status st = deploy::parse_value_source(text, &parsed);
  ck_assert_msg(st.is_ok(), "'%s' should parse: %s", text.c_str(), st.message().c_str());
  return parsed;
}

SubmissionRules webhook_rules() {
  SubmissionRules rules;
  rules.params = {{"commit", pattern("[0-9a-f]{40}")}, {"repo", pattern("[A-Za-z0-9_.-]+")},
                  {"size", pattern("[0-9]+")},         {"private", pattern("true|false")},
                  {"event", pattern("[a-z_]+")},       {"env", pattern("prod|staging")}};
  rules.param_from = {{"commit", source("json:/after")},
                      {"repo", source("json:/repository/name")},
                      {"event", source("header:X-GitHub-Event")}};
  return rules;
}

struct Delivery {
  std::string content_type = "application/json";
  std::string body;
  std::string query;
  std::map<std::string, std::string> headers;
};

std::variant<Submission, RequestError> read(const Delivery& delivery,
                                            const SubmissionRules& rules) {
  SubmissionRequest request;
  request.content_type = delivery.content_type;
  request.body = delivery.body;
  request.query = delivery.query;
  request.header = [&delivery](std::string_view name) -> std::optional<std::string> {
    auto it = delivery.headers.find(std::string(name));
    if (it == delivery.headers.end()) return std::nullopt;
    return it->second;
  };
  return deploy::read_submission(request, rules);
}

Submission accepted(const Delivery& delivery, const SubmissionRules& rules) {
  auto result = read(delivery, rules);
  if (const auto* error = std::get_if<RequestError>(&result)) {
    ck_abort_msg("'%s' should be accepted, got %s: %s", delivery.body.c_str(), error->code.c_str(),
                 error->message.c_str());
  }
  return std::get<Submission>(result);
}

void assert_refused(const Delivery& delivery, const SubmissionRules& rules,
                    const std::string& code) {
  auto result = read(delivery, rules);
  ck_assert_msg(std::holds_alternative<RequestError>(result), "'%s' should be refused",
                delivery.body.c_str());
  const RequestError& error = std::get<RequestError>(result);
  ck_assert_msg(error.status == 400 && error.code == code, "'%s': expected 400 %s, got %d %s: %s",
                delivery.body.c_str(), code.c_str(), error.status, error.code.c_str(),
                error.message.c_str());
}

START_TEST(value_sources_are_parsed_and_bad_ones_refused) {
  ValueSource json = source("json:/repository/full~1name");
  ck_assert(json.kind == ValueSource::Kind::json);
  ck_assert_uint_eq(json.pointer.tokens.size(), 2);
  ASSERT_TEXT_EQ(json.pointer.tokens[1], "full/name");
  ValueSource header = source("header:X-GitHub-Event");
  ck_assert(header.kind == ValueSource::Kind::header);
  ASSERT_TEXT_EQ(header.name, "X-GitHub-Event");
  ValueSource query = source("query:token");
  ck_assert(query.kind == ValueSource::Kind::query);
  ASSERT_TEXT_EQ(query.name, "token");
  for (const char* bad : {"json:", "json:after", "json:/a~2", "header:", "header:X Event",
                          "header:X:Y", "query:", "body:/after", "/after", ""}) {
    ValueSource parsed;
    const deploy::Status st = deploy::parse_value_source(bad, &parsed);
    ck_assert_msg(!st.is_ok(), "'%s' should be refused", bad);
    ck_assert_msg(!st.message().empty(), "'%s' is refused without a reason", bad);
  }
}
END_TEST

START_TEST(json_source_reads_a_github_push_payload) {
  Delivery push;
  push.body = kGitHubPush;
  push.headers["X-GitHub-Event"] = "push";
  Submission submission = accepted(push, webhook_rules());
  ck_assert(!submission.ignored);
  assert_params(submission.params, {{"commit", "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"},
                                    {"repo", "webapp"},
                                    {"event", "push"}});
}
END_TEST

START_TEST(without_a_json_source_a_payload_is_still_refused) {
  SubmissionRules rules = webhook_rules();
  rules.param_from = {{"event", source("header:X-GitHub-Event")}};
  Delivery push;
  push.body = kGitHubPush;
  assert_refused(push, rules, "bad_request");
}
END_TEST

START_TEST(numbers_and_booleans_at_a_pointer_become_text) {
  SubmissionRules rules = webhook_rules();
  rules.param_from = {{"size", source("json:/repository/size")},
                      {"private", source("json:/repository/private")}};
  Delivery push;
  push.body = kGitHubPush;
  assert_params(accepted(push, rules).params, {{"size", "42"}, {"private", "true"}});
}
END_TEST

START_TEST(nothing_or_null_at_a_pointer_leaves_the_parameter_out) {
  SubmissionRules rules = webhook_rules();
  rules.params.push_back({"email", pattern(".+")});
  rules.param_from = {{"commit", source("json:/head_commit/id")},
                      {"email", source("json:/pusher/email")},
                      {"repo", source("json:/commits/1/id")}};
  Delivery push;
  push.body = kGitHubPush;
  ck_assert_uint_eq(accepted(push, rules).params.size(), 0);
}
END_TEST

START_TEST(an_object_or_array_at_a_pointer_is_invalid_param) {
  for (const char* pointer : {"json:/repository", "json:/commits", "json:/repository/topics"}) {
    SubmissionRules rules = webhook_rules();
    rules.param_from = {{"repo", source(pointer)}};
    Delivery push;
    push.body = kGitHubPush;
    assert_refused(push, rules, "invalid_param");
  }
}
END_TEST

START_TEST(a_value_from_a_source_must_match_its_pattern) {
  Delivery push;
  push.body = R"({"after": "not-a-commit; rm -rf /"})";
  assert_refused(push, webhook_rules(), "invalid_param");
}
END_TEST

START_TEST(payload_with_duplicate_keys_is_bad_request) {
  Delivery push;
  push.body = R"({"after": "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5", "after": "x"})";
  assert_refused(push, webhook_rules(), "bad_request");
}
END_TEST

START_TEST(payload_nested_deeper_than_64_is_bad_request) {
  auto nested = [](int depth) {
    std::string body = "{\"after\": \"59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5\", \"x\": ";
    // The top-level object is one level: depth - 1 arrays inside it.
    body += std::string(size_t(depth - 1), '[') + std::string(size_t(depth - 1), ']') + "}";
    return body;
  };
  Delivery push;
  push.body = nested(64);
  assert_params(accepted(push, webhook_rules()).params,
                {{"commit", "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"}});
  push.body = nested(65);
  assert_refused(push, webhook_rules(), "bad_request");
  // Far below jansson's own limit, far above ours.
  push.body = nested(2000);
  assert_refused(push, webhook_rules(), "bad_request");
}
END_TEST

START_TEST(payload_must_be_a_json_object) {
  Delivery push;
  for (const char* body : {"[]", "\"refs/heads/main\"", "42", "{\"after\": "}) {
    push.body = body;
    assert_refused(push, webhook_rules(), "bad_request");
  }
}
END_TEST

START_TEST(params_form_still_works_with_json_sources) {
  Delivery manual;
  manual.body = R"({"params": {"env": "prod"}})";
  assert_params(accepted(manual, webhook_rules()).params, {{"env", "prod"}});
  manual.body = R"({"params": {"env": 1}})";
  assert_refused(manual, webhook_rules(), "bad_request");
}
END_TEST

START_TEST(a_parameter_given_twice_is_bad_request) {
  Delivery both;
  both.body = R"({"params": {"event": "push"}})";
  both.headers["X-GitHub-Event"] = "push";
  assert_refused(both, webhook_rules(), "bad_request");
  Delivery form;
  form.content_type = "application/x-www-form-urlencoded";
  form.body = "event=push";
  form.headers["X-GitHub-Event"] = "push";
  assert_refused(form, webhook_rules(), "bad_request");
}
END_TEST

START_TEST(header_sources_work_for_every_body) {
  Delivery form;
  form.content_type = "application/x-www-form-urlencoded";
  form.body = "env=staging";
  form.headers["X-GitHub-Event"] = "push";
  assert_params(accepted(form, webhook_rules()).params, {{"env", "staging"}, {"event", "push"}});
  Delivery empty;
  empty.content_type = "";
  empty.headers["X-GitHub-Event"] = "ping";
  assert_params(accepted(empty, webhook_rules()).params, {{"event", "ping"}});
}
END_TEST

START_TEST(query_string_without_a_query_source_is_bad_request) {
  Delivery delivery;
  delivery.body = kGitHubPush;
  delivery.query = "commit=59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5";
  assert_refused(delivery, webhook_rules(), "bad_request");
  // Also without any source at all.
  SubmissionRules plain;
  plain.params = webapp_rules();
  Delivery form;
  form.content_type = kForm;
  form.body = "env=prod";
  form.query = "env=staging";
  assert_refused(form, plain, "bad_request");
  form.query = "";
  assert_params(accepted(form, plain).params, {{"env", "prod"}});
}
END_TEST

START_TEST(query_source_takes_its_parameter_and_nothing_else) {
  SubmissionRules rules;
  rules.params = webapp_rules();
  rules.param_from = {{"env", source("query:environment")}};
  Delivery delivery;
  delivery.content_type = "";
  delivery.query = "environment=staging&unused=1";
  assert_params(accepted(delivery, rules).params, {{"env", "staging"}});
  delivery.query = "environment=st%zzaging";
  assert_refused(delivery, rules, "bad_request");
  delivery.query = "environment=prod&environment=staging";
  assert_refused(delivery, rules, "bad_request");
  delivery.query = "environment=pr%00od";
  assert_refused(delivery, rules, "bad_request");
  delivery.query = "environment=qa";
  assert_refused(delivery, rules, "invalid_param");
}
END_TEST

START_TEST(filters_ignore_what_does_not_match_fully) {
  SubmissionRules rules = webhook_rules();
  rules.filters = {{source("header:X-GitHub-Event"), pattern("^push$")},
                   {source("json:/ref"), pattern("^refs/heads/main$")}};
  Delivery push;
  push.body = kGitHubPush;
  push.headers["X-GitHub-Event"] = "push";
  ck_assert(!accepted(push, rules).ignored);

  Delivery ping;
  ping.body = R"({"zen": "Keep it logically awesome.", "hook_id": 1})";
  ping.headers["X-GitHub-Event"] = "ping";
  Submission ignored = accepted(ping, rules);
  ck_assert(ignored.ignored.has_value());
  ck_assert_msg(ignored.ignored->find("X-GitHub-Event") != std::string::npos, "%s",
                ignored.ignored->c_str());

  Delivery other_branch = push;
  std::string body = kGitHubPush;
  body.replace(body.find("refs/heads/main"), 15, "refs/heads/mainline");  // not a full match
  other_branch.body = body;
  ck_assert(accepted(other_branch, rules).ignored.has_value());

  Delivery no_event = push;
  no_event.headers.clear();
  ck_assert(accepted(no_event, rules).ignored.has_value());
}
END_TEST

START_TEST(filter_on_an_object_or_absent_value_ignores) {
  SubmissionRules rules = webhook_rules();
  rules.filters = {{source("json:/repository"), pattern(".*")}};
  Delivery push;
  push.body = kGitHubPush;
  ck_assert(accepted(push, rules).ignored.has_value());
  rules.filters = {{source("json:/pusher/email"), pattern(".*")}};
  ck_assert(accepted(push, rules).ignored.has_value());
}
END_TEST

START_TEST(bad_input_is_refused_before_filters_ignore) {
  SubmissionRules rules = webhook_rules();
  rules.filters = {{source("json:/ref"), pattern("^refs/heads/main$")}};
  Delivery bad;
  bad.body = R"({"ref": "refs/heads/dev", "after": "zzz"})";
  assert_refused(bad, rules, "invalid_param");
}
END_TEST

Suite* submission_suite() {
  Suite* suite = suite_create("submission");
  TCase* patterns = tcase_create("patterns");
  tcase_add_test(patterns, pattern_must_match_the_whole_value);
  tcase_add_test(patterns, dollar_does_not_let_a_trailing_newline_through);
  tcase_add_test(patterns, pattern_keeps_its_source);
  tcase_add_test(patterns, pattern_matches_utf8_characters_and_refuses_invalid_utf8);
  tcase_add_test(patterns, bad_pattern_does_not_compile_and_says_why);
  tcase_add_test(patterns, runaway_backtracking_gives_up_as_no_match);
  tcase_add_test(patterns, default_pattern_matches_nothing);
  suite_add_tcase(suite, patterns);

  TCase* bodies = tcase_create("bodies");
  tcase_add_test(bodies, empty_body_means_no_params_whatever_the_type);
  tcase_add_test(bodies, json_body_gives_params_in_order);
  tcase_add_test(bodies, content_type_ignores_case_and_parameters);
  tcase_add_test(bodies, json_body_that_is_not_json_is_bad_request);
  tcase_add_test(bodies, json_body_that_is_not_an_object_is_bad_request);
  tcase_add_test(bodies, json_keys_other_than_params_are_bad_request);
  tcase_add_test(bodies, json_params_not_an_object_of_strings_is_bad_request);
  tcase_add_test(bodies, json_duplicate_keys_are_bad_request);
  tcase_add_test(bodies, json_nul_byte_in_name_or_value_is_bad_request);
  tcase_add_test(bodies, form_body_is_decoded);
  tcase_add_test(bodies, form_empty_pairs_are_tolerated_and_bare_name_has_empty_value);
  tcase_add_test(bodies, form_malformed_escape_is_bad_request);
  tcase_add_test(bodies, form_duplicate_name_is_bad_request);
  tcase_add_test(bodies, form_nul_byte_is_bad_request);
  tcase_add_test(bodies, body_without_or_with_other_content_type_is_unsupported);
  suite_add_tcase(suite, bodies);

  TCase* validation = tcase_create("validation");
  tcase_add_test(validation, declared_params_that_match_are_accepted);
  tcase_add_test(validation, undeclared_param_is_invalid_and_named);
  tcase_add_test(validation, param_failing_its_pattern_is_invalid_and_named);
  tcase_add_test(validation, invalid_param_name_is_invalid_param);
  tcase_add_test(validation, first_offending_param_is_the_one_named);
  tcase_add_test(validation, params_too_large_to_store_are_too_large);
  tcase_add_test(validation, pattern_failure_is_reported_before_size);
  suite_add_tcase(suite, validation);

  TCase* webhooks = tcase_create("webhooks");
  tcase_add_test(webhooks, value_sources_are_parsed_and_bad_ones_refused);
  tcase_add_test(webhooks, json_source_reads_a_github_push_payload);
  tcase_add_test(webhooks, without_a_json_source_a_payload_is_still_refused);
  tcase_add_test(webhooks, numbers_and_booleans_at_a_pointer_become_text);
  tcase_add_test(webhooks, nothing_or_null_at_a_pointer_leaves_the_parameter_out);
  tcase_add_test(webhooks, an_object_or_array_at_a_pointer_is_invalid_param);
  tcase_add_test(webhooks, a_value_from_a_source_must_match_its_pattern);
  tcase_add_test(webhooks, payload_with_duplicate_keys_is_bad_request);
  tcase_add_test(webhooks, payload_nested_deeper_than_64_is_bad_request);
  tcase_add_test(webhooks, payload_must_be_a_json_object);
  tcase_add_test(webhooks, params_form_still_works_with_json_sources);
  tcase_add_test(webhooks, a_parameter_given_twice_is_bad_request);
  tcase_add_test(webhooks, header_sources_work_for_every_body);
  tcase_add_test(webhooks, query_string_without_a_query_source_is_bad_request);
  tcase_add_test(webhooks, query_source_takes_its_parameter_and_nothing_else);
  tcase_add_test(webhooks, filters_ignore_what_does_not_match_fully);
  tcase_add_test(webhooks, filter_on_an_object_or_absent_value_ignores);
  tcase_add_test(webhooks, bad_input_is_refused_before_filters_ignore);
  suite_add_tcase(suite, webhooks);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(submission_suite);
