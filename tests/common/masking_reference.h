// The naive model of SecretMasker that its unit tests and its fuzz target
// compare it with: every byte of every occurrence of every secret marked,
// each run of overlapping occurrences written as one "***" (occurrences that
// only touch stay separate masks).
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace deploy::test {

inline std::string reference_mask(const std::vector<std::string>& secrets,
                                  const std::string& text) {
  std::vector<std::pair<size_t, size_t>> found;
  for (const std::string& s : secrets) {
    if (s.empty()) continue;
    for (size_t at = text.find(s); at != std::string::npos; at = text.find(s, at + 1))
      found.push_back({at, at + s.size()});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::pair<size_t, size_t>> merged;
  for (auto r : found)
    if (!merged.empty() && r.first < merged.back().second)
      merged.back().second = std::max(merged.back().second, r.second);
    else
      merged.push_back(r);
  std::string out;
  size_t at = 0;
  for (auto [begin, end] : merged) {
    out += text.substr(at, begin - at) + "***";
    at = end;
  }
  return out + text.substr(at);
}

}  // namespace deploy::test
