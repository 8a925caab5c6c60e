// A deployment request's body: parsed, then checked against the target's
// declared parameters. Both steps reject; neither has side effects.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "job.h"
#include "request_error.h"

namespace deploy {

// A regular expression (PCRE2) that must match a whole value; bounded in the
// work one match may do.
class ParamPattern {
 public:
  // nullopt and *error set when the pattern does not compile.
  static std::optional<ParamPattern> compile(const std::string& pattern, std::string* error);
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

// 400 invalid_param naming the first parameter that is not declared or whose
// value fails its pattern; 413 too_large when they cannot be stored.
std::optional<RequestError> validate_params(const Params& params,
                                            const std::vector<ParamRule>& rules);

}  // namespace deploy
