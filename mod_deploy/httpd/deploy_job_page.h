// The HTML page of one job, GET BASE/jobs/ID to a browser (an Accept that
// prefers text/html; every other client gets the job JSON): target, state,
// parameters, times and durations, the progress bar, the stage, the newest
// part of the log, and the cancel button while the job can be canceled by
// this request. Complete without JavaScript; its nonce'd script follows
// BASE/jobs/ID/events from where the page's copy ends (?since=CHANGE.OFFSET)
// and keeps at most the newest 10 MiB of the log on the page, saying so when
// it shows less than all of it. Everything from the job is HTML-escaped on
// the server and set with textContent on the client.
#pragma once

#include <httpd.h>

#include <string>

#include "deploy_access.h"
#include "deploy_state.h"
#include "job.h"

namespace deploy {

// `job`: a job the request may read (the caller checked, as for the JSON).
// `base` as for send_dashboard.
int send_job_page(request_rec* r, const ModuleState& state, TargetAccess& access,
                  const std::string& base, const Job& job);

}  // namespace deploy
