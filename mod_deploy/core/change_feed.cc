#include "change_feed.h"

#include <algorithm>
#include <utility>

namespace deploy {
ChangeFeed::ChangeFeed(JobStore& store, Render render, Micros refresh_interval, size_t capacity)
    : store_(store),
      render_(std::move(render)),
      refresh_interval_(refresh_interval),
      capacity_(std::max<size_t>(capacity, 1)),
      floor_(store.change_seq()),
      last_seq_(floor_) {}

uint64_t ChangeFeed::floor() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return floor_;
}

uint64_t ChangeFeed::read(uint64_t since, size_t limit, std::vector<Event>* events) {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    Micros now = mono_now();
    if (store_.change_seq() != last_seq_ &&
        (since > last_seq_ || now - refreshed_at_ >= refresh_interval_))
      refresh(now);
    since = std::min(since, last_seq_);
    if (since >= floor_) {
      for (auto it = by_change_.upper_bound(since); it != by_change_.end(); ++it) {
        if (events->size() == limit) return events->empty() ? since : events->back().change_seq;
        events->push_back(Event{it->first, it->second.data, it->second.target});
      }
      return last_seq_;
    }
  }
  return read_table(since, limit, events);
}

uint64_t ChangeFeed::read_table(uint64_t since, size_t limit, std::vector<Event>* events) {
  uint64_t current;
  std::vector<Job> jobs;
  if (!store_.changes_since(since, &jobs, &current).is_ok())
    return since;  // busy: nothing new this time
  if (jobs.size() > limit) {
    jobs.resize(limit);
    current = jobs.empty() ? since : jobs.back().change_seq;
  }
  for (const Job& job : jobs)
    events->push_back(
        Event{job.change_seq, std::make_shared<const std::string>(render_(job)), job.target});
  return current;
}

void ChangeFeed::refresh(Micros now) {
  uint64_t current;
  std::vector<Job> jobs;
  if (!store_.changes_since(last_seq_, &jobs, &current).is_ok())
    return;                   // busy: the feed stays as it was
  if (current < last_seq_) {  // a table started anew: its changes start over
    by_change_.clear();
    by_id_.clear();
    floor_ = last_seq_ = current;
    refreshed_at_ = now;
    return;
  }
  if (jobs.size() > capacity_) {
    // Only the newest capacity_ jobs are kept: every older entry goes, and
    // the feed answers only from the newest dropped change on.
    size_t dropped = jobs.size() - capacity_;
    floor_ = jobs[dropped - 1].change_seq;
    jobs.erase(jobs.begin(), jobs.begin() + ptrdiff_t(dropped));
    by_change_.clear();
    by_id_.clear();
  }
  for (const Job& job : jobs) insert(job, render_(job));
  while (by_change_.size() > capacity_) {
    auto oldest = by_change_.begin();
    floor_ = oldest->first;
    by_id_.erase(oldest->second.id);
    by_change_.erase(oldest);
  }
  last_seq_ = current;
  refreshed_at_ = now;
}

void ChangeFeed::insert(const Job& job, std::string text) {
  auto [it, added] = by_id_.try_emplace(job.id, job.change_seq);
  if (!added) {
    by_change_.erase(it->second);
    it->second = job.change_seq;
  }
  by_change_[job.change_seq] =
      Entry{job.id, std::make_shared<const std::string>(std::move(text)), job.target};
}

}  // namespace deploy
