// Text built by appending, kept in pieces of at most 64 KiB instead of one
// growing buffer: what the large answers (GET BASE/jobs, the dashboard) are
// written into.
//
// Why pieces: glibc serves an allocation above its mmap threshold (128 KiB
// at start) with mmap, and freeing it raises the threshold to that size for
// the life of the process. From then on allocations of that size come from
// the heap arenas, which keep them after they are freed: a child that had
// served a few 1,000-job pages kept tens of MiB per arena, across up to 16
// arenas (docs/performance.md, "Fourth round"). Pieces stay below the
// initial threshold, so nothing mod_deploy allocates moves it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace deploy {

class ChunkedText {
 public:
  static constexpr size_t kPiece = 64 * 1024;

  ChunkedText& operator+=(std::string_view text) {
    while (!text.empty()) {
      if (pieces_.empty() || pieces_.back().size() == kPiece) pieces_.emplace_back();
      std::string& last = pieces_.back();
      size_t n = std::min(text.size(), kPiece - last.size());
      last.append(text.substr(0, n));
      text.remove_prefix(n);
      size_ += n;
    }
    return *this;
  }
  ChunkedText& operator+=(char c) { return *this += std::string_view(&c, 1); }

  size_t size() const { return size_; }
  const std::vector<std::string>& pieces() const { return pieces_; }
  // The whole text in one string (tests).
  std::string str() const {
    std::string all;
    for (const std::string& piece : pieces_) all += piece;
    return all;
  }

 private:
  std::vector<std::string> pieces_;
  size_t size_ = 0;
};

}  // namespace deploy
