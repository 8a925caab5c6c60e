// The shared text helpers, UTF-8 repair above all: everything shown or
// stored from outside passes through it.
#include "text.h"

#include <string>

#include "unit_test.h"

using deploy::valid_utf8;

namespace {

constexpr const char* kReplacement = "\xEF\xBF\xBD";

void assert_repaired(const std::string& input, const std::string& expected) {
  ck_assert_msg(valid_utf8(input) == expected, "repair of %zu bytes gave the wrong text",
                input.size());
}

START_TEST(valid_utf8_is_kept_as_is) {
  const std::string text = "ascii \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\x80 \xF4\x8F\xBF\xBF";
  assert_repaired(text, text);
  assert_repaired(std::string("a\0b", 3), std::string("a\0b", 3));
}
END_TEST

START_TEST(stray_and_impossible_bytes_become_one_replacement_each) {
  assert_repaired(
      "a\x80"
      "b",
      std::string("a") + kReplacement + "b");
  assert_repaired("\xFF\xFE", std::string(kReplacement) + kReplacement);
  assert_repaired("\xC0\xAF", std::string(kReplacement) + kReplacement);
}
END_TEST

START_TEST(truncated_sequence_becomes_one_replacement) {
  assert_repaired("\xE2\x82", kReplacement);
  assert_repaired(
      "\xF0\x9F\x9A"
      "x",
      std::string(kReplacement) + "x");
}
END_TEST

START_TEST(overlong_surrogate_and_too_large_forms_are_invalid) {
  // Overlong '/', a UTF-16 surrogate and U+110000: the lead byte is refused
  // with the second one, then the rest are stray continuation bytes.
  assert_repaired("\xE0\x80\xAF", std::string(kReplacement) + kReplacement + kReplacement);
  assert_repaired("\xED\xA0\x80", std::string(kReplacement) + kReplacement + kReplacement);
  assert_repaired("\xF4\x90\x80\x80",
                  std::string(kReplacement) + kReplacement + kReplacement + kReplacement);
}
END_TEST

START_TEST(decimal_parse_refuses_signs_spaces_and_overflow) {
  ck_assert_uint_eq(*deploy::parse_decimal("0"), 0);
  ck_assert_uint_eq(*deploy::parse_decimal("18446744073709551615"), UINT64_MAX);
  ck_assert(!deploy::parse_decimal("18446744073709551616").has_value());
  ck_assert(!deploy::parse_decimal("").has_value());
  ck_assert(!deploy::parse_decimal("+1").has_value());
  ck_assert(!deploy::parse_decimal("1 ").has_value());
}
END_TEST

START_TEST(case_insensitive_compare_is_ascii_only) {
  ck_assert(deploy::equals_ignoring_case("Application/JSON", "application/json"));
  ck_assert(!deploy::equals_ignoring_case("application/json", "application/jsonx"));
  ck_assert(!deploy::equals_ignoring_case("\xC3\x89", "\xC3\xA9"));
}
END_TEST

Suite* text_suite() {
  Suite* suite = suite_create("text");
  TCase* utf8 = tcase_create("utf8");
  tcase_add_test(utf8, valid_utf8_is_kept_as_is);
  tcase_add_test(utf8, stray_and_impossible_bytes_become_one_replacement_each);
  tcase_add_test(utf8, truncated_sequence_becomes_one_replacement);
  tcase_add_test(utf8, overlong_surrogate_and_too_large_forms_are_invalid);
  suite_add_tcase(suite, utf8);
  TCase* ascii = tcase_create("ascii");
  tcase_add_test(ascii, decimal_parse_refuses_signs_spaces_and_overflow);
  tcase_add_test(ascii, case_insensitive_compare_is_ascii_only);
  suite_add_tcase(suite, ascii);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(text_suite);
