#include "notification.h"

#include <algorithm>

namespace deploy {

std::string_view notification_state_name(NotificationState s) {
  switch (s) {
    case NotificationState::pending:
      return "pending";
    case NotificationState::delivered:
      return "delivered";
    case NotificationState::failed:
      return "failed";
  }
  return "pending";
}

bool is_valid_notification_state(uint8_t raw) {
  return raw >= uint8_t(NotificationState::pending) && raw <= uint8_t(NotificationState::failed);
}

NotificationDecision after_attempt(uint32_t attempt, std::optional<int> status, Micros now,
                                   uint32_t divisor) {
  if (status && *status >= 200 && *status <= 299) return {NotificationState::delivered, 0};
  if (attempt == 0 || attempt >= kNotificationAttemptsMax) return {NotificationState::failed, 0};
  const Micros delay = kNotificationRetryDelays[attempt - 1] / std::max<uint32_t>(divisor, 1);
  return {NotificationState::pending, now + delay};
}

std::string delivery_id(uint64_t job_id, size_t url_index) {
  return std::to_string(job_id) + "-" + std::to_string(url_index + 1);
}

}  // namespace deploy
