// The environment a job runs with: nothing of httpd's own.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "job.h"

namespace deploy {

// PATH, LANG=C.UTF-8, DEPLOY_JOB_ID, DEPLOY_TARGET, DEPLOY_REQUESTS,
// DEPLOY_SUBMITTED_BY, DEPLOY_PARAM_<NAME upper-cased> for every parameter,
// then `extra` (DeployEnv, which wins over the above for the same name),
// then `secrets` (DeploySecretEnv, last for the same reason).
// "NAME=VALUE" strings, one per name. With `secret_entries`, it gets the
// indices of the entries a secret set, in increasing order.
std::vector<std::string> job_environment(
    const Job& job, const std::vector<std::pair<std::string, std::string>>& extra,
    const std::vector<std::pair<std::string, std::string>>& secrets = {},
    std::vector<uint32_t>* secret_entries = nullptr);

}  // namespace deploy
