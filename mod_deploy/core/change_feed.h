// What changed in the job table, read once for every event stream of one
// process. GET BASE/events streams used to take the table lock and render
// each changed job themselves: with hundreds of watchers every change was
// rendered hundreds of times, and a submission waited for the lock behind
// them (docs/performance.md). A feed takes the lock at most once per
// refresh interval, renders each changed job once, and keeps the text of the
// latest state of the jobs that changed most recently for the streams to
// copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "job.h"
#include "job_store.h"

namespace deploy {

class ChangeFeed {
 public:
  using Render = std::function<std::string(const Job&)>;

  struct Event {
    uint64_t change_seq;  // the job's change that this is the state after
    std::shared_ptr<const std::string> data;
    std::string target;  // the job's, for streams that show only some targets
  };

  // Starts at the table's change counter as it is now: changes before it
  // are not in the feed. Keeps at most `capacity` jobs; refreshes from the
  // table at most once per `refresh_interval` (but see read).
  ChangeFeed(JobStore& store, Render render, Micros refresh_interval, size_t capacity);
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // Every job that changed after change `since`, once, in its latest state,
  // in the order of those changes; at most `limit` of them. Returns the
  // change counter the answer is complete up to: the next read's `since`.
  // A `since` ahead of the feed is first caught up with the table; one ahead
  // of the table (a forged id, a table started anew) reads from the table's
  // counter. A `since` the feed no longer reaches back to (more than
  // `capacity` jobs changed after it) is answered from the table, for this
  // caller alone.
  uint64_t read(uint64_t since, size_t limit, std::vector<Event>* events);

  // The oldest change the feed can answer from (tests, logs).
  uint64_t floor() const;

 private:
  void refresh(Micros now);
  uint64_t read_table(uint64_t since, size_t limit, std::vector<Event>* events);
  void insert(const Job& job, std::string text);

  JobStore& store_;
  const Render render_;
  const Micros refresh_interval_;
  const size_t capacity_;

  mutable std::mutex mutex_;
  uint64_t floor_;     // the feed holds every job changed after floor_ ...
  uint64_t last_seq_;  // ... up to last_seq_
  // Monotonic; long ago at first, so that the first read refreshes.
  Micros refreshed_at_ = INT64_MIN / 2;
  struct Entry {
    uint64_t id;
    std::shared_ptr<const std::string> data;
    std::string target;
  };
  std::map<uint64_t, Entry> by_change_;           // change_seq -> latest state of a job
  std::unordered_map<uint64_t, uint64_t> by_id_;  // job id -> its key in by_change_
};

}  // namespace deploy
