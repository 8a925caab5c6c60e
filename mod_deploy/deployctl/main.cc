// deployctl: the command-line client of mod_deploy. See docs/deployctl.md.
//
// This file reads the command line and the local files it names, builds
// the HTTP client, and is the one place where exceptions stop.

#include <curl/curl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>

#include "client.h"
#include "commands.h"
#include "exit_code.h"
#include "interruption.h"
#include "options.h"

namespace deploy::ctl {

namespace {

int usage_error(const std::string& message) {
  std::fprintf(stderr, "deployctl: %s\nTry 'deployctl --help'.\n", message.c_str());
  return kExitLocalError;
}

// The signing key: the file's content without one trailing newline, as
// mod_deploy reads a DeploySecret file.
std::optional<std::string> read_signing_key(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "deployctl: cannot read secret file %s: %s\n", path.c_str(),
                 std::strerror(errno));
    return std::nullopt;
  }
  std::ostringstream content;
  content << file.rdbuf();
  std::string key = content.str();
  if (!key.empty() && key.back() == '\n') key.pop_back();
  return key;
}

// --user USER[:PASSWORD]; without a password it is asked for on a terminal,
// else left to ~/.netrc.
Credentials credentials_of(const std::optional<std::string>& user) {
  Credentials credentials;
  if (!user) return credentials;
  const size_t colon = user->find(':');
  credentials.user = user->substr(0, colon);
  if (colon != std::string::npos) {
    credentials.password = user->substr(colon + 1);
  } else if (isatty(STDIN_FILENO)) {
    const std::string prompt = "Password for " + *credentials.user + ": ";
    if (const char* typed = getpass(prompt.c_str())) credentials.password = typed;
  }
  return credentials;
}

int run(int argc, const char* const* argv) {
  auto parsed = parse_options(argc, argv, std::getenv("DEPLOY_URL"));
  if (auto* message = std::get_if<std::string>(&parsed)) return usage_error(*message);
  const Options& options = std::get<Options>(parsed);
  if (options.help) {
    std::fputs(usage_text(), stdout);
    return kExitSucceeded;
  }

  std::optional<std::string> signing_key;
  if (options.secret_file) {
    signing_key = read_signing_key(*options.secret_file);
    if (!signing_key) return kExitLocalError;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    std::fputs("deployctl: libcurl cannot be initialised\n", stderr);
    return kExitLocalError;
  }
  catch_interruptions();
  int status;
  {
    Client client(options.url, credentials_of(options.user), std::move(signing_key));
    status = run_command(options, client);
  }
  curl_global_cleanup();
  return status;
}

}  // namespace

}  // namespace deploy::ctl

int main(int argc, char** argv) {
  try {
    return deploy::ctl::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deployctl: %s\n", e.what());
  } catch (...) {
    std::fputs("deployctl: unexpected failure\n", stderr);
  }
  return deploy::ctl::kExitLocalError;
}
