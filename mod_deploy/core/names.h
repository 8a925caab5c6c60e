// The shapes of names that come from configuration or requests.
#pragma once

#include <string_view>

namespace deploy {

// [A-Za-z0-9][A-Za-z0-9._-]{0,63}
bool is_valid_target_name(std::string_view name);
// [A-Za-z_][A-Za-z0-9_]{0,63}
bool is_valid_param_name(std::string_view name);

}  // namespace deploy
