// Durations (httpd's Timeout convention) and sizes of directives.
#include "duration.h"

#include <jansson.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "unit_test.h"

using deploy::format_duration;
using deploy::parse_duration;
using deploy::parse_size;

namespace {

void assert_duration(const char* text, int64_t micros) {
  const auto parsed = parse_duration(text);
  ck_assert_msg(parsed.has_value(), "'%s' should parse", text);
  ck_assert_int_eq(*parsed, micros);
}

void assert_no_duration(const char* text) {
  ck_assert_msg(!parse_duration(text).has_value(), "'%s' should be refused", text);
}

void assert_size(const char* text, uint64_t bytes) {
  const auto parsed = parse_size(text);
  ck_assert_msg(parsed.has_value(), "'%s' should parse", text);
  ck_assert_uint_eq(*parsed, bytes);
}

void assert_no_size(const char* text) {
  ck_assert_msg(!parse_size(text).has_value(), "'%s' should be refused", text);
}

START_TEST(bare_number_is_seconds) {
  assert_duration("300", 300'000'000);
  assert_duration("0", 0);
}
END_TEST

START_TEST(each_suffix_scales_to_microseconds) {
  assert_duration("250ms", 250'000);
  assert_duration("10s", 10'000'000);
  assert_duration("5mi", 300'000'000);
  assert_duration("2h", 7'200'000'000);
}
END_TEST

START_TEST(malformed_durations_are_refused) {
  assert_no_duration("");
  assert_no_duration("5x");
  assert_no_duration("-1");
  assert_no_duration("+1");
  assert_no_duration("1.5");
  assert_no_duration("s");
  assert_no_duration("5m");
  assert_no_duration("5min");
  assert_no_duration("5S");
  assert_no_duration(" 5");
  assert_no_duration("5 s");
  assert_no_duration("5s ");
}
END_TEST

START_TEST(overflowing_durations_are_refused) {
  // INT64_MAX microseconds is 9223372036854 seconds and 775807 microseconds.
  assert_duration("9223372036854", 9'223'372'036'854'000'000);
  assert_no_duration("9223372036855");
  assert_no_duration("3000000000h");
  assert_no_duration("99999999999999999999999");
}
END_TEST

START_TEST(bare_size_is_bytes) { assert_size("65536", 65536); }
END_TEST

START_TEST(size_suffixes_are_powers_of_1024_in_either_case) {
  assert_size("64k", 64 * 1024);
  assert_size("64K", 64 * 1024);
  assert_size("2m", 2 * 1024 * 1024);
  assert_size("2M", 2 * 1024 * 1024);
  assert_size("1g", uint64_t{1} << 30);
  assert_size("1G", uint64_t{1} << 30);
}
END_TEST

START_TEST(malformed_sizes_are_refused) {
  assert_no_size("");
  assert_no_size("k");
  assert_no_size("64kb");
  assert_no_size("64t");
  assert_no_size("-1");
  assert_no_size("1.5k");
  assert_no_size(" 64k");
}
END_TEST

START_TEST(overflowing_sizes_are_refused) {
  assert_size("18446744073709551615", UINT64_MAX);
  assert_no_size("18446744073709551616");
  assert_no_size("17179869184g");  // 2^34 GiB = 2^64 bytes
  assert_size("17179869183g", uint64_t{17179869183} << 30);
}
END_TEST

// tests/unit/duration_cases.json: [seconds, text] pairs, the same table the
// script's test (tests/unit/js/dashboard_view.test.mjs) reads.
START_TEST(durations_read_as_the_shared_table_of_cases_says) {
  json_error_t error;
  json_t* cases = json_load_file(DEPLOY_DURATION_CASES, 0, &error);
  ck_assert_msg(cases && json_is_array(cases), "%s: %s", DEPLOY_DURATION_CASES, error.text);
  ck_assert_int_ge(json_array_size(cases), 10);
  size_t i;
  json_t* item;
  json_array_foreach(cases, i, item) {
    const json_t* seconds = json_array_get(item, 0);
    const char* text = json_string_value(json_array_get(item, 1));
    ck_assert_msg(json_is_number(seconds) && text, "case %zu is not [seconds, text]", i);
    const auto micros = static_cast<int64_t>(std::llround(json_number_value(seconds) * 1e6));
    const std::string formatted = format_duration(micros);
    ck_assert_str_eq(formatted.c_str(), text);
  }
  json_decref(cases);
}
END_TEST

START_TEST(huge_durations_keep_counting_hours) {
  const std::string formatted = format_duration(INT64_MAX);
  ck_assert_str_eq(formatted.c_str(), "2562047788h 00m 54s");
}
END_TEST

// What configtest says of a range is read back as the range's bounds.
START_TEST(written_durations_and_sizes_read_back_as_themselves) {
  const std::pair<deploy::Micros, const char*> durations[] = {{0, "0"},
                                                              {500'000, "500ms"},
                                                              {15'000'000, "15s"},
                                                              {90'000'000, "90s"},
                                                              {300'000'000, "5mi"},
                                                              {3'600'000'000, "1h"},
                                                              {5'400'000'000, "90mi"}};
  for (const auto& [micros, text] : durations) {
    const std::string written = deploy::written_duration(micros);
    ck_assert_str_eq(written.c_str(), text);
    ck_assert(deploy::parse_duration(written) == micros);
  }
  const std::pair<uint64_t, const char*> sizes[] = {
      {0, "0"}, {1, "1"}, {1536, "1536"}, {65536, "64k"}, {64ULL << 20, "64m"}, {3ULL << 30, "3g"}};
  for (const auto& [bytes, text] : sizes) {
    const std::string written = deploy::written_size(bytes);
    ck_assert_str_eq(written.c_str(), text);
    ck_assert(deploy::parse_size(written) == bytes);
  }
}
END_TEST

Suite* duration_suite() {
  Suite* suite = suite_create("duration");
  TCase* durations = tcase_create("durations");
  tcase_add_test(durations, bare_number_is_seconds);
  tcase_add_test(durations, each_suffix_scales_to_microseconds);
  tcase_add_test(durations, malformed_durations_are_refused);
  tcase_add_test(durations, overflowing_durations_are_refused);
  suite_add_tcase(suite, durations);
  TCase* sizes = tcase_create("sizes");
  tcase_add_test(sizes, bare_size_is_bytes);
  tcase_add_test(sizes, size_suffixes_are_powers_of_1024_in_either_case);
  tcase_add_test(sizes, malformed_sizes_are_refused);
  tcase_add_test(sizes, overflowing_sizes_are_refused);
  suite_add_tcase(suite, sizes);
  TCase* display = tcase_create("display");
  tcase_add_test(display, durations_read_as_the_shared_table_of_cases_says);
  tcase_add_test(display, huge_durations_keep_counting_hours);
  tcase_add_test(display, written_durations_and_sizes_read_back_as_themselves);
  suite_add_tcase(suite, display);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(duration_suite);
