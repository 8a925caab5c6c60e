// An answer refusing a request: HTTP status, SPEC error code, message.
#pragma once

#include <string>

namespace deploy {

struct RequestError {
  int status = 400;
  std::string code;     // "bad_request", "invalid_param", ...
  std::string message;  // for a person
};

}  // namespace deploy
