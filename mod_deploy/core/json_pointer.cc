#include "json_pointer.h"

#include <cstdio>
#include <cstdlib>

#include "text.h"

namespace deploy {
namespace {

// An array index as RFC 6901 spells it: "0", or digits without a leading zero.
bool parse_index(const std::string& token, size_t* index) {
  if (token.empty() || (token.size() > 1 && token[0] == '0')) return false;
  std::optional<uint64_t> value = parse_decimal(token);
  if (!value) return false;
  *index = size_t(*value);
  return uint64_t(*index) == *value;
}

std::string real_text(double value) {
  char buffer[40];
  for (int precision = 15; precision <= 17; ++precision) {
    snprintf(buffer, sizeof buffer, "%.*g", precision, value);
    if (strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

}  // namespace

Status parse_json_pointer(std::string_view text, JsonPointer* out) {
  out->tokens.clear();
  if (text.empty()) return Status::ok();
  if (text[0] != '/') return Status::error("a JSON pointer starts with '/'");
  std::string token;
  for (size_t i = 1; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '/') {
      out->tokens.push_back(std::move(token));
      token.clear();
      continue;
    }
    if (text[i] != '~') {
      token += text[i];
      continue;
    }
    if (i + 1 >= text.size() || (text[i + 1] != '0' && text[i + 1] != '1'))
      return Status::error("in a JSON pointer '~' is followed by '0' or '1'");
    token += text[++i] == '0' ? '~' : '/';
  }
  return Status::ok();
}

std::string format_json_pointer(const JsonPointer& pointer) {
  std::string out;
  for (const std::string& token : pointer.tokens) {
    out += '/';
    for (char c : token) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  }
  return out;
}

PointedValue resolve_json_pointer(const json_t* document, const JsonPointer& pointer) {
  const json_t* at = document;
  for (const std::string& token : pointer.tokens) {
    if (!at) break;
    if (json_is_object(at)) {
      at = json_object_getn(at, token.data(), token.size());
    } else if (json_is_array(at)) {
      size_t index = 0;
      at = parse_index(token, &index) ? json_array_get(at, index) : nullptr;
    } else {
      at = nullptr;
    }
  }
  PointedValue value;
  if (!at || json_is_null(at)) return value;
  value.kind = PointedValue::Kind::scalar;
  if (json_is_string(at))
    value.text.assign(json_string_value(at), json_string_length(at));
  else if (json_is_integer(at))
    value.text = std::to_string(json_integer_value(at));
  else if (json_is_real(at))
    value.text = real_text(json_real_value(at));
  else if (json_is_boolean(at))
    value.text = json_is_true(at) ? "true" : "false";
  else
    value.kind = PointedValue::Kind::container;
  return value;
}

}  // namespace deploy
