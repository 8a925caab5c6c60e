// The JSON a client sees: jobs, errors, times.
#pragma once

#include <jansson.h>

#include <string>
#include <string_view>

#include "job.h"
#include "request_error.h"

namespace deploy {

// RFC 3339 UTC with milliseconds: 2026-11-21T10:00:00.123Z
std::string format_time(Micros t);

// Compact text of the job object of SPEC.md ("A job"), with `"FLAG": true`
// added when `flag` is given (a submission's "coalesced" or "duplicate");
// links are under `base` (the Location's path, without a trailing slash).
// The one way a job's JSON is written: a listing joins these texts, never
// parsing them back.
std::string job_json(const Job& job, std::string_view base, std::string_view flag = {});

// {"error": CODE, "message": TEXT}
std::string error_json(const RequestError& error);

// Compact text of a JSON value; steals the reference.
std::string dump_json(json_t* value);

}  // namespace deploy
