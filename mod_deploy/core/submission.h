// A deployment request's body: parsed, then checked against the target's
// declared parameters. Both steps reject; neither has side effects.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "job.h"
#include "json_pointer.h"
#include "request_error.h"
#include "status.h"

namespace deploy {

// A regular expression (PCRE2) that must match a whole value; bounded in the
// work one match may do.
class ParamPattern {
 public:
  // *out matches `pattern`; an error (saying why) when it does not compile.
  static Status compile(const std::string& pattern, ParamPattern* out);
  bool full_match(std::string_view value) const;
  const std::string& source() const { return source_; }

 private:
  struct Code;
  std::shared_ptr<Code> code_;
  std::string source_;
};

struct ParamRule {
  std::string name;
  ParamPattern pattern;
};

// content_type may be empty (then the body must be empty too).
// application/json: {"params": {"NAME": "VALUE", ...}} (other keys are
// refused); application/x-www-form-urlencoded: NAME=VALUE&... An empty body
// means no parameters whatever the type.
// Errors: 400 bad_request, 415 unsupported_media_type.
std::variant<Params, RequestError> parse_submission_body(std::string_view content_type,
                                                         std::string_view body);

// Where DeployParamFrom and DeployFilter take a value from: json:/POINTER
// (RFC 6901, into a JSON body), header:NAME or query:NAME.
struct ValueSource {
  enum class Kind { json, header, query };
  Kind kind = Kind::json;
  JsonPointer pointer;  // json
  std::string name;     // header, query
  std::string text;     // as written, for messages
};
// An error (saying why) for anything else: another prefix, a pointer that
// is empty or malformed, a header name that is not an HTTP token, an empty
// query name.
Status parse_value_source(std::string_view text, ValueSource* out);

// DeployParamFrom NAME SOURCE.
struct ParamFrom {
  std::string param;
  ValueSource source;
};

// DeployFilter SOURCE REGEX.
struct SubmissionFilter {
  ValueSource source;
  ParamPattern pattern;
};

// What a target accepts from a submission.
struct SubmissionRules {
  std::vector<ParamRule> params;
  std::vector<ParamFrom> param_from;
  std::vector<SubmissionFilter> filters;

  // A json: source among param_from and filters: the body may be any JSON
  // object (a webhook's payload), not only {"params": ...}.
  bool reads_json() const;
  // A query: source: the request may have a query string.
  bool reads_query() const;
};

struct SubmissionRequest {
  std::string_view content_type;  // may be empty
  std::string_view body;
  std::string_view query;  // the query string without '?'; empty when none
  // The value of a request header (first of several), nullopt when absent.
  std::function<std::optional<std::string>(std::string_view name)> header;
};

struct Submission {
  Params params;
  // Set when a DeployFilter does not match: the submission is answered as
  // ignored, with this message, and records nothing.
  std::optional<std::string> ignored;
};

// JSON bodies nest objects and arrays at most this deep.
constexpr int kJsonDepthMax = 64;

// The whole check of a submission: the body (as parse_submission_body, or,
// with a json: source, any JSON object, read only through the pointers when
// it is not {"params": ...} alone), the sources (a parameter given twice is
// 400 bad_request; an object or array at a pointer is 400 invalid_param), a
// query string (400 bad_request unless a query: source reads it), the
// parameters (validate_params), then the filters.
std::variant<Submission, RequestError> read_submission(const SubmissionRequest& request,
                                                       const SubmissionRules& rules);

// 400 invalid_param naming the first parameter that is not declared or whose
// value fails its pattern; 413 too_large when they cannot be stored.
std::optional<RequestError> validate_params(const Params& params,
                                            const std::vector<ParamRule>& rules);

}  // namespace deploy
