#include "names.h"

namespace deploy {

namespace {

bool is_ascii_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool is_ascii_alphanumeric(char c) { return is_ascii_letter(c) || (c >= '0' && c <= '9'); }

constexpr size_t kNameMax = 64;

}  // namespace

bool is_valid_target_name(std::string_view name) {
  if (name.empty() || name.size() > kNameMax || !is_ascii_alphanumeric(name[0])) return false;
  for (char c : name.substr(1)) {
    if (!is_ascii_alphanumeric(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

bool is_valid_param_name(std::string_view name) {
  if (name.empty() || name.size() > kNameMax) return false;
  if (!is_ascii_letter(name[0]) && name[0] != '_') return false;
  for (char c : name.substr(1)) {
    if (!is_ascii_alphanumeric(c) && c != '_') return false;
  }
  return true;
}

}  // namespace deploy
