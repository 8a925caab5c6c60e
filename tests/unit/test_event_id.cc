// What a Last-Event-ID may say: a well-formed id no newer than the table
// resumes; anything else is as if the client had sent none.
#include "event_id.h"

#include "unit_test.h"

namespace {

using deploy::parse_change_event_id;
using deploy::parse_job_event_id;

START_TEST(job_event_id_round_trips) {
  auto id = parse_job_event_id(deploy::format_job_event_id({41, 1234}), 100);
  ck_assert(id.has_value());
  ck_assert_uint_eq(id->change, 41);
  ck_assert_uint_eq(id->offset, 1234);
  ck_assert(parse_job_event_id("0.0", 0).has_value());
}
END_TEST

START_TEST(negative_garbage_and_overflowing_job_event_ids_are_absent) {
  for (const char* text :
       {"-1.-1", "-1.0", "1.-1", "", ".", "1.", ".1", "1", "1.2.3", "a.b", " 1.2", "1.2 ", "+1.2",
        "1.18446744073709551616", "18446744073709551616.0", "0x10.0"})
    ck_assert_msg(!parse_job_event_id(text, 1000).has_value(), "'%s' was accepted", text);
}
END_TEST

START_TEST(job_event_id_newer_than_the_table_is_absent) {
  ck_assert(parse_job_event_id("100.5", 100).has_value());
  ck_assert(!parse_job_event_id("101.5", 100).has_value());
  ck_assert(!parse_job_event_id("18446744073709551615.0", 100).has_value());
}
END_TEST

START_TEST(change_event_ids_are_plain_numbers_no_newer_than_the_table) {
  ck_assert_uint_eq(*parse_change_event_id("7", 7), 7);
  ck_assert(!parse_change_event_id("8", 7).has_value());
  for (const char* text : {"-1", "", "1.5", "abc", " 3", "99999999999999999999"})
    ck_assert_msg(!parse_change_event_id(text, 1000).has_value(), "'%s' was accepted", text);
}
END_TEST

Suite* event_id_suite() {
  Suite* suite = suite_create("event_id");
  TCase* tc = tcase_create("parse");
  tcase_add_test(tc, job_event_id_round_trips);
  tcase_add_test(tc, negative_garbage_and_overflowing_job_event_ids_are_absent);
  tcase_add_test(tc, job_event_id_newer_than_the_table_is_absent);
  tcase_add_test(tc, change_event_ids_are_plain_numbers_no_newer_than_the_table);
  suite_add_tcase(suite, tc);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(event_id_suite);
