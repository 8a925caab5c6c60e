// deployctl's command line: global options, one subcommand, its arguments.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace deploy::ctl {

constexpr const char* kDefaultUrl = "http://127.0.0.1:8080/deploy";

struct Options {
  // Global options.
  std::string url;                         // --url, else $DEPLOY_URL, else kDefaultUrl
  std::optional<std::string> user;         // --user USER[:PASSWORD]
  std::optional<std::string> secret_file;  // --secret-file PATH
  bool json = false;                       // --json
  bool help = false;                       // --help, -h

  // The subcommand: submit, follow, status, list, cancel, log, targets.
  std::string command;
  std::vector<std::string> arguments;  // words after the subcommand, in order

  // Subcommand options.
  bool follow = false;                       // submit --follow, log -f
  std::optional<std::string> target_filter;  // list --target
  std::optional<std::string> state_filter;   // list --state
  std::optional<std::string> limit;          // list --limit
};

// Parses argv[1..argc). Options may come before or after the subcommand;
// "--" ends them. `environment_url` is $DEPLOY_URL (or null). On an error,
// the message for a person ("unknown option --foo").
std::variant<Options, std::string> parse_options(int argc, const char* const* argv,
                                                 const char* environment_url);

// The text of `deployctl --help`.
const char* usage_text();

}  // namespace deploy::ctl
