#include "options.h"

#include <set>
#include <string_view>

namespace deploy::ctl {

namespace {

// Options each subcommand takes besides the global ones.
bool option_allowed(std::string_view command, std::string_view option) {
  if (option == "--follow") return command == "submit";
  if (option == "-f") return command == "log";
  if (option == "--target" || option == "--state" || option == "--limit") return command == "list";
  return false;
}

bool takes_value(std::string_view option) {
  return option == "--url" || option == "--user" || option == "--secret-file" ||
         option == "--target" || option == "--state" || option == "--limit";
}

bool is_known_option(std::string_view option) {
  return takes_value(option) || option == "--json" || option == "--help" || option == "-h" ||
         option == "--follow" || option == "-f";
}

bool is_job_id(std::string_view text) {
  if (text.empty() || text.size() > 19 || text[0] == '0') return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Checks the arguments of a parsed command line; an error message or "".
std::string check_command(const Options& o, const std::vector<std::string>& options_seen) {
  static const std::set<std::string, std::less<>> kCommands = {"submit", "follow", "status", "list",
                                                               "cancel", "log",    "targets"};
  if (o.command.empty()) return "no command given";
  if (!kCommands.contains(o.command)) return "unknown command '" + o.command + "'";
  for (const std::string& option : options_seen) {
    if (!option_allowed(o.command, option))
      return "option " + option + " does not apply to '" + o.command + "'";
  }
  const size_t count = o.arguments.size();
  if (o.command == "submit") {
    if (count < 1) return "submit needs a TARGET";
    std::set<std::string, std::less<>> names;
    for (size_t i = 1; i < count; ++i) {
      const std::string& word = o.arguments[i];
      const size_t equals = word.find('=');
      if (equals == std::string::npos || equals == 0)
        return "parameter '" + word + "' is not NAME=VALUE";
      if (!names.insert(word.substr(0, equals)).second)
        return "parameter " + word.substr(0, equals) + " is given twice";
    }
    return "";
  }
  if (o.command == "list" || o.command == "targets") {
    if (count != 0) return o.command + " takes no arguments";
    if (o.limit && !is_job_id(*o.limit)) return "--limit needs a positive number";
    return "";
  }
  if (count != 1) return o.command + " needs exactly one job ID";
  if (!is_job_id(o.arguments[0])) return "'" + o.arguments[0] + "' is not a job ID";
  return "";
}

}  // namespace

std::variant<Options, std::string> parse_options(int argc, const char* const* argv,
                                                 const char* environment_url) {
  Options o;
  o.url = environment_url && *environment_url ? environment_url : kDefaultUrl;
  std::vector<std::string> command_options;
  bool options_ended = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    const bool is_option = !options_ended && word.size() > 1 && word[0] == '-';
    if (!is_option) {
      if (o.command.empty())
        o.command = word;
      else
        o.arguments.emplace_back(word);
      continue;
    }
    if (word == "--") {
      options_ended = true;
      continue;
    }
    std::string_view name = word;
    std::optional<std::string> value;
    if (const size_t equals = word.find('='); word.starts_with("--") && equals != word.npos) {
      name = word.substr(0, equals);
      value = std::string(word.substr(equals + 1));
    }
    if (!is_known_option(name)) return "unknown option " + std::string(name);
    if (takes_value(name)) {
      if (!value) {
        if (i + 1 >= argc) return "option " + std::string(name) + " needs a value";
        value = argv[++i];
      }
    } else if (value) {
      return "option " + std::string(name) + " takes no value";
    }

    if (name == "--url") {
      o.url = *value;
    } else if (name == "--user") {
      o.user = *value;
    } else if (name == "--secret-file") {
      o.secret_file = *value;
    } else if (name == "--json") {
      o.json = true;
    } else if (name == "--help" || name == "-h") {
      o.help = true;
    } else {
      command_options.emplace_back(name);
      if (name == "--follow" || name == "-f") o.follow = true;
      if (name == "--target") o.target_filter = *value;
      if (name == "--state") o.state_filter = *value;
      if (name == "--limit") o.limit = *value;
    }
  }
  if (o.help) return o;

  if (!o.url.starts_with("http://") && !o.url.starts_with("https://"))
    return "the server URL '" + o.url + "' does not start with http:// or https://";
  while (o.url.ends_with('/')) o.url.pop_back();
  if (std::string error = check_command(o, command_options); !error.empty()) return error;
  return o;
}

const char* usage_text() {
  return R"(Usage: deployctl [OPTIONS] COMMAND [ARGS]

Talks to mod_deploy: submits deployments and watches them.

Commands:
  submit TARGET [NAME=VALUE...] [--follow]
                     submit a deployment of TARGET with parameters;
                     --follow then watches it as 'follow' does
  follow ID          watch job ID until it ends: a progress bar on a
                     terminal, else a timestamped line per change
  status ID          show job ID
  list [--target T] [--state S] [--limit N]
                     list jobs, newest first
  cancel ID          cancel job ID
  log ID [-f]        print the output of job ID; -f follows it until
                     the job ends
  targets            list the targets and their latest job

Options:
  --url URL          the Location of mod_deploy (default: $DEPLOY_URL, else
                     http://127.0.0.1:8080/deploy, where scripts/demo listens)
  --user USER[:PASSWORD]
                     HTTP basic authentication; without PASSWORD it is asked
                     for on a terminal, else taken from ~/.netrc, which is
                     also used when --user is not given
  --secret-file PATH sign the request body with the key in PATH (one trailing
                     newline is not part of the key): X-Hub-Signature-256
  --json             print the server's JSON as it is (follow: one job object
                     per line, at every change)
  -h, --help         show this text

Environment:
  DEPLOY_URL         the Location of mod_deploy when --url is not given,
                     e.g. https://ci.example/deploy

A followed job (follow, submit --follow) that ends in any state but
succeeded has the last 20 lines of its log printed to stderr.

Exit status:
  0  success; for follow and submit --follow: the job succeeded
  1  usage or local error
  2  server unreachable, or the server answered with an error
  3  the job failed          (follow, submit --follow)
  4  the job timed out       (follow, submit --follow)
  5  the job was canceled    (follow, submit --follow)
  6  the job expired         (follow, submit --follow)
  7  the job was lost        (follow, submit --follow)
  130  interrupted (Ctrl-C) while following; the job goes on
)";
}

}  // namespace deploy::ctl
