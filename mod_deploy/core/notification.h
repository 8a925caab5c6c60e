// Completion notifications (DeployNotify): the state of one URL's delivery
// for one job, and the retry schedule. Pure: every time is an argument (on
// the monotonic clock), nothing here sends, sleeps or reads a clock. The
// deliverer (httpd/deploy_notifier.h) makes the attempts; the job store
// keeps each delivery's state with its job (job_store.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace deploy {

using Micros = int64_t;  // as job.h, which includes this header

enum class NotificationState : uint8_t {
  pending = 1,  // the job is unfinished, or an attempt is due or under way
  delivered,    // a 2xx answered: never sent again
  failed,       // every attempt failed: given up
};

std::string_view notification_state_name(NotificationState s);
bool is_valid_notification_state(uint8_t raw);

// One URL's delivery for one job, as the job JSON shows it.
struct Notification {
  NotificationState state = NotificationState::pending;
  uint32_t attempts = 0;
  std::optional<int> status;  // the HTTP status of the last attempt; none: no answer
};

constexpr Micros kNotificationSecond = 1000000;
// An attempt that has no answer after this long failed.
constexpr Micros kNotificationAnswerLimit = 10 * kNotificationSecond;
// The waits before the retries: after the first failed attempt, after the
// second, … After the last one, one more failure gives up.
constexpr Micros kNotificationRetryDelays[] = {5 * kNotificationSecond, 30 * kNotificationSecond,
                                               120 * kNotificationSecond, 600 * kNotificationSecond,
                                               1800 * kNotificationSecond};
constexpr uint32_t kNotificationAttemptsMax =
    1 + uint32_t(sizeof kNotificationRetryDelays / sizeof kNotificationRetryDelays[0]);
// How long a deliverer holds a delivery it claimed for an attempt: no other
// one (another node, or the next scheduler process after a crash) takes it
// before. Longer than an attempt can last.
constexpr Micros kNotificationClaimHold = 6 * kNotificationAnswerLimit;

// What follows an attempt.
struct NotificationDecision {
  NotificationState state = NotificationState::pending;
  Micros retry_at = 0;  // pending: when the next attempt is due (monotonic)
};

// Attempt number `attempt` (1 for the first) ended at `now` with `status`
// (none: no connection or no answer within kNotificationAnswerLimit): a 2xx
// is delivered; anything else is retried after the delay of the schedule,
// or failed when it was the last attempt. `divisor` shortens every delay
// (the tests' hook, docs/architecture.md); 1 in production.
NotificationDecision after_attempt(uint32_t attempt, std::optional<int> status, Micros now,
                                   uint32_t divisor = 1);

// X-Deploy-Delivery: the same on every attempt for one job and URL (its
// index in configuration order), different for every other pair of one
// store.
std::string delivery_id(uint64_t job_id, size_t url_index);

}  // namespace deploy
