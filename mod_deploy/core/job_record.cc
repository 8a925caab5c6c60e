// The record format and its codec (job_record.h).
#include "job_record.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace deploy {

void store_text(char* field, size_t field_size, std::string_view text) {
  size_t n = std::min(text.size(), field_size - 1);
  memcpy(field, text.data(), n);
  memset(field + n, 0, field_size - n);
}

size_t stored_params_size(const Params& params) {
  size_t n = 0;
  for (const auto& [name, value] : params) n += name.size() + 1 + value.size() + 1;
  return n;
}

bool store_params(JobRecord& r, const Params& params) {
  if (stored_params_size(params) > kParamsMax) return false;
  size_t at = 0;
  for (const auto& [name, value] : params) {
    memcpy(r.params + at, name.c_str(), name.size() + 1);
    at += name.size() + 1;
    memcpy(r.params + at, value.c_str(), value.size() + 1);
    at += value.size() + 1;
  }
  memset(r.params + at, 0, kParamsMax - at);
  r.params_size = uint16_t(at);
  return true;
}

Params load_params(const JobRecord& r) {
  Params params;
  size_t size = std::min<size_t>(r.params_size, kParamsMax);
  const char* p = r.params;
  const char* end = r.params + size;
  while (p < end) {
    const char* name_end = static_cast<const char*>(memchr(p, '\0', size_t(end - p)));
    if (!name_end) break;
    const char* value = name_end + 1;
    const char* value_end =
        value < end ? static_cast<const char*>(memchr(value, '\0', size_t(end - value))) : nullptr;
    if (!value_end) break;
    params.emplace_back(std::string(p, name_end), std::string(value, value_end));
    p = value_end + 1;
  }
  return params;
}

Job record_to_job(const JobRecord& r) {
  Job job;
  job.id = r.id;
  job.target.assign(r.target, strnlen(r.target, sizeof r.target));
  job.state = is_valid_state(r.state) ? JobState(r.state) : JobState::lost;
  job.params = load_params(r);
  job.progress = (r.progress >= 0 && r.progress <= 100) ? r.progress : -1;
  if (r.has_stage) job.stage = std::string(r.stage, strnlen(r.stage, sizeof r.stage));
  job.requests = r.requests;
  job.not_before = job.state == JobState::waiting ? r.not_before : 0;
  if (r.has_submitted_by)
    job.submitted_by = std::string(r.submitted_by, strnlen(r.submitted_by, sizeof r.submitted_by));
  job.submitted_at = r.submitted_at;
  job.started_at = r.started_at;
  job.finished_at = r.finished_at;
  if (r.has_exit_code) job.exit_code = r.exit_code;
  if (r.has_signal) job.signal = r.signal;
  job.log_complete = r.log_incomplete == 0;
  job.change_seq = r.change_seq;
  if (r.has_canceled_by)
    job.canceled_by = std::string(r.canceled_by, strnlen(r.canceled_by, sizeof r.canceled_by));
  job.superseded_by = r.superseded_by;
  const size_t count = std::min<size_t>(r.notification_count, kNotificationsMax);
  for (size_t i = 0; i < count; ++i) {
    const NotificationSlot& slot = r.notifications[i];
    Notification n;
    n.state = is_valid_notification_state(slot.state) ? NotificationState(slot.state)
                                                      : NotificationState::failed;
    n.attempts = slot.attempts;
    if (slot.status != 0) n.status = slot.status;
    job.notifications.push_back(n);
  }
  return job;
}

PendingJob pending_job(const JobRecord& r, const std::optional<std::string>& group_by) {
  PendingJob job{r.id, r.target, JobState(r.state), r.submitted_mono, r.not_before_mono, ""};
  // Reading the params costs a copy: only a grouped target needs them.
  if (group_by) job.group = *job_group(load_params(r), group_by);
  return job;
}

