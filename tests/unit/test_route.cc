// Routes under the handler's base path, and their query strings.
#include "route.h"

#include <string>

#include "unit_test.h"

using deploy::parse_route;
using deploy::Route;
using Kind = deploy::Route::Kind;

namespace {

Route route_of(const char* path) {
  const auto route = parse_route(path);
  ck_assert_msg(route.has_value(), "'%s' should be a route", path);
  return *route;
}

void assert_kind(const char* path, Kind kind) {
  ck_assert_msg(route_of(path).kind == kind, "'%s' has the wrong kind", path);
}

void assert_no_route(const std::string& path) {
  ck_assert_msg(!parse_route(path).has_value(), "'%s' should not be a route", path.c_str());
}

deploy::JobsQuery jobs_query(const char* query) {
  auto result = deploy::parse_jobs_query(query);
  ck_assert_msg(std::holds_alternative<deploy::JobsQuery>(result), "'%s' should be accepted",
                query);
  return std::get<deploy::JobsQuery>(result);
}

// The 400 answer for `query`; its message must name `key`.
void assert_jobs_query_refused(const char* query, const char* key) {
  const auto result = deploy::parse_jobs_query(query);
  ck_assert_msg(std::holds_alternative<deploy::RequestError>(result), "'%s' should be refused",
                query);
  const auto& error = std::get<deploy::RequestError>(result);
  ck_assert_int_eq(error.status, 400);
  ASSERT_TEXT_EQ(error.code, "bad_request");
  ck_assert_msg(error.message.find(key) != std::string::npos, "message '%s' should name %s",
                error.message.c_str(), key);
}

START_TEST(empty_path_and_slash_are_the_dashboard) {
  assert_kind("", Kind::dashboard);
  assert_kind("/", Kind::dashboard);
}
END_TEST

START_TEST(fixed_routes_are_recognised) {
  assert_kind("/targets", Kind::targets);
  assert_kind("/jobs", Kind::jobs);
  assert_kind("/events", Kind::events);
  assert_kind("/metrics", Kind::metrics);
}
END_TEST

START_TEST(target_route_carries_the_name) {
  const Route route = route_of("/targets/web-app.prod_2");
  ck_assert(route.kind == Kind::target);
  ASSERT_TEXT_EQ(route.target, "web-app.prod_2");
}
END_TEST

START_TEST(job_routes_carry_the_id) {
  const std::pair<const char*, Kind> cases[] = {
      {"/jobs/42", Kind::job},
      {"/jobs/42/log", Kind::job_log},
      {"/jobs/42/events", Kind::job_events},
      {"/jobs/42/cancel", Kind::job_cancel},
  };
  for (const auto& [path, kind] : cases) {
    const Route route = route_of(path);
    ck_assert_msg(route.kind == kind, "'%s' has the wrong kind", path);
    ck_assert_uint_eq(route.job_id, 42);
  }
  ck_assert_uint_eq(route_of("/jobs/18446744073709551615").job_id, UINT64_MAX);
}
END_TEST

START_TEST(one_trailing_slash_is_tolerated) {
  assert_kind("/targets/", Kind::targets);
  assert_kind("/metrics/", Kind::metrics);
  assert_kind("/jobs/42/", Kind::job);
  assert_kind("/jobs/42/log/", Kind::job_log);
  ASSERT_TEXT_EQ(route_of("/targets/webapp/").target, "webapp");
}
END_TEST

START_TEST(more_than_one_trailing_slash_is_no_route) {
  assert_no_route("//");
  assert_no_route("/jobs//");
  assert_no_route("/jobs/42//");
}
END_TEST

START_TEST(malformed_job_ids_are_no_route) {
  assert_no_route("/jobs/0");
  assert_no_route("/jobs/042");
  assert_no_route("/jobs/-1");
  assert_no_route("/jobs/+1");
  assert_no_route("/jobs/4x");
  assert_no_route("/jobs/18446744073709551616");
  assert_no_route("/jobs/99999999999999999999999");
  assert_no_route("/jobs/ 1");
  assert_no_route("/jobs/0/log");
}
END_TEST

START_TEST(invalid_target_names_are_no_route) {
  assert_no_route("/targets/.hidden");
  assert_no_route("/targets/" + std::string(65, 'a'));
  assert_no_route("/targets/a b");
  assert_no_route("/targets/a/b");
}
END_TEST

START_TEST(unknown_paths_are_no_route) {
  assert_no_route("targets");
  assert_no_route("/target");
  assert_no_route("/Targets");
  assert_no_route("/jobs/42/logs");
  assert_no_route("/jobs/42/log/more");
  assert_no_route("/metrics/x");
  assert_no_route("/events/1");
  assert_no_route("/dashboard");
  assert_no_route("//targets");
}
END_TEST

START_TEST(get_routes_allow_get_and_head_and_post_routes_post) {
  ASSERT_TEXT_EQ(deploy::allowed_methods(Kind::target), "POST");
  ASSERT_TEXT_EQ(deploy::allowed_methods(Kind::job_cancel), "POST");
  const Kind get_routes[] = {Kind::dashboard, Kind::targets,    Kind::jobs,   Kind::job,
                             Kind::job_log,   Kind::job_events, Kind::events, Kind::metrics};
  for (Kind kind : get_routes) {
    ASSERT_TEXT_EQ(deploy::allowed_methods(kind), "GET, HEAD");
  }
}
END_TEST

START_TEST(query_pairs_are_decoded_in_order) {
  const auto pairs = deploy::parse_query("a=1&b=x+y%2Fz&c&&d=&%41%62=%e2%82%ac&e=a=b");
  ck_assert(pairs.has_value());
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"a", "1"}, {"b", "x y/z"}, {"c", ""}, {"d", ""}, {"Ab", "\xE2\x82\xAC"}, {"e", "a=b"}};
  ck_assert_uint_eq(pairs->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_TEXT_EQ((*pairs)[i].first, expected[i].first);
    ASSERT_TEXT_EQ((*pairs)[i].second, expected[i].second);
  }
}
END_TEST

