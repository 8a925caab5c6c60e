// The HTML dashboard at GET BASE/ (and BASE): targets with a deploy form each,
// running jobs with progress bars, waiting and queued jobs, and the history.
// As mod_status does, it copies the job table under its lock and renders the
// copy afterwards. The page is complete without JavaScript; its inline script
// follows BASE/events from the change the copy was taken at and updates rows
// in place. Everything a job or a request supplied is HTML-escaped on the
// server and set with textContent on the client; a Content-Security-Policy
// with a per-response nonce allows no other script and no external load.
#pragma once

#include <httpd.h>

#include <string>

#include "deploy_access.h"
#include "deploy_state.h"

namespace deploy {

// `base` is the Location's path, without a trailing slash; every link on the
// page is absolute under it, so BASE and BASE/ serve the same page. The page
// shows only the targets (and their jobs) the request may read.
int send_dashboard(request_rec* r, const ModuleState& state, TargetAccess& access,
                   const std::string& base);

}  // namespace deploy
