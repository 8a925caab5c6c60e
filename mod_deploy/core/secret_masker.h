// Masks secrets in a job's output before it is stored anywhere: every
// occurrence of any secret's value becomes "***" (DeploySecretEnv). The
// output arrives in writes of any size, so an occurrence split across two
// writes must be masked too: the masker holds back the tail of what it was
// given for as long as that tail could be the start of a secret, and emits
// it once the next bytes decide (or at finish()).
//
// Overlapping occurrences (of one secret, or of two, or one secret inside
// or a prefix of another) are masked as one "***" spanning all of them, so
// that no byte of any occurrence shows.
//
// Cost: one table lookup per byte (an Aho-Corasick automaton over the
// secrets' bytes, its alphabet reduced to the bytes the secrets use), and
// the copy of the output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deploy {

class SecretMasker {
 public:
  static constexpr std::string_view kMask = "***";

  // Empty secrets are ignored; a masker without secrets passes output through.
  explicit SecretMasker(const std::vector<std::string>& secrets);

  bool empty() const { return longest_ == 0; }

  // The masked output that is final now, for `input` following everything
  // fed before. Bytes that may begin a secret stay held back.
  std::string feed(std::string_view input);
  // The end of the output: everything still held back, masked.
  std::string finish();
  // Bytes held back now (at most the longest secret's length less one,
  // unless an occurrence is still open).
  size_t held() const { return held_.size(); }

 private:
  struct Range {
    uint64_t begin, end;  // absolute output offsets
  };
  void build(const std::vector<std::string>& secrets);
  // Masked held_[0, upto - base_), dropping it from held_.
  std::string emit(uint64_t upto);

  // The automaton: state * classes_ + class -> state; depth and the longest
  // secret ending at each state.
  uint16_t class_of_[256] = {};
  bool begins_[256] = {};  // the byte takes the automaton out of its root state
  uint32_t classes_ = 1;   // class 0: bytes no secret has (unused when all 256 appear)
  std::vector<uint32_t> next_;
  std::vector<uint32_t> depth_;
  std::vector<uint32_t> match_;
  size_t longest_ = 0;

  uint32_t state_ = 0;
  uint64_t position_ = 0;  // bytes fed so far
  uint64_t base_ = 0;      // absolute offset of held_[0]
  std::string held_;
  std::vector<Range> ranges_;  // sorted, disjoint, inside held_
};

}  // namespace deploy
