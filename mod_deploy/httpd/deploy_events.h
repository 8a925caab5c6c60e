// Server-Sent Events: the live view of one job (state, progress, stage and
// its output) and of every job (state, progress, stage). A stream sleeps on
// the job table's futex between changes: no polling, and a change reaches
// the client as soon as it is committed.
#pragma once

#include <httpd.h>

#include <string>

#include "deploy_access.h"
#include "deploy_state.h"

namespace deploy {

// GET BASE/jobs/ID/events, for a job the caller found. Event ids are "CHANGE.OFFSET": the job's
// last change sent and the log bytes sent; Last-Event-ID (or ?since=CHANGE.OFFSET,
// what the job page read) resumes after both.
int stream_job_events(request_rec* r, const ModuleState& state, const std::string& base,
                      uint64_t id);
// GET BASE/events. Event ids are the table's change counter; Last-Event-ID
// (or ?since=N) resumes after it; without either the stream starts now.
// Only jobs of targets the request may read are sent.
int stream_all_events(request_rec* r, const ModuleState& state, TargetAccess& access,
                      const std::string& base);

}  // namespace deploy
