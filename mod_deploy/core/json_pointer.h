// RFC 6901 JSON Pointers, for DeployParamFrom json:/POINTER: the value a
// webhook's payload holds at a path (GitHub's /after, /ref, /repository/name).
#pragma once

#include <jansson.h>

#include <string>
#include <string_view>
#include <vector>

#include "status.h"

namespace deploy {

// The reference tokens of a pointer, unescaped ("~1" is '/', "~0" is '~').
// The empty pointer "" is the whole document.
struct JsonPointer {
  std::vector<std::string> tokens;
};

// Fails for text that is neither empty nor starts with '/', and for a '~'
// not followed by '0' or '1'.
Status parse_json_pointer(std::string_view text, JsonPointer* out);
// The pointer as text, escaped: parse_json_pointer(format_json_pointer(p)) is p.
std::string format_json_pointer(const JsonPointer& pointer);

// What a document holds at a pointer, for a parameter.
struct PointedValue {
  enum class Kind {
    absent,     // nothing there, or null: the parameter is left out
    scalar,     // a string, number or boolean: `text` is its value as text
    container,  // an object or an array: not a parameter's value
  };
  Kind kind = Kind::absent;
  std::string text;
};
// Array elements are named by "0" or a decimal without leading zeros; "-"
// (past the end) and any other token name nothing in an array. Integers are
// written in decimal, reals in the shortest form that reads back the same,
// booleans as true and false.
PointedValue resolve_json_pointer(const json_t* document, const JsonPointer& pointer);

}  // namespace deploy