void rebase_mono_times(JobRecord& r, const Instant& now) {
  r.submitted_mono = now.mono_of(r.submitted_at);
  r.not_before_mono = r.not_before != 0 ? now.mono_of(r.not_before) : 0;
  r.started_mono = r.started_at != 0 ? now.mono_of(r.started_at) : 0;
  for (NotificationSlot& slot : r.notifications)
    slot.due_mono = slot.due_mono != 0 ? now.mono_of(slot.due_at) : 0;
}

uint64_t record_checksum(const JobRecord& r, size_t size) {
  // FNV-1a over the record with the checksum field taken as zero.
  const auto* bytes = reinterpret_cast<const unsigned char*>(&r);
  uint64_t hash = 1469598103934665603ULL;
  for (size_t i = 0; i < std::min(size, kRecordSize); ++i) {
    bool in_checksum =
        i >= offsetof(JobRecord, checksum) && i < offsetof(JobRecord, checksum) + sizeof r.checksum;
    hash = (hash ^ (in_checksum ? 0 : bytes[i])) * 1099511628211ULL;
  }
  return hash;
}

namespace {

bool text_field_ok(const char* field, size_t size) { return memchr(field, '\0', size) != nullptr; }

bool notifications_ok(const JobRecord& r) {
  if (r.notification_count > kNotificationsMax) return false;
  for (size_t i = 0; i < kNotificationsMax; ++i) {
    const uint8_t state = r.notifications[i].state;
    if (state > uint8_t(DeliveryState::failed)) return false;
    if ((i < r.notification_count) != (state != uint8_t(DeliveryState::unused))) return false;
  }
  return true;
}

// Every check of a record but its checksum.
bool record_fields_ok(const JobRecord& r, uint32_t capacity, size_t slot, size_t params_max) {
  if (capacity == 0 || r.id == 0 || r.id % capacity != slot) return false;
  if (!is_valid_state(r.state)) return false;
  if (r.progress < -1 || r.progress > 100) return false;
  if (r.params_size > params_max) return false;
  if (r.idempotency_key_size > kIdempotencyKeyMax ||
      strnlen(r.idempotency_key, sizeof r.idempotency_key) != r.idempotency_key_size)
    return false;
  return text_field_ok(r.target, sizeof r.target) && r.target[0] != '\0' &&
         text_field_ok(r.submitted_by, sizeof r.submitted_by) &&
         text_field_ok(r.stage, sizeof r.stage) &&
         text_field_ok(r.canceled_by, sizeof r.canceled_by) && notifications_ok(r);
}

}  // namespace

bool record_is_valid_for(const JobRecord& r, uint32_t capacity, size_t slot, uint32_t version) {
  const size_t params_max = version == 1 ? kParamsMaxVersion1 : kParamsMax;
  const size_t checksummed = version >= 3 ? kRecordSize : kRecordSizeVersion2;
  return record_fields_ok(r, capacity, slot, params_max) &&
         r.checksum == record_checksum(r, checksummed);
}

// Makes a valid record of version 1 one of version 2: the params that fit
// the smaller field, then the monotonic times (from the wall times). False
// when some params did not fit.
bool upgrade_from_version1(JobRecord& r, const Instant& now) {
  bool whole = true;
  if (r.params_size > kParamsMax) {
    // The pairs that end before the new limit stay; the rest cannot.
    size_t keep = 0;
    for (size_t at = 0, nuls = 0; at < kParamsMax; ++at)
      if (r.params[at] == '\0' && ++nuls % 2 == 0) keep = at + 1;
    memset(r.params + keep, 0, kParamsMaxVersion1 - keep);
    r.params_size = uint16_t(keep);
    whole = false;
  }
  rebase_mono_times(r, now);
  r.checksum = record_checksum(r);
  return whole;
}

bool record_is_valid(const JobRecord& r, uint32_t capacity, size_t slot) {
  return record_is_valid_for(r, capacity, slot, 3);
}

bool record_is_sound(const JobRecord& r, uint32_t capacity, size_t slot) {
  return record_fields_ok(r, capacity, slot, kParamsMax);
}

}  // namespace deploy
