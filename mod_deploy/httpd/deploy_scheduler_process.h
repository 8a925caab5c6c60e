// The scheduler process decides when jobs start and hands each one to a
// runner (deploy-runner). Like mod_cgid's daemon it is forked from httpd's
// single-threaded parent in post_config, runs as httpd's User, and is
// replaced at every restart; jobs do not depend on it: their runners are in
// sessions of their own and outlive it, httpd, and its restarts.
//
// It owns these transitions: waiting -> queued, queued -> running (spawn),
// waiting/queued -> expired, running -> lost (runner gone without a word),
// and the pruning of the history.
#pragma once

#include <apr_pools.h>
#include <httpd.h>

#include "deploy_state.h"

namespace deploy {

apr_status_t start_scheduler_process(apr_pool_t* pconf, server_rec* s, ModuleState* state);

}  // namespace deploy
