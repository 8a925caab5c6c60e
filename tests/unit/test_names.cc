// Shapes of target and parameter names.
#include "names.h"

#include <string>

#include "unit_test.h"

using deploy::is_valid_param_name;
using deploy::is_valid_target_name;

namespace {

START_TEST(target_names_of_the_allowed_shape_are_valid) {
  ck_assert(is_valid_target_name("webapp"));
  ck_assert(is_valid_target_name("0"));
  ck_assert(is_valid_target_name("Web-App_2.prod"));
  ck_assert(is_valid_target_name(std::string(64, 'a')));
}
END_TEST

START_TEST(target_names_outside_the_shape_are_invalid) {
  ck_assert(!is_valid_target_name(""));
  ck_assert(!is_valid_target_name(std::string(65, 'a')));
  ck_assert(!is_valid_target_name(".hidden"));
  ck_assert(!is_valid_target_name("-x"));
  ck_assert(!is_valid_target_name("_x"));
  ck_assert(!is_valid_target_name("a/b"));
  ck_assert(!is_valid_target_name("a b"));
  ck_assert(!is_valid_target_name("caf\xC3\xA9"));
  ck_assert(!is_valid_target_name(std::string("a\0b", 3)));
}
END_TEST

START_TEST(param_names_of_the_allowed_shape_are_valid) {
  ck_assert(is_valid_param_name("version"));
  ck_assert(is_valid_param_name("_"));
  ck_assert(is_valid_param_name("Build_42"));
  ck_assert(is_valid_param_name(std::string(64, 'x')));
}
END_TEST

START_TEST(param_names_outside_the_shape_are_invalid) {
  ck_assert(!is_valid_param_name(""));
  ck_assert(!is_valid_param_name(std::string(65, 'x')));
  ck_assert(!is_valid_param_name("1version"));
  ck_assert(!is_valid_param_name("my-param"));
  ck_assert(!is_valid_param_name("my.param"));
  ck_assert(!is_valid_param_name("a=b"));
  ck_assert(!is_valid_param_name(std::string("a\0", 2)));
}
END_TEST

Suite* names_suite() {
  Suite* suite = suite_create("names");
  TCase* names = tcase_create("names");
  tcase_add_test(names, target_names_of_the_allowed_shape_are_valid);
  tcase_add_test(names, target_names_outside_the_shape_are_invalid);
  tcase_add_test(names, param_names_of_the_allowed_shape_are_valid);
  tcase_add_test(names, param_names_outside_the_shape_are_invalid);
  suite_add_tcase(suite, names);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(names_suite);
