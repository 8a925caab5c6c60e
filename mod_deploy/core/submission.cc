#include "submission.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include <algorithm>
#include <set>

#include "job_table.h"
#include "names.h"
#include "route.h"
#include "text.h"

namespace deploy {

namespace {

// Bounds on one match, so that a pathological pattern (nested repeats) costs
// milliseconds, not a worker. A legitimate pattern on a value that fits in a
// job record stays far below them.
constexpr uint32_t kMatchLimit = 1'000'000;
constexpr uint32_t kDepthLimit = 10'000;
constexpr uint32_t kHeapLimitKib = 4096;

constexpr std::string_view kAcceptedTypes = "application/json or application/x-www-form-urlencoded";

RequestError bad_request(std::string message) {
  return RequestError{400, "bad_request", std::move(message)};
}

RequestError invalid_param(std::string message) {
  return RequestError{400, "invalid_param", std::move(message)};
}

bool has_nul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

struct JsonReference {
  explicit JsonReference(json_t* value) : value(value) {}
  ~JsonReference() { json_decref(value); }
  JsonReference(const JsonReference&) = delete;
  JsonReference& operator=(const JsonReference&) = delete;
  json_t* value;
};

std::variant<Params, RequestError> parse_json_body(std::string_view body) {
  json_error_t error;
  JsonReference root(json_loadb(body.data(), body.size(), JSON_REJECT_DUPLICATES, &error));
  if (root.value == nullptr) {
    return bad_request("the body is not valid JSON: " + std::string(error.text) + " (line " +
                       std::to_string(error.line) + ", column " + std::to_string(error.column) +
                       ")");
  }
  if (!json_is_object(root.value)) return bad_request("the body must be a JSON object");

  Params params;
  const char* key;
  size_t key_length;
  json_t* member;
  json_object_keylen_foreach(root.value, key, key_length, member) {
    const std::string_view name(key, key_length);
    if (name != "params") {
      return bad_request("unknown key '" + std::string(name) +
                         "' in the body: only \"params\" is accepted");
    }
    if (!json_is_object(member)) return bad_request("\"params\" must be an object of strings");
    const char* param_key;
    size_t param_key_length;
    json_t* param_value;
    json_object_keylen_foreach(member, param_key, param_key_length, param_value) {
      const std::string_view param_name(param_key, param_key_length);
      if (!json_is_string(param_value)) {
        return bad_request("parameter '" + std::string(param_name) + "' must be a string");
      }
      const std::string_view value(json_string_value(param_value), json_string_length(param_value));
      if (has_nul(param_name) || has_nul(value)) {
        return bad_request("a parameter name or value contains a NUL byte");
      }
      params.emplace_back(param_name, value);
    }
  }
  return params;
}

std::variant<Params, RequestError> parse_form_body(std::string_view body) {
  auto pairs = parse_query(body);
  if (!pairs) return bad_request("the form body has a malformed percent-encoding");
  std::set<std::string_view> seen;
  for (const auto& [name, value] : *pairs) {
    if (has_nul(name) || has_nul(value)) {
      return bad_request("a parameter name or value contains a NUL byte");
    }
    if (!seen.insert(name).second) {
      return bad_request("parameter '" + name + "' is given more than once");
    }
  }
  return std::move(*pairs);
}

}  // namespace

struct ParamPattern::Code {
  pcre2_code* code = nullptr;
  pcre2_match_context* context = nullptr;

  Code() = default;
  Code(const Code&) = delete;
  Code& operator=(const Code&) = delete;
  ~Code() {
    pcre2_match_context_free(context);
    pcre2_code_free(code);
  }
};

std::optional<ParamPattern> ParamPattern::compile(const std::string& pattern, std::string* error) {
  auto compiled = std::make_shared<Code>();
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 PCRE2_UTF, &error_code, &error_offset, nullptr);
  if (compiled->code == nullptr) {
    if (error != nullptr) {
      PCRE2_UCHAR text[256];
      pcre2_get_error_message(error_code, text, sizeof text);
      *error = std::string(reinterpret_cast<const char*>(text)) + " at offset " +
               std::to_string(error_offset);
    }
    return std::nullopt;
  }
  compiled->context = pcre2_match_context_create(nullptr);
  if (compiled->context == nullptr) {
    if (error != nullptr) *error = "out of memory";
    return std::nullopt;
  }
  pcre2_set_match_limit(compiled->context, kMatchLimit);
  pcre2_set_depth_limit(compiled->context, kDepthLimit);
  pcre2_set_heap_limit(compiled->context, kHeapLimitKib);

  ParamPattern result;
  result.code_ = std::move(compiled);
  result.source_ = pattern;
  return result;
}

bool ParamPattern::full_match(std::string_view value) const {
  if (!code_) return false;
  pcre2_match_data* match_data = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (match_data == nullptr) return false;
  // PCRE2 before 10.43 refuses a null subject even when it is empty.
  static constexpr char kEmpty[] = "";
  const char* subject = value.data() != nullptr ? value.data() : kEmpty;
  // Invalid UTF-8 in the value and hitting a limit are errors (< 0): no match.
  const int result = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(subject), value.size(),
                                 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED, match_data, code_->context);
  pcre2_match_data_free(match_data);
  return result >= 0;
}

std::variant<Params, RequestError> parse_submission_body(std::string_view content_type,
                                                         std::string_view body) {
  if (body.empty()) return Params{};
  // "application/json; charset=utf-8": only the media type counts.
  const std::string_view media_type =
      trim_whitespace(content_type.substr(0, content_type.find(';')));
  if (equals_ignoring_case(media_type, "application/json")) return parse_json_body(body);
  if (equals_ignoring_case(media_type, "application/x-www-form-urlencoded")) {
    return parse_form_body(body);
  }
  if (media_type.empty()) {
    return RequestError{415, "unsupported_media_type",
                        "a request body needs a content type: " + std::string(kAcceptedTypes)};
  }
  return RequestError{415, "unsupported_media_type",
                      "content type '" + std::string(media_type) + "' is not accepted: send " +
                          std::string(kAcceptedTypes)};
}

std::optional<RequestError> validate_params(const Params& params,
                                            const std::vector<ParamRule>& rules) {
  for (const auto& [name, value] : params) {
    if (!is_valid_param_name(name)) {
      return invalid_param("'" + name + "' is not a valid parameter name");
    }
    // An init-capture: clang before 16 cannot capture a structured binding.
    const auto rule =
        std::find_if(rules.begin(), rules.end(),
                     [&declared = name](const ParamRule& r) { return r.name == declared; });
    if (rule == rules.end()) {
      return invalid_param("parameter '" + name + "' is not declared for this target");
    }
    if (!rule->pattern.full_match(value)) {
      return invalid_param("parameter '" + name + "' does not match " + rule->pattern.source());
    }
  }
  const size_t size = stored_params_size(params);
  if (size > kParamsMax) {
    return RequestError{413, "too_large",
                        "the parameters take " + std::to_string(size) + " bytes; at most " +
                            std::to_string(kParamsMax) + " can be stored"};
  }
  return std::nullopt;
}

}  // namespace deploy
