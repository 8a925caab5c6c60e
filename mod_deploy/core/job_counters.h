// The counters of ?auto and /metrics: kept in the table's header, they only
// grow, and survive restarts with the table (job_counters.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "clock.h"
#include "job_record.h"

namespace deploy {

// Why a submission was refused, for counting.
enum class Rejection : uint8_t {
  not_found,
  method_not_allowed,
  bad_request,
  invalid_param,
  unsupported_media_type,
  too_large,
  bad_signature,
  cross_origin,
  queue_full,
  internal,
  store_full,
  busy,
  count_
};
std::string_view rejection_name(Rejection r);
std::optional<Rejection> rejection_from_code(std::string_view code);

// Counters kept in the header for ?auto and metrics. They only grow, and
// survive restarts with the table.
constexpr size_t kMaxTargetStats = 128;
constexpr size_t kDurationBuckets = 10;  // upper bounds below; one more for +Inf
constexpr Micros kDurationBucketBounds[kDurationBuckets] = {
    1000000LL,   5000000LL,   10000000LL,  30000000LL,   60000000LL,
    120000000LL, 300000000LL, 600000000LL, 1800000000LL, 3600000000LL};

struct TargetStats {
  char target[kTargetNameMax + 8];                  // "" : unused
  uint64_t finished[16];                            // indexed by JobState
  uint64_t duration_buckets[kDurationBuckets + 1];  // not cumulative; last is +Inf
  uint64_t duration_sum_micros;
  uint64_t duration_count;
};

struct TableCounters {
  uint64_t finished[16];  // indexed by JobState
  uint64_t accepted;
  uint64_t coalesced;
  uint64_t rejected[16];  // indexed by Rejection
};

}  // namespace deploy
