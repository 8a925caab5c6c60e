// The ids of server-sent events, and what a client's Last-Event-ID (or
// ?since=) may say. An id is only a resume point: one that is malformed
// (a sign, a space, garbage, more than 64 bits) or that names a change the
// table has not reached yet is treated as absent, so the stream starts from
// the beginning rather than skipping what the client never saw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace deploy {

// GET BASE/jobs/ID/events: "CHANGE.OFFSET", the job's last change sent and
// the log bytes sent.
struct JobEventId {
  uint64_t change = 0;
  uint64_t offset = 0;
};
std::string format_job_event_id(const JobEventId& id);
// nullopt unless `text` is two decimal numbers joined by one '.', and
// CHANGE is at most `latest_change`.
std::optional<JobEventId> parse_job_event_id(std::string_view text, uint64_t latest_change);

// GET BASE/events: the table's change counter. nullopt unless `text` is one
// decimal number no greater than `latest_change`.
std::optional<uint64_t> parse_change_event_id(std::string_view text, uint64_t latest_change);

}  // namespace deploy
