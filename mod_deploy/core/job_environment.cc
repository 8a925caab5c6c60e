#include "job_environment.h"

#include <algorithm>

namespace deploy {

namespace {

constexpr std::string_view kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string upper_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

}  // namespace

std::vector<std::string> job_environment(
    const Job& job, const std::vector<std::pair<std::string, std::string>>& extra,
    const std::vector<std::pair<std::string, std::string>>& secrets,
    std::vector<uint32_t>* secret_entries) {
  std::vector<std::pair<std::string, std::string>> variables = {
      {"PATH", std::string(kPath)},
      {"LANG", "C.UTF-8"},
      {"DEPLOY_JOB_ID", std::to_string(job.id)},
      {"DEPLOY_TARGET", job.target},
      {"DEPLOY_REQUESTS", std::to_string(job.requests)},
      {"DEPLOY_SUBMITTED_BY", job.submitted_by.value_or("")},
  };
  // A later value for a name already set replaces it where it stands, so the
  // order stays the same whatever overrides what.
  auto set = [&variables](std::string name, std::string value) {
    auto existing = std::find_if(variables.begin(), variables.end(),
                                 [&name](const auto& variable) { return variable.first == name; });
    if (existing != variables.end()) {
      existing->second = std::move(value);
    } else {
      variables.emplace_back(std::move(name), std::move(value));
    }
  };
  for (const auto& [name, value] : job.params) set("DEPLOY_PARAM_" + upper_ascii(name), value);
  for (const auto& [name, value] : extra) set(name, value);
  for (const auto& [name, value] : secrets) set(name, value);

  if (secret_entries != nullptr) {
    secret_entries->clear();
    for (size_t i = 0; i < variables.size(); ++i) {
      for (const auto& secret : secrets) {
        if (secret.first != variables[i].first) continue;
        secret_entries->push_back(static_cast<uint32_t>(i));
        break;
      }
    }
  }

  std::vector<std::string> environment;
  environment.reserve(variables.size());
  for (const auto& [name, value] : variables) environment.push_back(name + "=" + value);
  return environment;
}

}  // namespace deploy
