// What the fuzz targets share: the input as text, cut into fields, and a
// check that stops the run (a crash libFuzzer records) when a promise of the
// code under test does not hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace deploy::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// The first `count - 1` fields end at a newline; the last one takes the rest
// of the input, newlines included. Missing fields are empty.
inline std::vector<std::string_view> split_fields(std::string_view input, size_t count) {
  std::vector<std::string_view> fields;
  while (fields.size() + 1 < count) {
    const size_t newline = input.find('\n');
    fields.push_back(input.substr(0, newline));
    input = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  }
  fields.push_back(input);
  return fields;
}

#define FUZZ_CHECK(condition)                                                        \
  do {                                                                               \
    if (!(condition)) {                                                              \
      std::fprintf(stderr, "%s:%d: promise broken: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

}  // namespace deploy::fuzz
