// The counters of ?auto and /metrics, kept in the table's header
// (job_counters.h).
#include "job_table.h"
#include "table_file.h"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace deploy {
namespace table_file {

// The statistics of `target`, claiming a free entry for a new name; nullptr
// when every entry is taken (the counters overall still count).
TargetStats* target_stats(TableHeader& h, const char* target) {
  for (TargetStats& stats : h.targets) {
    if (stats.target[0] == '\0') {
      store_text(stats.target, sizeof stats.target, target);
      return &stats;
    }
    if (strncmp(stats.target, target, sizeof stats.target) == 0) return &stats;
  }
  return nullptr;
}

}  // namespace table_file

using namespace table_file;

namespace {

constexpr std::string_view kRejectionNames[] = {"not_found",
                                                "method_not_allowed",
                                                "bad_request",
                                                "invalid_param",
                                                "unsupported_media_type",
                                                "too_large",
                                                "bad_signature",
                                                "cross_origin",
                                                "queue_full",
                                                "internal",
                                                "store_full",
                                                "busy"};
static_assert(std::size(kRejectionNames) == size_t(Rejection::count_));

}  // namespace

std::string_view rejection_name(Rejection r) { return kRejectionNames[size_t(r)]; }

std::optional<Rejection> rejection_from_code(std::string_view code) {
  for (size_t i = 0; i < std::size(kRejectionNames); ++i)
    if (kRejectionNames[i] == code) return Rejection(i);
  return std::nullopt;
}

void JobTable::Lock::finish(JobRecord* r, JobState state, const Instant& now) {
  TableHeader& h = header();
  r->state = uint8_t(state);
  r->finished_at = now.wall;
  // Its pending notifications are due now (the deliverer's, notification.h).
  for (size_t i = 0; i < std::min<size_t>(r->notification_count, kNotificationsMax); ++i) {
    NotificationSlot& slot = r->notifications[i];
    if (slot.state != uint8_t(DeliveryState::pending)) continue;
    slot.due_mono = now.mono;
    slot.due_at = now.wall;
  }
  h.counters.finished[uint8_t(state)]++;
  if (TargetStats* stats = target_stats(h, r->target)) {
    stats->finished[uint8_t(state)]++;
    int64_t& last_success = h.target_last_success[stats - h.targets];
    if (state == JobState::succeeded && now.wall > last_success) last_success = now.wall;
    if (r->started_at > 0 && now.mono >= r->started_mono) {
      Micros duration = now.mono - r->started_mono;
      size_t bucket = 0;
      while (bucket < kDurationBuckets && duration > kDurationBucketBounds[bucket]) ++bucket;
      stats->duration_buckets[bucket]++;
      stats->duration_sum_micros += uint64_t(duration);
      stats->duration_count++;
    }
  }
  commit(r);
}

void JobTable::Lock::count_rejection(Rejection why) {
  header().counters.rejected[uint8_t(why)]++;
  note_change();
}

}  // namespace deploy
