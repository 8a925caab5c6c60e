// The routes under the handler's base path, and their query strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "job.h"
#include "request_error.h"

namespace deploy {

struct Route {
  enum class Kind {
    dashboard,   // BASE/ (and BASE)
    targets,     // BASE/targets
    target,      // BASE/targets/NAME
    jobs,        // BASE/jobs
    job,         // BASE/jobs/ID
    job_log,     // BASE/jobs/ID/log
    job_events,  // BASE/jobs/ID/events
    job_cancel,  // BASE/jobs/ID/cancel
    events,      // BASE/events
    metrics,     // BASE/metrics
  };
  Kind kind = Kind::dashboard;
  std::string target;   // Kind::target: a valid target name
  uint64_t job_id = 0;  // job kinds: positive
};

// `path` is what follows BASE in the decoded URI path ("", "/", "/jobs/42"...).
// nullopt for anything else: unknown route, malformed id or target name.
std::optional<Route> parse_route(std::string_view path);

// Methods a route answers; for the Allow header of a 405.
std::string_view allowed_methods(Route::Kind kind);

// Decoded NAME=VALUE pairs of a query string ('+' is a space). nullopt when
// the percent-encoding is malformed.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query);

struct JobsQuery {
  std::optional<std::string> target;
  std::optional<JobState> state;
  uint32_t limit = 50;  // 1..1000
  uint64_t before = 0;  // 0: no bound; else only ids below it
};
// GET BASE/jobs query: ?target=, ?state=, ?limit= (default 50, at most 1000), ?before=ID.
// 400 bad_request for malformed values; unknown keys are ignored (cache busters).
std::variant<JobsQuery, RequestError> parse_jobs_query(std::string_view query);

// Does an Accept header prefer text/html to the job JSON (GET BASE/jobs/ID)?
// Each type gets the q of its most specific range (text/html, text/*, */*;
// q=1 when absent, malformed q 0); true exactly when text/html's q is above
// 0 and above application/json's. So a browser's Accept gets the page, and
// none, "*/*" or "application/json" the JSON. At most 64 ranges are read.
bool prefers_html(std::string_view accept);

// ?offset=N of the log route: 400 bad_request when malformed.
std::variant<uint64_t, RequestError> parse_log_offset(std::string_view query);

}  // namespace deploy
