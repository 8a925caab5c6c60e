#include "submission.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include <algorithm>
#include <set>

#include "job_record.h"
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

struct JsonReference {
  explicit JsonReference(json_t* value) : value(value) {}
  ~JsonReference() { json_decref(value); }
  JsonReference(const JsonReference&) = delete;
  JsonReference& operator=(const JsonReference&) = delete;
  json_t* value;
};

// Objects and arrays nested deeper than `allowed` below `value`. Recursion
// stops at the bound, so it is at most kJsonDepthMax + 1 calls deep.
bool nested_deeper_than(const json_t* value, int allowed) {
  if (!json_is_object(value) && !json_is_array(value)) return false;
  if (allowed == 0) return true;
  if (json_is_array(value)) {
    for (size_t i = 0; i < json_array_size(value); ++i)
      if (nested_deeper_than(json_array_get(value, i), allowed - 1)) return true;
    return false;
  }
  const char* key;
  json_t* member;
  // jansson's iteration macro drops const.
  json_object_foreach(const_cast<json_t*>(value), key, member) {
    if (nested_deeper_than(member, allowed - 1)) return true;
  }
  return false;
}

// A JSON object, duplicate keys and deep nesting refused; else the error.
std::optional<RequestError> load_json_object(std::string_view body, JsonReference* root) {
  json_error_t error;
  root->value = json_loadb(body.data(), body.size(), JSON_REJECT_DUPLICATES, &error);
  if (root->value == nullptr) {
    return bad_request("the body is not valid JSON: " + std::string(error.text) + " (line " +
                       std::to_string(error.line) + ", column " + std::to_string(error.column) +
                       ")");
  }
  if (!json_is_object(root->value)) return bad_request("the body must be a JSON object");
  if (nested_deeper_than(root->value, kJsonDepthMax)) {
    return bad_request("the body nests objects and arrays deeper than " +
                       std::to_string(kJsonDepthMax));
  }
  return std::nullopt;
}

// {"params": {"NAME": "VALUE", ...}}: other keys are refused.
std::variant<Params, RequestError> params_form(const json_t* root) {
  Params params;
  const char* key;
  size_t key_length;
  json_t* member;
  json_object_keylen_foreach(const_cast<json_t*>(root), key, key_length, member) {
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

std::variant<Params, RequestError> parse_json_body(std::string_view body) {
  JsonReference root(nullptr);
  if (auto error = load_json_object(body, &root)) return *error;
  return params_form(root.value);
}

// NAME=VALUE&... of a form body or a query string (`what`), whose names
// are of `kind`: no NUL, no name twice.
std::variant<Params, RequestError> decode_pairs(std::string_view text, const std::string& what,
                                                const std::string& kind) {
  auto pairs = parse_query(text);
  if (!pairs) return bad_request(what + " has a malformed percent-encoding");
  std::set<std::string_view> seen;
  for (const auto& [name, value] : *pairs) {
    if (has_nul(name) || has_nul(value)) {
      return bad_request("a " + kind + " name or value contains a NUL byte");
    }
    if (!seen.insert(name).second) {
      return bad_request(kind + " '" + name + "' is given more than once");
    }
  }
  return std::move(*pairs);
}

// "application/json; charset=utf-8": only the media type counts.
std::string_view media_type_of(std::string_view content_type) {
  return trim_whitespace(content_type.substr(0, content_type.find(';')));
}

// RFC 9110's token: the characters of a header name.
bool is_header_name(std::string_view name) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  if (name.empty()) return false;
  for (char c : name) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (!alnum && kSymbols.find(c) == std::string_view::npos) return false;
  }
  return true;
}

bool given(const Params& params, std::string_view name) {
  return std::any_of(params.begin(), params.end(),
                     [name](const auto& param) { return param.first == name; });
}

}  // namespace

Status parse_value_source(std::string_view text, ValueSource* out) {
  ValueSource source;
  source.text = text;
  if (text.starts_with("json:")) {
    const std::string_view pointer = text.substr(5);
    if (pointer.empty()) return Status::error("json: needs a pointer such as /ref (RFC 6901)");
    if (Status parsed = parse_json_pointer(pointer, &source.pointer); !parsed.is_ok())
      return parsed;
    source.kind = ValueSource::Kind::json;
  } else if (text.starts_with("header:")) {
    source.name = text.substr(7);
    if (!is_header_name(source.name)) return Status::error("header: needs an HTTP header name");
    source.kind = ValueSource::Kind::header;
  } else if (text.starts_with("query:")) {
    source.name = text.substr(6);
    if (source.name.empty() || has_nul(source.name))
      return Status::error("query: needs the name of a query parameter");
    source.kind = ValueSource::Kind::query;
  } else {
    return Status::error("json:/POINTER, header:NAME or query:NAME");
  }
  *out = std::move(source);
  return Status::ok();
}

