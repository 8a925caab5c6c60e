// The cross-origin check of submissions.
#include "origin.h"

#include "unit_test.h"

using deploy::is_same_origin;

namespace {

START_TEST(same_scheme_host_and_port_is_same_origin) {
  ck_assert(is_same_origin("https://deploy.example.com", "https", "deploy.example.com"));
  ck_assert(is_same_origin("http://localhost:8080", "http", "localhost:8080"));
}
END_TEST

START_TEST(host_and_scheme_compare_ignoring_case) {
  ck_assert(is_same_origin("HTTPS://Deploy.Example.COM", "https", "deploy.example.com"));
  ck_assert(is_same_origin("https://deploy.example.com", "HTTPS", "DEPLOY.example.com"));
}
END_TEST

START_TEST(default_ports_are_made_explicit) {
  ck_assert(is_same_origin("http://example.com", "http", "example.com:80"));
  ck_assert(is_same_origin("http://example.com:80", "http", "example.com"));
  ck_assert(is_same_origin("https://example.com", "https", "example.com:443"));
  ck_assert(is_same_origin("https://example.com:443", "https", "example.com"));
  ck_assert(!is_same_origin("https://example.com", "https", "example.com:80"));
  ck_assert(!is_same_origin("http://example.com", "http", "example.com:443"));
}
END_TEST

START_TEST(other_scheme_host_or_port_is_another_origin) {
  ck_assert(!is_same_origin("http://example.com", "https", "example.com"));
  ck_assert(!is_same_origin("https://evil.example", "https", "example.com"));
  ck_assert(!is_same_origin("https://example.com.evil", "https", "example.com"));
  ck_assert(!is_same_origin("http://localhost:8081", "http", "localhost:8080"));
  ck_assert(!is_same_origin("http://localhost", "http", "localhost:8080"));
}
END_TEST

START_TEST(ipv6_literals_in_brackets_are_understood) {
  ck_assert(is_same_origin("http://[::1]:8080", "http", "[::1]:8080"));
  ck_assert(is_same_origin("http://[::1]", "http", "[::1]:80"));
  ck_assert(is_same_origin("http://[FE80::1]", "http", "[fe80::1]"));
  ck_assert(!is_same_origin("http://[::1]:8080", "http", "[::2]:8080"));
  ck_assert(!is_same_origin("http://::1", "http", "::1"));
  ck_assert(!is_same_origin("http://[]", "http", "[]"));
  ck_assert(!is_same_origin("http://[::1", "http", "[::1"));
  ck_assert(!is_same_origin("http://[::1]x", "http", "[::1]"));
}
END_TEST

START_TEST(null_and_malformed_origins_are_not_same) {
  ck_assert(!is_same_origin("null", "https", "example.com"));
  ck_assert(!is_same_origin("", "https", "example.com"));
  ck_assert(!is_same_origin("example.com", "https", "example.com"));
  ck_assert(!is_same_origin("https://", "https", "example.com"));
  ck_assert(!is_same_origin("https://example.com/", "https", "example.com"));
  ck_assert(!is_same_origin("https://example.com/path", "https", "example.com"));
  ck_assert(!is_same_origin("https://user@example.com", "https", "example.com"));
  ck_assert(!is_same_origin("https://example.com:", "https", "example.com"));
  ck_assert(!is_same_origin("https://example.com:0", "https", "example.com:0"));
  ck_assert(!is_same_origin("https://example.com:65536", "https", "example.com:65536"));
  ck_assert(!is_same_origin("https://example.com:44x", "https", "example.com"));
  ck_assert(!is_same_origin("https://exa mple.com", "https", "exa mple.com"));
  ck_assert(!is_same_origin("https://example.com?", "https", "example.com"));
}
END_TEST

START_TEST(malformed_host_header_is_not_same) {
  ck_assert(!is_same_origin("https://example.com", "https", ""));
  ck_assert(!is_same_origin("https://example.com", "https", "example.com/x"));
  ck_assert(!is_same_origin("https://example.com", "https", "example.com:https"));
}
END_TEST

START_TEST(unknown_scheme_without_port_is_not_same) {
  ck_assert(!is_same_origin("ftp://example.com", "ftp", "example.com"));
}
END_TEST

Suite* origin_suite() {
  Suite* suite = suite_create("origin");
  TCase* origin = tcase_create("origin");
  tcase_add_test(origin, same_scheme_host_and_port_is_same_origin);
  tcase_add_test(origin, host_and_scheme_compare_ignoring_case);
  tcase_add_test(origin, default_ports_are_made_explicit);
  tcase_add_test(origin, other_scheme_host_or_port_is_another_origin);
  tcase_add_test(origin, ipv6_literals_in_brackets_are_understood);
  tcase_add_test(origin, null_and_malformed_origins_are_not_same);
  tcase_add_test(origin, malformed_host_header_is_not_same);
  tcase_add_test(origin, unknown_scheme_without_port_is_not_same);
  suite_add_tcase(suite, origin);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(origin_suite);
