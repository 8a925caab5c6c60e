// The cross-origin check of POST requests: an Origin is accepted only when it
// names this server (its names, aliases and addresses), never because it
// equals the request's Host header.
#include "origin.h"

#include "unit_test.h"

using deploy::is_server_origin;
using deploy::matches_host_pattern;
using deploy::ServerOrigin;

namespace {

// A server as httpd_env.py configures one (ServerName 127.0.0.1, Listen
// 127.0.0.1:8080) with one alias and one wildcard alias.
ServerOrigin server() {
  return ServerOrigin{"http",
                      {"deploy.example.com", "ci.example.com", "127.0.0.1"},
                      {"*.deploy.example.net"},
                      {8080}};
}

START_TEST(server_name_alias_and_local_address_are_the_server) {
  ck_assert(is_server_origin("http://deploy.example.com:8080", server()));
  ck_assert(is_server_origin("http://ci.example.com:8080", server()));
  ck_assert(is_server_origin("http://127.0.0.1:8080", server()));
}
END_TEST

START_TEST(an_attackers_host_name_is_another_origin) {
  // DNS rebinding: the page's origin is the name the attacker chose, which
  // also is what the browser sends as Host. The server's names decide.
  ck_assert(!is_server_origin("http://evil.example:8080", server()));
  ck_assert(!is_server_origin("http://deploy.example.com.evil:8080", server()));
  ck_assert(!is_server_origin("http://127.0.0.2:8080", server()));
}
END_TEST

START_TEST(wildcard_aliases_match_as_httpd_matches_them) {
  ck_assert(is_server_origin("http://a.deploy.example.net:8080", server()));
  ck_assert(is_server_origin("http://a.b.deploy.example.net:8080", server()));
  ck_assert(!is_server_origin("http://deploy.example.net:8080", server()));
  ck_assert(!is_server_origin("http://a.deploy.example.net.evil:8080", server()));
  ck_assert(matches_host_pattern("www7.example.com", "www?.example.com"));
  ck_assert(!matches_host_pattern("www77.example.com", "www?.example.com"));
  ck_assert(matches_host_pattern("WWW.Example.COM", "*.example.com"));
  ck_assert(matches_host_pattern("x", "*"));
  ck_assert(matches_host_pattern("a-b-c", "a*b*c"));
  ck_assert(!matches_host_pattern("a-b-d", "a*b*c"));
}
END_TEST

START_TEST(names_compare_ignoring_case) {
  ck_assert(is_server_origin("HTTP://Deploy.Example.COM:8080", server()));
  ServerOrigin upper{"https", {"DEPLOY.example.com"}, {}, {443}};
  ck_assert(is_server_origin("https://deploy.EXAMPLE.com", upper));
}
END_TEST

START_TEST(the_port_must_be_one_of_the_servers) {
  ck_assert(!is_server_origin("http://deploy.example.com:8081", server()));
  ck_assert(!is_server_origin("http://deploy.example.com", server()));  // port 80
  ServerOrigin standard{"https", {"deploy.example.com"}, {}, {443}};
  ck_assert(is_server_origin("https://deploy.example.com", standard));
  ck_assert(is_server_origin("https://deploy.example.com:443", standard));
  ck_assert(!is_server_origin("https://deploy.example.com:8443", standard));
}
END_TEST

START_TEST(the_scheme_must_be_the_servers) {
  ck_assert(!is_server_origin("https://deploy.example.com:8080", server()));
  ck_assert(!is_server_origin("ftp://deploy.example.com:8080", server()));
}
END_TEST

START_TEST(ipv6_addresses_match_with_or_without_brackets) {
  ServerOrigin v6{"http", {"::1", "[fe80::1]"}, {}, {8080}};
  ck_assert(is_server_origin("http://[::1]:8080", v6));
  ck_assert(is_server_origin("http://[FE80::1]:8080", v6));
  ck_assert(!is_server_origin("http://[::2]:8080", v6));
  ck_assert(!is_server_origin("http://::1:8080", v6));
  ck_assert(!is_server_origin("http://[::1:8080", v6));
  ck_assert(!is_server_origin("http://[]:8080", v6));
}
END_TEST

START_TEST(null_and_malformed_origins_are_not_the_server) {
  ck_assert(!is_server_origin("null", server()));
  ck_assert(!is_server_origin("", server()));
  ck_assert(!is_server_origin("deploy.example.com:8080", server()));
  ck_assert(!is_server_origin("http://", server()));
  ck_assert(!is_server_origin("http://deploy.example.com:8080/", server()));
  ck_assert(!is_server_origin("http://user@deploy.example.com:8080", server()));
  ck_assert(!is_server_origin("http://deploy.example.com:", server()));
  ck_assert(!is_server_origin("http://deploy.example.com:0", server()));
  ck_assert(!is_server_origin("http://deploy.example.com:65536", server()));
  ck_assert(!is_server_origin("http://deploy.example.com:80x", server()));
  ck_assert(!is_server_origin("http://deploy example.com:8080", server()));
}
END_TEST

START_TEST(a_server_without_names_accepts_no_origin) {
  ServerOrigin nameless{"http", {""}, {}, {8080}};
  ck_assert(!is_server_origin("http://:8080", nameless));
  ck_assert(!is_server_origin("http://x:8080", nameless));
}
END_TEST

Suite* origin_suite() {
  Suite* suite = suite_create("origin");
  TCase* origin = tcase_create("origin");
  tcase_add_test(origin, server_name_alias_and_local_address_are_the_server);
  tcase_add_test(origin, an_attackers_host_name_is_another_origin);
  tcase_add_test(origin, wildcard_aliases_match_as_httpd_matches_them);
  tcase_add_test(origin, names_compare_ignoring_case);
  tcase_add_test(origin, the_port_must_be_one_of_the_servers);
  tcase_add_test(origin, the_scheme_must_be_the_servers);
  tcase_add_test(origin, ipv6_addresses_match_with_or_without_brackets);
  tcase_add_test(origin, null_and_malformed_origins_are_not_the_server);
  tcase_add_test(origin, a_server_without_names_accepts_no_origin);
  suite_add_tcase(suite, origin);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(origin_suite);
