// The JSON of jobs and errors, as SPEC.md "A job" spells it.
#include "job_json.h"

#include <jansson.h>

#include <string>

#include "unit_test.h"

using deploy::Job;
using deploy::JobState;
using deploy::NotificationState;

namespace {

// 2026-11-21T10:00:00Z
constexpr deploy::Micros kExampleSecond = 1'795'255'200'000'000;

Job running_job() {
  Job job;
  job.id = 42;
  job.target = "webapp";
  job.state = JobState::running;
  job.params = {{"version", "1.2.3"}};
  job.progress = 40;
  job.stage = "Provisioning";
  job.stages = {{"Create VM", kExampleSecond + 1'000'000, kExampleSecond + 31'500'000},
                {"Provisioning", kExampleSecond + 31'500'000, 0}};
  job.outputs = {{"address", "10.0.0.7"}};
  job.requests = 1;
  job.submitted_by = "alice";
  job.submitted_at = kExampleSecond + 123'000;
  job.started_at = kExampleSecond + 1'000'000;
  job.node = "web1";
  return job;
}

// The job's JSON as a client reads it: a new reference.
json_t* parsed(const Job& job) {
  const std::string text = deploy::job_json(job, "/deploy");
  return json_loadb(text.data(), text.size(), 0, nullptr);
}

// True when jansson can read `text` back: output must always be valid JSON.
bool is_valid_json(const std::string& text) {
  json_error_t error;
  json_t* value = json_loads(text.c_str(), 0, &error);
  if (value == nullptr) return false;
  json_decref(value);
  return true;
}

START_TEST(time_is_rfc3339_utc_with_milliseconds) {
  ASSERT_TEXT_EQ(deploy::format_time(kExampleSecond + 123'000), "2026-11-21T10:00:00.123Z");
  ASSERT_TEXT_EQ(deploy::format_time(kExampleSecond), "2026-11-21T10:00:00.000Z");
}
END_TEST

START_TEST(time_milliseconds_are_truncated_not_rounded) {
  ASSERT_TEXT_EQ(deploy::format_time(kExampleSecond + 999'999), "2026-11-21T10:00:00.999Z");
}
END_TEST

START_TEST(time_before_the_epoch_counts_back) {
  ASSERT_TEXT_EQ(deploy::format_time(0), "1970-01-01T00:00:00.000Z");
  ASSERT_TEXT_EQ(deploy::format_time(-1000), "1969-12-31T23:59:59.999Z");
}
END_TEST

START_TEST(running_job_has_every_field_in_spec_order) {
  ASSERT_TEXT_EQ(
      deploy::job_json(running_job(), "/deploy"),
      "{\"id\":42,\"target\":\"webapp\",\"state\":\"running\",\"params\":{\"version\":\"1.2.3\"},"
      "\"outputs\":{\"address\":\"10.0.0.7\"},"
      "\"group\":null,\"progress\":40,\"stage\":\"Provisioning\","
      "\"stages\":[{\"name\":\"Create VM\",\"started_at\":\"2026-11-21T10:00:01.000Z\","
      "\"finished_at\":\"2026-11-21T10:00:31.500Z\"},{\"name\":\"Provisioning\","
      "\"started_at\":\"2026-11-21T10:00:31.500Z\",\"finished_at\":null}],\"requests\":1,\"not_"
      "before\":"
      "null,"
      "\"submitted_by\":\"alice\",\"submitted_at\":\"2026-11-21T10:00:00.123Z\","
      "\"started_at\":\"2026-11-21T10:00:01.000Z\",\"finished_at\":null,\"node\":\"web1\","
      "\"exit_code\":null,\"signal\":null,\"log_complete\":true,"
      "\"canceled_by\":null,\"superseded_by\":null,"
      "\"notifications\":[],"
      "\"links\":{\"self\":\"/deploy/jobs/42\",\"log\":\"/deploy/jobs/42/log\","
      "\"events\":\"/deploy/jobs/42/events\",\"cancel\":\"/deploy/jobs/42/cancel\"}}");
}
END_TEST

START_TEST(unset_values_are_null) {
  Job job;
  job.id = 7;
  job.target = "db";
  job.state = JobState::queued;
  job.submitted_at = kExampleSecond;
  ASSERT_TEXT_EQ(
      deploy::job_json(job, ""),
      "{\"id\":7,\"target\":\"db\",\"state\":\"queued\",\"params\":{},\"outputs\":{},"
      "\"group\":null,\"progress\":null,\"stage\":null,\"stages\":[],\"requests\":1,\"not_before\":"
      "null,\"submitted_by\":null,"
      "\"submitted_at\":\"2026-11-21T10:00:00.000Z\",\"started_at\":null,\"finished_at\":null,"
      "\"node\":null,\"exit_code\":null,\"signal\":null,\"log_complete\":true,"
      "\"canceled_by\":null,\"superseded_by\":null,"
      "\"notifications\":[],"
      "\"links\":{\"self\":\"/jobs/7\",\"log\":\"/jobs/7/log\","
      "\"events\":\"/jobs/7/events\",\"cancel\":\"/jobs/7/cancel\"}}");
}
END_TEST

// A final job's open last stage ends with the job, whatever ended it (a
// lost job's runner never closed it); hostile names and values stay text.
START_TEST(a_final_job_closes_its_open_stage_and_escapes_stages_and_outputs) {
  Job job = running_job();
  job.state = JobState::lost;
  job.finished_at = kExampleSecond + 90'000'000;
  job.stages[1].finished_at = kExampleSecond + 40'000'000;
  job.stages.push_back({"<script>\"x\"</script>", kExampleSecond + 40'000'000, 0});
  job.outputs = {{"url", "</script><b>\"\\"}};
  json_t* object = parsed(job);
  ck_assert_ptr_nonnull(object);
  json_t* stages = json_object_get(object, "stages");
  ck_assert_uint_eq(json_array_size(stages), 3);
  ASSERT_TEXT_EQ(json_string_value(json_object_get(json_array_get(stages, 1), "finished_at")),
                 "2026-11-21T10:00:40.000Z");
  json_t* last = json_array_get(stages, 2);
  ASSERT_TEXT_EQ(json_string_value(json_object_get(last, "name")), "<script>\"x\"</script>");
  ASSERT_TEXT_EQ(json_string_value(json_object_get(last, "finished_at")),
                 "2026-11-21T10:01:30.000Z");
  ASSERT_TEXT_EQ(json_string_value(json_object_get(json_object_get(object, "outputs"), "url")),
                 "</script><b>\"\\");
  json_decref(object);
}
END_TEST

START_TEST(job_whose_output_was_lost_says_its_log_is_incomplete) {
  Job job = running_job();
  job.log_complete = false;
  json_t* object = parsed(job);
  ck_assert(json_is_false(json_object_get(object, "log_complete")));
  json_decref(object);
}
END_TEST

START_TEST(notifications_show_state_attempts_and_status_in_order) {
  Job job = running_job();
  job.state = JobState::succeeded;
  job.notifications = {{NotificationState::delivered, 2, 200},
                       {NotificationState::pending, 1, std::nullopt},
                       {NotificationState::failed, 6, 503}};
  const std::string text = deploy::job_json(job, "/deploy");
  ck_assert_msg(
      text.find("\"notifications\":[{\"state\":\"delivered\",\"attempts\":2,\"status\":"
                "200},{\"state\":\"pending\",\"attempts\":1,\"status\":null},{\"state\":"
                "\"failed\",\"attempts\":6,\"status\":503}],\"links\"") != std::string::npos,
      "%s", text.c_str());
  json_t* object = parsed(job);
  ck_assert_int_eq(json_array_size(json_object_get(object, "notifications")), 3);
  json_decref(object);
}
END_TEST

START_TEST(finished_job_shows_exit_code_signal_and_finish_time) {
  Job job = running_job();
  job.state = JobState::timed_out;
  job.finished_at = kExampleSecond + 300'000'000;
  job.exit_code = 143;
  job.signal = 15;
  json_t* object = parsed(job);
  ASSERT_TEXT_EQ(json_string_value(json_object_get(object, "state")), "timed_out");
  ck_assert_int_eq(json_integer_value(json_object_get(object, "exit_code")), 143);
  ck_assert_int_eq(json_integer_value(json_object_get(object, "signal")), 15);
  ASSERT_TEXT_EQ(json_string_value(json_object_get(object, "finished_at")),
                 "2026-11-21T10:05:00.000Z");
  json_decref(object);
}
END_TEST

START_TEST(waiting_job_shows_not_before_and_requests) {
  Job job = running_job();
  job.state = JobState::waiting;
  job.started_at = 0;
  job.requests = 3;
  job.not_before = kExampleSecond + 5'000'000;
  json_t* object = parsed(job);
  ASSERT_TEXT_EQ(json_string_value(json_object_get(object, "not_before")),
                 "2026-11-21T10:00:05.000Z");
  ck_assert_int_eq(json_integer_value(json_object_get(object, "requests")), 3);
  ck_assert(json_is_null(json_object_get(object, "started_at")));
  json_decref(object);
}
END_TEST

START_TEST(params_keep_submission_order) {
  Job job = running_job();
  job.params = {{"zeta", "1"}, {"alpha", "2"}};
  const std::string text = deploy::job_json(job, "/deploy");
  ck_assert(text.find("\"params\":{\"zeta\":\"1\",\"alpha\":\"2\"}") != std::string::npos);
}
END_TEST

START_TEST(grouped_job_shows_its_group_and_an_absent_value_as_empty_text) {
  Job job = running_job();
  job.params = {{"vm", "a"}};
  job.group = deploy::job_group(job.params, std::string("vm"));
  ck_assert(deploy::job_json(job, "/deploy").find("\"group\":\"a\",") != std::string::npos);
  job.group = deploy::job_group({}, std::string("vm"));
  ck_assert(deploy::job_json(job, "/deploy").find("\"group\":\"\",") != std::string::npos);
  job.group = "</script>\"";
  const std::string text = deploy::job_json(job, "/deploy");
  ck_assert(is_valid_json(text));
  ck_assert(text.find("\"group\":\"</script>\\\"\"") != std::string::npos);
}
END_TEST

START_TEST(job_group_is_the_value_of_the_group_by_param) {
  const deploy::Params params = {{"version", "1.2"}, {"vm", "b"}};
  ck_assert(deploy::job_group(params, std::nullopt) == std::nullopt);
  ck_assert(deploy::job_group(params, std::string("vm")) == std::optional<std::string>("b"));
  ck_assert(deploy::job_group(params, std::string("host")) == std::optional<std::string>(""));
}
END_TEST

START_TEST(coalesced_answer_ends_with_coalesced_true) {
  const std::string text = deploy::job_json(running_job(), "/deploy", "coalesced");
  const std::string suffix = ",\"coalesced\":true}";
  ck_assert(text.size() > suffix.size());
  ASSERT_TEXT_EQ(text.substr(text.size() - suffix.size()), suffix);
  ck_assert(deploy::job_json(running_job(), "/deploy").find("coalesced") == std::string::npos);
}
END_TEST

START_TEST(invalid_utf8_from_outside_is_repaired_not_dropped) {
  Job job = running_job();
  job.params = {{"note", "bad \xFF byte"}};
  job.stage =
      "st\xC3"
      "age";
  job.submitted_by = "bob\xE2\x82";
  const std::string text = deploy::job_json(job, "/deploy");
  ck_assert(is_valid_json(text));
  ck_assert(text.find("\"note\":\"bad \xEF\xBF\xBD byte\"") != std::string::npos);
  ck_assert(text.find("\"stage\":\"st\xEF\xBF\xBD"
                      "age\"") != std::string::npos);
  ck_assert(text.find("\"submitted_by\":\"bob\xEF\xBF\xBD\"") != std::string::npos);
}
END_TEST

START_TEST(markup_and_quotes_in_values_stay_inside_strings) {
  Job job = running_job();
  job.stage = "</script>\"\\\n";
  const std::string text = deploy::job_json(job, "/deploy");
  ck_assert(is_valid_json(text));
  ck_assert(text.find("\"stage\":\"</script>\\\"\\\\\\n\"") != std::string::npos);
}
END_TEST

START_TEST(error_json_has_error_and_message) {
  const deploy::RequestError error{404, "not_found", "no job 7 \"here\""};
  ASSERT_TEXT_EQ(deploy::error_json(error),
                 "{\"error\":\"not_found\",\"message\":\"no job 7 \\\"here\\\"\"}");
}
END_TEST

START_TEST(dump_json_is_compact) {
  json_t* array = json_pack("[i,s,n,{s:b}]", 1, "a", "k", 1);
  ASSERT_TEXT_EQ(deploy::dump_json(array), "[1,\"a\",null,{\"k\":true}]");
  ASSERT_TEXT_EQ(deploy::dump_json(json_string("bare")), "\"bare\"");
}
END_TEST

Suite* job_json_suite() {
  Suite* suite = suite_create("job_json");
  TCase* times = tcase_create("times");
  tcase_add_test(times, time_is_rfc3339_utc_with_milliseconds);
  tcase_add_test(times, a_final_job_closes_its_open_stage_and_escapes_stages_and_outputs);
  tcase_add_test(times, time_milliseconds_are_truncated_not_rounded);
  tcase_add_test(times, time_before_the_epoch_counts_back);
  suite_add_tcase(suite, times);
  TCase* jobs = tcase_create("jobs");
  tcase_add_test(jobs, running_job_has_every_field_in_spec_order);
  tcase_add_test(jobs, unset_values_are_null);
  tcase_add_test(jobs, finished_job_shows_exit_code_signal_and_finish_time);
  tcase_add_test(jobs, notifications_show_state_attempts_and_status_in_order);
  tcase_add_test(jobs, job_whose_output_was_lost_says_its_log_is_incomplete);
  tcase_add_test(jobs, waiting_job_shows_not_before_and_requests);
  tcase_add_test(jobs, params_keep_submission_order);
  tcase_add_test(jobs, coalesced_answer_ends_with_coalesced_true);
  tcase_add_test(jobs, grouped_job_shows_its_group_and_an_absent_value_as_empty_text);
  tcase_add_test(jobs, job_group_is_the_value_of_the_group_by_param);
  tcase_add_test(jobs, invalid_utf8_from_outside_is_repaired_not_dropped);
  tcase_add_test(jobs, markup_and_quotes_in_values_stay_inside_strings);
  suite_add_tcase(suite, jobs);
  TCase* errors = tcase_create("errors");
  tcase_add_test(errors, error_json_has_error_and_message);
  tcase_add_test(errors, dump_json_is_compact);
  suite_add_tcase(suite, errors);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(job_json_suite);