namespace {

bool any_source_of(const SubmissionRules& rules, ValueSource::Kind kind) {
  return std::any_of(rules.param_from.begin(), rules.param_from.end(),
                     [kind](const ParamFrom& from) { return from.source.kind == kind; }) ||
         std::any_of(rules.filters.begin(), rules.filters.end(),
                     [kind](const SubmissionFilter& filter) { return filter.source.kind == kind; });
}

}  // namespace

bool SubmissionRules::reads_json() const { return any_source_of(*this, ValueSource::Kind::json); }
bool SubmissionRules::reads_query() const { return any_source_of(*this, ValueSource::Kind::query); }

std::variant<Submission, RequestError> read_submission(const SubmissionRequest& request,
                                                       const SubmissionRules& rules) {
  Params query;
  if (!request.query.empty()) {
    if (!rules.reads_query()) {
      return bad_request("this target takes no query string: send the parameters in the body");
    }
    auto pairs = decode_pairs(request.query, "the query string", "query parameter");
    if (auto* error = std::get_if<RequestError>(&pairs)) return *error;
    query = std::get<Params>(std::move(pairs));
  }

  Submission submission;
  JsonReference document(nullptr);
  if (rules.reads_json() && !request.body.empty() &&
      equals_ignoring_case(media_type_of(request.content_type), "application/json")) {
    if (auto error = load_json_object(request.body, &document)) return *error;
    // {"params": ...} alone is read as always; any other object is a
    // payload, read only through the pointers.
    if (json_object_size(document.value) == 1 && json_object_get(document.value, "params")) {
      auto parsed = params_form(document.value);
      if (auto* error = std::get_if<RequestError>(&parsed)) return *error;
      submission.params = std::get<Params>(std::move(parsed));
    }
  } else {
    auto parsed = parse_submission_body(request.content_type, request.body);
    if (auto* error = std::get_if<RequestError>(&parsed)) return *error;
    submission.params = std::get<Params>(std::move(parsed));
  }

  auto value_of = [&](const ValueSource& source) {
    PointedValue value;
    if (source.kind == ValueSource::Kind::json) {
      if (document.value) value = resolve_json_pointer(document.value, source.pointer);
    } else if (source.kind == ValueSource::Kind::header) {
      std::optional<std::string> header =
          request.header ? request.header(source.name) : std::nullopt;
      if (header) value = PointedValue{PointedValue::Kind::scalar, std::move(*header)};
    } else {
      for (const auto& [name, text] : query)
        if (name == source.name) value = PointedValue{PointedValue::Kind::scalar, text};
    }
    return value;
  };

  for (const ParamFrom& from : rules.param_from) {
    PointedValue value = value_of(from.source);
    if (value.kind == PointedValue::Kind::absent) continue;
    if (value.kind == PointedValue::Kind::container) {
      return invalid_param("parameter '" + from.param + "': " + from.source.text +
                           " is an object or an array, not a value");
    }
    if (has_nul(value.text)) {
      return bad_request("parameter '" + from.param + "': " + from.source.text +
                         " contains a NUL byte");
    }
    if (given(submission.params, from.param)) {
      return bad_request("parameter '" + from.param + "' is given more than once (also by " +
                         from.source.text + ")");
    }
    submission.params.emplace_back(from.param, std::move(value.text));
  }
  if (auto invalid = validate_params(submission.params, rules.params)) return *invalid;

  for (const SubmissionFilter& filter : rules.filters) {
    const PointedValue value = value_of(filter.source);
    if (value.kind != PointedValue::Kind::scalar) {
      submission.ignored =
          filter.source.text + " has no value; it must match " + filter.pattern.source();
      break;
    }
    if (!filter.pattern.full_match(value.text)) {
      submission.ignored = filter.source.text + " does not match " + filter.pattern.source();
      break;
    }
  }
  return submission;
}

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

Status ParamPattern::compile(const std::string& pattern, ParamPattern* out) {
  auto compiled = std::make_shared<Code>();
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 PCRE2_UTF, &error_code, &error_offset, nullptr);
  if (compiled->code == nullptr) {
    PCRE2_UCHAR text[256];
    pcre2_get_error_message(error_code, text, sizeof text);
    return Status::error(std::string(reinterpret_cast<const char*>(text)) + " at offset " +
                         std::to_string(error_offset));
  }
  compiled->context = pcre2_match_context_create(nullptr);
  if (compiled->context == nullptr) return Status::error("out of memory");
  pcre2_set_match_limit(compiled->context, kMatchLimit);
  pcre2_set_depth_limit(compiled->context, kDepthLimit);
  pcre2_set_heap_limit(compiled->context, kHeapLimitKib);

  out->code_ = std::move(compiled);
  out->source_ = pattern;
  return Status::ok();
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
  const std::string_view media_type = media_type_of(content_type);
  if (equals_ignoring_case(media_type, "application/json")) return parse_json_body(body);
  if (equals_ignoring_case(media_type, "application/x-www-form-urlencoded")) {
    return decode_pairs(body, "the form body", "parameter");
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
