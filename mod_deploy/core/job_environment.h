// The environment a job runs with: nothing of httpd's own.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "job.h"

namespace deploy {

// PATH, LANG=C.UTF-8, DEPLOY_JOB_ID, DEPLOY_TARGET, DEPLOY_REQUESTS,
// DEPLOY_SUBMITTED_BY, DEPLOY_PARAM_<NAME upper-cased> for every parameter,
// then `extra` (DeployEnv, which wins over the above for the same name).
// "NAME=VALUE" strings, one per name.
std::vector<std::string> job_environment(
    const Job& job, const std::vector<std::pair<std::string, std::string>>& extra);

}  // namespace deploy
