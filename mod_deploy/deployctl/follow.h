// Watching a job until it ends, on its event stream (GET BASE/jobs/ID/events,
// resumed with Last-Event-ID), or by polling (GET BASE/jobs/ID and
// GET BASE/jobs/ID/log?offset=N every kPollMilliseconds) where no stream
// can be opened.
#pragma once

#include <cstdint>

#include "client.h"

namespace deploy::ctl {

constexpr int kPollMilliseconds = 400;

enum class FollowOutput {
  progress_bar,  // a terminal: one line redrawn in place, then a summary
  change_lines,  // a pipe or file: a timestamped line per change, then a summary
  json,          // the server's job JSON, one object per line per change
};

// Shows job `id` until it reaches a final state; when that is not
// `succeeded`, then prints the last 20 lines of its log to stderr. Returns
// the exit status (exit_code.h): the job's final state, or an error.
int follow_job(Client& client, uint64_t id, FollowOutput output);

// Copies the log of job `id` to stdout; with `until_finished`, follows its
// stream (or polls) for more until the job is final.
int copy_log(Client& client, uint64_t id, bool until_finished);

// Prints "deployctl: <description>" for a failed reply to stderr and
// returns the exit status for it.
int report_failure(const Reply& reply, const Client& client);

}  // namespace deploy::ctl
