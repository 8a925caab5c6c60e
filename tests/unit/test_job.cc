// Job state names: the words clients see in JSON and query strings.
#include "job.h"

#include <string>

#include "unit_test.h"

using deploy::JobState;

namespace {

START_TEST(every_state_round_trips_through_its_name) {
  const std::pair<JobState, const char*> expected[] = {
      {JobState::waiting, "waiting"},   {JobState::queued, "queued"},
      {JobState::running, "running"},   {JobState::succeeded, "succeeded"},
      {JobState::failed, "failed"},     {JobState::timed_out, "timed_out"},
      {JobState::canceled, "canceled"}, {JobState::expired, "expired"},
      {JobState::lost, "lost"},
  };
  for (const auto& [state, name] : expected) {
    ASSERT_TEXT_EQ(deploy::state_name(state), name);
    const auto parsed = deploy::state_from_name(name);
    ck_assert(parsed.has_value());
    ck_assert_int_eq(static_cast<int>(*parsed), static_cast<int>(state));
  }
}
END_TEST

START_TEST(unknown_state_names_are_refused) {
  ck_assert(!deploy::state_from_name("").has_value());
  ck_assert(!deploy::state_from_name("Running").has_value());
  ck_assert(!deploy::state_from_name("timed-out").has_value());
  ck_assert(!deploy::state_from_name("running ").has_value());
  ck_assert(!deploy::state_from_name("unknown").has_value());
}
END_TEST

START_TEST(raw_state_values_outside_the_enum_are_invalid) {
  ck_assert(!deploy::is_valid_state(0));
  for (uint8_t raw = 1; raw <= 9; ++raw) ck_assert(deploy::is_valid_state(raw));
  ck_assert(!deploy::is_valid_state(10));
  ck_assert(!deploy::is_valid_state(255));
}
END_TEST

START_TEST(state_name_of_a_damaged_value_is_not_a_real_state) {
  const auto damaged = static_cast<JobState>(42);
  ck_assert(!deploy::state_from_name(deploy::state_name(damaged)).has_value());
}
END_TEST

START_TEST(final_states_are_the_ones_after_running) {
  ck_assert(!deploy::is_final(JobState::waiting));
  ck_assert(!deploy::is_final(JobState::queued));
  ck_assert(!deploy::is_final(JobState::running));
  ck_assert(deploy::is_final(JobState::succeeded));
  ck_assert(deploy::is_final(JobState::lost));
}
END_TEST

Suite* job_suite() {
  Suite* suite = suite_create("job");
  TCase* states = tcase_create("states");
  tcase_add_test(states, every_state_round_trips_through_its_name);
  tcase_add_test(states, unknown_state_names_are_refused);
  tcase_add_test(states, raw_state_values_outside_the_enum_are_invalid);
  tcase_add_test(states, state_name_of_a_damaged_value_is_not_a_real_state);
  tcase_add_test(states, final_states_are_the_ones_after_running);
  suite_add_tcase(suite, states);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(job_suite);
