// The retry schedule of completion notifications (DeployNotify).
#include "notification.h"

#include <string>

#include "unit_test.h"

using deploy::after_attempt;
using deploy::Micros;
using deploy::NotificationState;

namespace {

constexpr Micros kS = 1000000;
constexpr Micros kNow = 1000 * kS;

START_TEST(a_2xx_is_delivered_at_any_attempt) {
  for (int status : {200, 201, 204, 299}) {
    ck_assert(after_attempt(1, status, kNow).state == NotificationState::delivered);
    ck_assert(after_attempt(6, status, kNow).state == NotificationState::delivered);
  }
}
END_TEST

START_TEST(failures_are_retried_after_5s_30s_2min_10min_30min) {
  const Micros expected[] = {5 * kS, 30 * kS, 120 * kS, 600 * kS, 1800 * kS};
  for (uint32_t attempt = 1; attempt <= 5; ++attempt) {
    for (std::optional<int> status : {std::optional<int>(), std::optional<int>(500),
                                      std::optional<int>(302), std::optional<int>(404)}) {
      const auto d = after_attempt(attempt, status, kNow);
      ck_assert(d.state == NotificationState::pending);
      ck_assert_int_eq(d.retry_at - kNow, expected[attempt - 1]);
    }
  }
}
END_TEST

START_TEST(the_sixth_failure_gives_up) {
  ck_assert_int_eq(deploy::kNotificationAttemptsMax, 6);
  ck_assert(after_attempt(6, 500, kNow).state == NotificationState::failed);
  ck_assert(after_attempt(6, std::nullopt, kNow).state == NotificationState::failed);
  ck_assert(after_attempt(7, std::nullopt, kNow).state == NotificationState::failed);
}
END_TEST

START_TEST(the_answer_limit_is_ten_seconds_and_a_claim_outlasts_it) {
  ck_assert_int_eq(deploy::kNotificationAnswerLimit, 10 * kS);
  ck_assert(deploy::kNotificationClaimHold > deploy::kNotificationAnswerLimit);
}
END_TEST

START_TEST(the_test_divisor_shortens_every_delay_alike) {
  ck_assert_int_eq(after_attempt(1, 500, kNow, 100).retry_at - kNow, 50000);
  ck_assert_int_eq(after_attempt(5, 500, kNow, 100).retry_at - kNow, 18 * kS);
  ck_assert_int_eq(after_attempt(1, 500, kNow, 0).retry_at - kNow, 5 * kS);  // 0 is 1
  ck_assert(after_attempt(6, 500, kNow, 100).state == NotificationState::failed);
}
END_TEST

START_TEST(delivery_ids_differ_per_job_and_url) {
  // ck_assert_str_eq keeps the pointer past the full expression, so the
  // strings it compares must outlive it.
  const std::string first = deploy::delivery_id(12, 0);
  const std::string second = deploy::delivery_id(12, 1);
  ck_assert_str_eq(first.c_str(), "12-1");
  ck_assert_str_eq(second.c_str(), "12-2");
  ck_assert(deploy::delivery_id(1, 10) != deploy::delivery_id(11, 0));
}
END_TEST

Suite* notification_suite() {
  Suite* s = suite_create("notification");
  TCase* tc = tcase_create("schedule");
  tcase_add_test(tc, a_2xx_is_delivered_at_any_attempt);
  tcase_add_test(tc, failures_are_retried_after_5s_30s_2min_10min_30min);
  tcase_add_test(tc, the_sixth_failure_gives_up);
  tcase_add_test(tc, the_answer_limit_is_ten_seconds_and_a_claim_outlasts_it);
  tcase_add_test(tc, the_test_divisor_shortens_every_delay_alike);
  tcase_add_test(tc, delivery_ids_differ_per_job_and_url);
  suite_add_tcase(s, tc);
  return s;
}

DEPLOY_TEST_SUITE(notification_suite);

}  // namespace
