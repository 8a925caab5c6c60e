// The environment a job runs with.
#include "job_environment.h"

#include <string>
#include <vector>

#include "unit_test.h"

using deploy::Job;

namespace {

Job webapp_job() {
  Job job;
  job.id = 42;
  job.target = "webapp";
  job.requests = 3;
  job.submitted_by = "alice";
  job.params = {{"version", "1.2.3"}, {"Env_Name", "prod"}};
  return job;
}

void assert_environment(const std::vector<std::string>& actual,
                        const std::vector<std::string>& expected) {
  ck_assert_uint_eq(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_TEXT_EQ(actual[i], expected[i]);
  }
}

const char* const kPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

START_TEST(environment_has_fixed_variables_then_params_in_order) {
  assert_environment(
      deploy::job_environment(webapp_job(), {}),
      {kPath, "LANG=C.UTF-8", "DEPLOY_JOB_ID=42", "DEPLOY_TARGET=webapp", "DEPLOY_REQUESTS=3",
       "DEPLOY_SUBMITTED_BY=alice", "DEPLOY_PARAM_VERSION=1.2.3", "DEPLOY_PARAM_ENV_NAME=prod"});
}
END_TEST

START_TEST(anonymous_submission_has_empty_submitted_by) {
  Job job = webapp_job();
  job.submitted_by.reset();
  job.params.clear();
  assert_environment(deploy::job_environment(job, {}),
                     {kPath, "LANG=C.UTF-8", "DEPLOY_JOB_ID=42", "DEPLOY_TARGET=webapp",
                      "DEPLOY_REQUESTS=3", "DEPLOY_SUBMITTED_BY="});
}
END_TEST

START_TEST(extra_variables_come_last_and_keep_their_case) {
  const auto environment = deploy::job_environment(
      webapp_job(), {{"ANSIBLE_CONFIG", "/etc/a.cfg"}, {"http_proxy", "x"}});
  ck_assert_uint_eq(environment.size(), 10);
  ASSERT_TEXT_EQ(environment[8], "ANSIBLE_CONFIG=/etc/a.cfg");
  ASSERT_TEXT_EQ(environment[9], "http_proxy=x");
}
END_TEST

START_TEST(extra_variable_replaces_a_same_named_one_in_place) {
  const auto environment = deploy::job_environment(
      webapp_job(), {{"PATH", "/opt/bin"}, {"DEPLOY_PARAM_VERSION", "pinned"}});
  assert_environment(
      environment, {"PATH=/opt/bin", "LANG=C.UTF-8", "DEPLOY_JOB_ID=42", "DEPLOY_TARGET=webapp",
                    "DEPLOY_REQUESTS=3", "DEPLOY_SUBMITTED_BY=alice", "DEPLOY_PARAM_VERSION=pinned",
                    "DEPLOY_PARAM_ENV_NAME=prod"});
}
END_TEST

START_TEST(each_name_appears_once_and_the_later_value_wins) {
  Job job = webapp_job();
  job.params = {{"mode", "a"}, {"MODE", "b"}};
  const auto environment = deploy::job_environment(job, {{"X", "1"}, {"X", "2"}});
  ck_assert_uint_eq(environment.size(), 8);
  ASSERT_TEXT_EQ(environment[6], "DEPLOY_PARAM_MODE=b");
  ASSERT_TEXT_EQ(environment[7], "X=2");
}
END_TEST

START_TEST(values_are_passed_verbatim) {
  Job job = webapp_job();
  job.params = {{"cmd", "a=b; $(reboot) \"q\""}};
  const auto environment = deploy::job_environment(job, {});
  ASSERT_TEXT_EQ(environment.back(), "DEPLOY_PARAM_CMD=a=b; $(reboot) \"q\"");
}
END_TEST

START_TEST(secrets_come_last_and_their_entries_are_known) {
  std::vector<uint32_t> secrets = {99};
  const std::vector<std::string> environment =
      deploy::job_environment(webapp_job(), {{"LANG", "de_DE.UTF-8"}, {"REGION", "eu"}},
                              {{"API_TOKEN", "t0ken"}, {"DB_PASSWORD", "pa=ss"}}, &secrets);
  assert_environment(
      environment,
      {kPath, "LANG=de_DE.UTF-8", "DEPLOY_JOB_ID=42", "DEPLOY_TARGET=webapp", "DEPLOY_REQUESTS=3",
       "DEPLOY_SUBMITTED_BY=alice", "DEPLOY_PARAM_VERSION=1.2.3", "DEPLOY_PARAM_ENV_NAME=prod",
       "REGION=eu", "API_TOKEN=t0ken", "DB_PASSWORD=pa=ss"});
  ck_assert_uint_eq(secrets.size(), 2);
  ck_assert_uint_eq(secrets[0], 9);
  ck_assert_uint_eq(secrets[1], 10);
  // Without secrets, none is named.
  deploy::job_environment(webapp_job(), {}, {}, &secrets);
  ck_assert(secrets.empty());
}
END_TEST

Suite* job_environment_suite() {
  Suite* suite = suite_create("job_environment");
  TCase* environment = tcase_create("environment");
  tcase_add_test(environment, environment_has_fixed_variables_then_params_in_order);
  tcase_add_test(environment, anonymous_submission_has_empty_submitted_by);
  tcase_add_test(environment, extra_variables_come_last_and_keep_their_case);
  tcase_add_test(environment, extra_variable_replaces_a_same_named_one_in_place);
  tcase_add_test(environment, each_name_appears_once_and_the_later_value_wins);
  tcase_add_test(environment, values_are_passed_verbatim);
  tcase_add_test(environment, secrets_come_last_and_their_entries_are_known);
  suite_add_tcase(suite, environment);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(job_environment_suite);