START_TEST(empty_query_has_no_pairs) {
  const auto pairs = deploy::parse_query("");
  ck_assert(pairs.has_value());
  ck_assert_uint_eq(pairs->size(), 0);
  ck_assert_uint_eq(deploy::parse_query("&&")->size(), 0);
}
END_TEST

START_TEST(malformed_percent_escape_in_query_is_refused) {
  ck_assert(!deploy::parse_query("a=%").has_value());
  ck_assert(!deploy::parse_query("a=%4").has_value());
  ck_assert(!deploy::parse_query("a=%zz").has_value());
  ck_assert(!deploy::parse_query("a%g1=1").has_value());
  ck_assert(!deploy::parse_query("a=1&b=%2").has_value());
}
END_TEST

START_TEST(jobs_query_defaults_when_empty) {
  const auto query = jobs_query("");
  ck_assert(!query.target.has_value());
  ck_assert(!query.state.has_value());
  ck_assert_uint_eq(query.limit, 50);
  ck_assert_uint_eq(query.before, 0);
}
END_TEST

START_TEST(jobs_query_reads_every_key) {
  const auto query = jobs_query("target=webapp&state=timed_out&limit=1000&before=77");
  ASSERT_TEXT_EQ(query.target->c_str(), "webapp");
  ck_assert(query.state == deploy::JobState::timed_out);
  ck_assert_uint_eq(query.limit, 1000);
  ck_assert_uint_eq(query.before, 77);
  ck_assert_uint_eq(jobs_query("limit=1").limit, 1);
}
END_TEST

START_TEST(jobs_query_ignores_unknown_keys_and_empty_values) {
  const auto query = jobs_query("_=12345&target=&state=&limit=&before=&cache=x");
  ck_assert(!query.target.has_value());
  ck_assert(!query.state.has_value());
  ck_assert_uint_eq(query.limit, 50);
  ck_assert_uint_eq(query.before, 0);
}
END_TEST

START_TEST(jobs_query_malformed_values_are_refused_naming_the_key) {
  assert_jobs_query_refused("target=.bad", "target");
  assert_jobs_query_refused("state=done", "state");
  assert_jobs_query_refused("state=Running", "state");
  assert_jobs_query_refused("limit=0", "limit");
  assert_jobs_query_refused("limit=1001", "limit");
  assert_jobs_query_refused("limit=-1", "limit");
  assert_jobs_query_refused("limit=ten", "limit");
  assert_jobs_query_refused("limit=99999999999999999999999", "limit");
  assert_jobs_query_refused("before=0", "before");
  assert_jobs_query_refused("before=x", "before");
  assert_jobs_query_refused("target=%zz", "percent");
}
END_TEST

START_TEST(log_offset_defaults_to_zero) {
  ck_assert_uint_eq(std::get<uint64_t>(deploy::parse_log_offset("")), 0);
  ck_assert_uint_eq(std::get<uint64_t>(deploy::parse_log_offset("other=5")), 0);
  ck_assert_uint_eq(std::get<uint64_t>(deploy::parse_log_offset("offset=")), 0);
}
END_TEST

START_TEST(log_offset_is_read_as_decimal) {
  ck_assert_uint_eq(std::get<uint64_t>(deploy::parse_log_offset("offset=1234")), 1234);
  ck_assert_uint_eq(std::get<uint64_t>(deploy::parse_log_offset("x=1&offset=0")), 0);
}
END_TEST

