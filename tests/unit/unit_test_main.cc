// Runs every suite the test files of this executable registered. Check forks
// each test by default, so a crash fails one test, not the run.
#include <cstdlib>
#include <vector>

#include "unit_test.h"

namespace deploy::test {

namespace {

// A function-local static: registrations run from other files' static
// initializers, in an order the language leaves open.
std::vector<SuiteFactory>& registered_suites() {
  static std::vector<SuiteFactory> suites;
  return suites;
}

}  // namespace

bool register_suite(SuiteFactory make_suite) {
  registered_suites().push_back(make_suite);
  return true;
}

}  // namespace deploy::test

int main() {
  const auto& suites = deploy::test::registered_suites();
  if (suites.empty()) return EXIT_FAILURE;
  SRunner* runner = srunner_create(nullptr);
  for (const auto make_suite : suites) srunner_add_suite(runner, make_suite());
  srunner_run_all(runner, CK_NORMAL);
  const int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
