// What deployctl's exit status tells a script. Documented in --help and in
// docs/deployctl.md; a change here is a change to the product.
#pragma once

#include <string_view>

namespace deploy::ctl {

enum ExitCode : int {
  kExitSucceeded = 0,    // the request worked; for follow, the job succeeded
  kExitLocalError = 1,   // bad usage, unreadable secret file, ...
  kExitServerError = 2,  // server unreachable, or an HTTP error answer
  kExitJobFailed = 3,
  kExitJobTimedOut = 4,
  kExitJobCanceled = 5,
  kExitJobExpired = 6,
  kExitJobLost = 7,
  kExitInterrupted = 130,  // Ctrl-C while following; the job goes on
};

// The exit status for a job that ended in `state` (a final state of docs/api.md);
// kExitServerError for a state this client does not know.
inline ExitCode exit_code_for_final_state(std::string_view state) {
  if (state == "succeeded") return kExitSucceeded;
  if (state == "failed") return kExitJobFailed;
  if (state == "timed_out") return kExitJobTimedOut;
  if (state == "canceled") return kExitJobCanceled;
  if (state == "expired") return kExitJobExpired;
  if (state == "lost") return kExitJobLost;
  return kExitServerError;
}

}  // namespace deploy::ctl
