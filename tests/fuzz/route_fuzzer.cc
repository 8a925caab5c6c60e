// Paths and query strings: parse_route, parse_query, parse_jobs_query and
// parse_log_offset on the same text. What they accept keeps their promises:
// job ids positive, target names valid, limits within 1..1000.
#include <cstddef>
#include <cstdint>
#include <variant>

#include "fuzz_support.h"
#include "names.h"
#include "route.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = deploy::fuzz::as_text(data, size);

  if (const auto route = deploy::parse_route(text)) {
    switch (route->kind) {
      case deploy::Route::Kind::target:
        FUZZ_CHECK(deploy::is_valid_target_name(route->target));
        break;
      case deploy::Route::Kind::job:
      case deploy::Route::Kind::job_log:
      case deploy::Route::Kind::job_events:
      case deploy::Route::Kind::job_cancel:
        FUZZ_CHECK(route->job_id > 0);
        break;
      default:
        FUZZ_CHECK(route->job_id == 0 && route->target.empty());
    }
    FUZZ_CHECK(!deploy::allowed_methods(route->kind).empty());
  }

  if (const auto pairs = deploy::parse_query(text)) {
    // Decoding only shrinks: "%41" is one byte, "+" stays one.
    size_t decoded = 0;
    for (const auto& [name, value] : *pairs) decoded += name.size() + value.size();
    FUZZ_CHECK(decoded <= text.size());
  }

  const auto jobs = deploy::parse_jobs_query(text);
  if (const auto* query = std::get_if<deploy::JobsQuery>(&jobs)) {
    FUZZ_CHECK(query->limit >= 1 && query->limit <= 1000);
    if (query->target) FUZZ_CHECK(deploy::is_valid_target_name(*query->target));
  } else {
    FUZZ_CHECK(std::get<deploy::RequestError>(jobs).status == 400);
  }

  const auto offset = deploy::parse_log_offset(text);
  if (const auto* error = std::get_if<deploy::RequestError>(&offset)) {
    FUZZ_CHECK(error->status == 400);
  }
  return 0;
}
