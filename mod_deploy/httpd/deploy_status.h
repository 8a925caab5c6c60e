// Status for machines, as mod_status gives it: BASE/?auto (Key: value lines)
// and BASE/metrics (Prometheus text format). Both render a snapshot of the
// job table taken under its lock, so the lock is never held while writing.
#pragma once

#include <httpd.h>

#include "deploy_access.h"
#include "deploy_state.h"

namespace deploy {

int send_auto_status(request_rec* r, const ModuleState& state);
// Per-target lines only for the targets the request may read.
int send_metrics(request_rec* r, const ModuleState& state, TargetAccess& access);

}  // namespace deploy
