// The masker of DeploySecretEnv values in job output: every occurrence, in
// writes of any size, overlapping ones as one mask, and nothing else changed.
#include "secret_masker.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "masking_reference.h"
#include "unit_test.h"

namespace {

using deploy::SecretMasker;
using deploy::test::reference_mask;

// Feeds `text` in pieces of `step` bytes (0: at once) and finishes.
std::string mask(const std::vector<std::string>& secrets, const std::string& text,
                 size_t step = 0) {
  SecretMasker masker(secrets);
  std::string out;
  if (step == 0) step = text.size() ? text.size() : 1;
  for (size_t i = 0; i < text.size(); i += step) out += masker.feed(text.substr(i, step));
  return out + masker.finish();
}

void assert_masked(const std::vector<std::string>& secrets, const std::string& text,
                   const std::string& expected, size_t step = 0) {
  const std::string got = mask(secrets, text, step);
  ck_assert_msg(got == expected, "'%s' in pieces of %zu: got '%s', want '%s'", text.c_str(), step,
                got.c_str(), expected.c_str());
}

START_TEST(every_occurrence_is_masked_and_nothing_else_changes) {
  assert_masked({"hunter22"}, "pw=hunter22 and hunter22\n", "pw=*** and ***\n");
  assert_masked({"hunter22"}, "no secret here\n", "no secret here\n");
  assert_masked({}, "as is", "as is");
  assert_masked({"hunter22"}, "", "");
}
END_TEST

START_TEST(a_secret_split_across_writes_is_masked) {
  const std::string text = "token: s3cr3t-value, again s3cr3t-value.";
  for (size_t step = 1; step <= text.size(); ++step)
    assert_masked({"s3cr3t-value"}, text, "token: ***, again ***.", step);
}
END_TEST

START_TEST(held_back_output_is_only_what_could_begin_a_secret) {
  SecretMasker masker({"abcdef"});
  ck_assert(masker.feed("xyz ab") == "xyz ");
  ck_assert_uint_eq(masker.held(), 2);
  ck_assert(masker.feed("cX") == "abcX");
  ck_assert_uint_eq(masker.held(), 0);
  ck_assert(masker.feed("abcde").empty());
  ck_assert(masker.finish() == "abcde");
}
END_TEST

START_TEST(overlapping_secrets_are_masked_as_one) {
  assert_masked({"abcd", "cdef"}, "xabcdefx", "x***x");
  assert_masked({"aaaa"}, "aaaaaa", "***");
  assert_masked({"abab"}, "abababab", "***");
  assert_masked({"abcd"}, "abcdabcd", "******");
}
END_TEST

START_TEST(a_secret_that_is_a_prefix_or_part_of_another_is_masked) {
  assert_masked({"pass", "password1"}, "password1 pass passwor", "*** *** ***wor");
  assert_masked({"password1", "word"}, "password1 sword", "*** s***");
  for (size_t step = 1; step < 6; ++step)
    assert_masked({"pass", "password1"}, "xpassword1y", "x***y", step);
}
END_TEST

START_TEST(binary_and_all_byte_values_are_handled) {
  std::string every;
  for (int c = 0; c < 256; ++c) every += char(c);
  const std::string secret = every.substr(250) + every.substr(0, 6);
  const std::string text = every + secret + every;
  ck_assert(mask({secret, every}, text) == reference_mask({secret, every}, text));
  ck_assert(mask({secret, every}, text, 7) == "*********");
  ck_assert(mask({std::string("\0\xff\0\xff", 4)}, std::string("a\0\xff\0\xff"
                                                               "b",
                                                               6)) == "a***b");
}
END_TEST

START_TEST(random_texts_and_pieces_agree_with_the_reference) {
  std::mt19937 random(20261202);
  for (int round = 0; round < 2000; ++round) {
    const char alphabet[] = "abc";
    auto word = [&](size_t length) {
      std::string w;
      for (size_t i = 0; i < length; ++i) w += alphabet[random() % 3];
      return w;
    };
    std::vector<std::string> secrets;
    for (int i = 0, n = 1 + int(random() % 3); i < n; ++i)
      secrets.push_back(word(4 + random() % 4));
    const std::string text = word(random() % 60);
    const size_t step = 1 + random() % 7;
    const std::string got = mask(secrets, text, step);
    const std::string want = reference_mask(secrets, text);
    ck_assert_msg(got == want, "text %s: got %s, want %s", text.c_str(), got.c_str(), want.c_str());
  }
}
END_TEST

Suite* secret_masker_suite() {
  Suite* suite = suite_create("secret_masker");
  TCase* tc = tcase_create("mask");
  tcase_add_test(tc, every_occurrence_is_masked_and_nothing_else_changes);
  tcase_add_test(tc, a_secret_split_across_writes_is_masked);
  tcase_add_test(tc, held_back_output_is_only_what_could_begin_a_secret);
  tcase_add_test(tc, overlapping_secrets_are_masked_as_one);
  tcase_add_test(tc, a_secret_that_is_a_prefix_or_part_of_another_is_masked);
  tcase_add_test(tc, binary_and_all_byte_values_are_handled);
  tcase_add_test(tc, random_texts_and_pieces_agree_with_the_reference);
  suite_add_tcase(suite, tc);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(secret_masker_suite);
