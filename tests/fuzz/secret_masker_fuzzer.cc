// Job output through the DeploySecretEnv masker: the input names up to three
// secrets (one per line, then the text), and the text is fed in pieces whose
// sizes the input's first byte picks. The masked output must equal a naive
// reference (every occurrence marked, overlapping ones merged into one
// "***"), whatever the pieces, and nothing may stay held back at the end.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_support.h"
#include "masking_reference.h"
#include "secret_masker.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 16;
  auto fields = deploy::fuzz::split_fields(deploy::fuzz::as_text(data + 1, size - 1), 4);
  std::vector<std::string> secrets;
  for (size_t i = 0; i < 3; ++i)
    if (!fields[i].empty()) secrets.emplace_back(fields[i]);
  const std::string text(fields[3]);

  deploy::SecretMasker masker(secrets);
  std::string out;
  for (size_t i = 0; i < text.size(); i += piece) out += masker.feed(text.substr(i, piece));
  out += masker.finish();
  FUZZ_CHECK(masker.held() == 0);
  FUZZ_CHECK(out == deploy::test::reference_mask(secrets, text));
  return 0;
}