START_TEST(malformed_log_offset_is_bad_request) {
  for (const char* query : {"offset=-1", "offset=1k", "offset=abc", "offset=%", "offset=1.5",
                            "offset=99999999999999999999999"}) {
    const auto result = deploy::parse_log_offset(query);
    ck_assert_msg(std::holds_alternative<deploy::RequestError>(result), "'%s' should be refused",
                  query);
    const auto& error = std::get<deploy::RequestError>(result);
    ck_assert_int_eq(error.status, 400);
    ASSERT_TEXT_EQ(error.code, "bad_request");
  }
}
END_TEST

START_TEST(a_browsers_accept_prefers_html) {
  // Chromium's and Firefox's navigation Accept headers.
  ck_assert(deploy::prefers_html(
      "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
      "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"));
  ck_assert(
      deploy::prefers_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
  ck_assert(deploy::prefers_html("text/html"));
  ck_assert(deploy::prefers_html("TEXT/HTML; charset=utf-8"));
  ck_assert(deploy::prefers_html("text/*, application/json;q=0.5"));
}
END_TEST

START_TEST(no_accept_any_type_and_json_get_the_json) {
  ck_assert(!deploy::prefers_html(""));
  ck_assert(!deploy::prefers_html("*/*"));
  ck_assert(!deploy::prefers_html("application/json"));
  ck_assert(!deploy::prefers_html("application/json, text/html"));  // a tie is the JSON
  ck_assert(!deploy::prefers_html("text/html;q=0.5, application/json"));
  ck_assert(!deploy::prefers_html("text/html;q=0, */*"));
  ck_assert(!deploy::prefers_html("text/plain"));
  ck_assert(!deploy::prefers_html("application/*, text/html;q=0.9"));
}
END_TEST

START_TEST(malformed_q_values_count_as_zero) {
  ck_assert(!deploy::prefers_html("text/html;q=2"));
  ck_assert(!deploy::prefers_html("text/html;q=1.5"));
  ck_assert(!deploy::prefers_html("text/html;q=abc"));
  ck_assert(!deploy::prefers_html("text/html;q=0.12345"));
  ck_assert(deploy::prefers_html("text/html;q=0.001"));
  ck_assert(deploy::prefers_html("text/html;q=1.000, application/json;q=0.999"));
}
END_TEST

START_TEST(only_the_first_64_ranges_are_read) {
  std::string accept;
  for (int i = 0; i < 64; ++i) accept += "image/png,";
  ck_assert(!deploy::prefers_html(accept + "text/html"));
  ck_assert(deploy::prefers_html("text/html," + accept));
}
END_TEST

Suite* route_suite() {
  Suite* suite = suite_create("route");
  TCase* paths = tcase_create("paths");
  tcase_add_test(paths, empty_path_and_slash_are_the_dashboard);
  tcase_add_test(paths, fixed_routes_are_recognised);
  tcase_add_test(paths, target_route_carries_the_name);
  tcase_add_test(paths, job_routes_carry_the_id);
  tcase_add_test(paths, one_trailing_slash_is_tolerated);
  tcase_add_test(paths, more_than_one_trailing_slash_is_no_route);
  tcase_add_test(paths, malformed_job_ids_are_no_route);
  tcase_add_test(paths, invalid_target_names_are_no_route);
  tcase_add_test(paths, unknown_paths_are_no_route);
  tcase_add_test(paths, get_routes_allow_get_and_head_and_post_routes_post);
  suite_add_tcase(suite, paths);
  TCase* queries = tcase_create("queries");
  tcase_add_test(queries, query_pairs_are_decoded_in_order);
  tcase_add_test(queries, empty_query_has_no_pairs);
  tcase_add_test(queries, malformed_percent_escape_in_query_is_refused);
  tcase_add_test(queries, jobs_query_defaults_when_empty);
  tcase_add_test(queries, jobs_query_reads_every_key);
  tcase_add_test(queries, jobs_query_ignores_unknown_keys_and_empty_values);
  tcase_add_test(queries, jobs_query_malformed_values_are_refused_naming_the_key);
  tcase_add_test(queries, log_offset_defaults_to_zero);
  tcase_add_test(queries, log_offset_is_read_as_decimal);
  tcase_add_test(queries, malformed_log_offset_is_bad_request);
  suite_add_tcase(suite, queries);
  TCase* accept = tcase_create("accept");
  tcase_add_test(accept, a_browsers_accept_prefers_html);
  tcase_add_test(accept, no_accept_any_type_and_json_get_the_json);
  tcase_add_test(accept, malformed_q_values_count_as_zero);
  tcase_add_test(accept, only_the_first_64_ranges_are_read);
  suite_add_tcase(suite, accept);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(route_suite);
