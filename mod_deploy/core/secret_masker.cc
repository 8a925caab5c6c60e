#include "secret_masker.h"

#include <algorithm>
#include <cstddef>
#include <deque>

namespace deploy {

SecretMasker::SecretMasker(const std::vector<std::string>& secrets) { build(secrets); }

void SecretMasker::build(const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets)
    for (unsigned char c : s)
      if (class_of_[c] == 0) class_of_[c] = uint16_t(classes_++);

  // The trie. State 0 is the root; goto entries of 0 mean "none yet".
  std::vector<std::vector<uint32_t>> go(1, std::vector<uint32_t>(classes_, 0));
  depth_.assign(1, 0);
  match_.assign(1, 0);
  for (const std::string& s : secrets) {
    if (s.empty()) continue;
    longest_ = std::max(longest_, s.size());
    uint32_t state = 0;
    for (unsigned char c : s) {
      uint32_t& to = go[state][class_of_[c]];
      if (to == 0) {
        to = uint32_t(go.size());
        go.emplace_back(classes_, 0);
        depth_.push_back(depth_[state] + 1);
        match_.push_back(0);
      }
      state = to;
    }
    match_[state] = uint32_t(s.size());
  }

  // Breadth first: failure links become full transitions, and each state's
  // longest match includes those of its failure chain.
  std::vector<uint32_t> fail(go.size(), 0);
  std::deque<uint32_t> queue;
  for (uint32_t c = 0; c < classes_; ++c)
    if (go[0][c] != 0) queue.push_back(go[0][c]);
  while (!queue.empty()) {
    const uint32_t state = queue.front();
    queue.pop_front();
    match_[state] = std::max(match_[state], match_[fail[state]]);
    for (uint32_t c = 0; c < classes_; ++c) {
      const uint32_t to = go[state][c];
      if (to == 0) {
        go[state][c] = go[fail[state]][c];
        continue;
      }
      fail[to] = go[fail[state]][c];
      queue.push_back(to);
    }
  }
  for (int c = 0; c < 256; ++c) begins_[c] = go[0][class_of_[c]] != 0;
  next_.resize(go.size() * classes_);
  for (size_t s = 0; s < go.size(); ++s)
    std::copy(go[s].begin(), go[s].end(), next_.begin() + std::ptrdiff_t(s * classes_));
}

std::string SecretMasker::feed(std::string_view input) {
  if (longest_ == 0) return std::string(input);
  held_.append(input);
  const auto* at = reinterpret_cast<const unsigned char*>(input.data());
  const auto* const end = at + input.size();
  while (at != end) {
    if (state_ == 0) {
      // Most output begins no secret: skip it without walking the
      // automaton (the checks are independent of each other, unlike the
      // chain of transitions).
      const auto* from = at;
      while (at != end && !begins_[*at]) ++at;
      position_ += uint64_t(at - from);
      if (at == end) break;
    }
    state_ = next_[size_t(state_) * classes_ + class_of_[*at++]];
    ++position_;
    if (const uint32_t length = match_[state_]) {
      // A longer secret ending here may begin before occurrences found
      // earlier: it swallows every range it overlaps.
      Range found{position_ - length, position_};
      while (!ranges_.empty() && found.begin < ranges_.back().end) {
        found.begin = std::min(found.begin, ranges_.back().begin);
        found.end = std::max(found.end, ranges_.back().end);
        ranges_.pop_back();
      }
      ranges_.push_back(found);
    }
  }
  // A secret that has begun but not ended starts at or after
  // position_ - depth; an occurrence that reaches past that point may still
  // merge with it, so it is held back whole.
  uint64_t safe = position_ - depth_[state_];
  for (auto r = ranges_.rbegin(); r != ranges_.rend() && r->end > safe; ++r)
    safe = std::min(safe, r->begin);
  return emit(safe);
}

std::string SecretMasker::finish() {
  if (longest_ == 0) return "";
  std::string out = emit(position_);
  state_ = 0;
  return out;
}

std::string SecretMasker::emit(uint64_t upto) {
  std::string out;
  out.reserve(size_t(upto - base_));
  uint64_t at = base_;
  size_t done = 0;
  for (; done < ranges_.size() && ranges_[done].end <= upto; ++done) {
    const Range& r = ranges_[done];
    out.append(held_, size_t(at - base_), size_t(r.begin - at));
    out.append(kMask);
    at = r.end;
  }
  out.append(held_, size_t(at - base_), size_t(upto - at));
  ranges_.erase(ranges_.begin(), ranges_.begin() + std::ptrdiff_t(done));
  held_.erase(0, size_t(upto - base_));
  base_ = upto;
  return out;
}

}  // namespace deploy
