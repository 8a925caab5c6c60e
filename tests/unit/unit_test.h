// Helpers for the unit tests, and the registration of their suites.
//
// The shared main of the unit tests runs every suite registered with
// DEPLOY_TEST_SUITE(make_suite) in the executable:
//
//   static Suite* progress_suite() { ... }
//   DEPLOY_TEST_SUITE(progress_suite);
#pragma once

#include <check.h>

#include <string>
#include <string_view>

namespace deploy::test {

using SuiteFactory = Suite* (*)();

// Adds a suite for the shared main to run; returns true (for a static initializer).
bool register_suite(SuiteFactory make_suite);

// A test case whose every test runs between set_up and tear_down, and is
// failed when it runs longer than timeout_seconds.
inline TCase* case_with_fixture(const char* name, void (*set_up)(), void (*tear_down)(),
                                double timeout_seconds) {
  TCase* tc = tcase_create(name);
  tcase_add_checked_fixture(tc, set_up, tear_down);
  tcase_set_timeout(tc, timeout_seconds);
  return tc;
}

inline std::string text_of(const char* text) { return text != nullptr ? text : "(null)"; }
inline std::string text_of(std::string_view text) { return std::string(text); }

}  // namespace deploy::test

#define DEPLOY_TEST_SUITE(make_suite)                          \
  [[maybe_unused]] static const bool make_suite##_registered = \
      ::deploy::test::register_suite(make_suite)

// ck_assert_str_eq for std::string: it copies both sides first, where
// ck_assert_str_eq(f().c_str(), ...) would read a destroyed temporary.
#define ASSERT_TEXT_EQ(actual, expected)                                                        \
  do {                                                                                          \
    const std::string assert_actual_ = ::deploy::test::text_of(actual);                         \
    const std::string assert_expected_ = ::deploy::test::text_of(expected);                     \
    ck_assert_msg(assert_actual_ == assert_expected_, "%s is \"%s\", expected \"%s\"", #actual, \
                  assert_actual_.c_str(), assert_expected_.c_str());                            \
  } while (0)
