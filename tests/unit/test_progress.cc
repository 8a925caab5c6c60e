// Progress and stage lines in a job's output.
#include "progress.h"

#include <string>

#include "job_table.h"
#include "unit_test.h"

using deploy::parse_progress_line;

namespace {

void assert_not_progress(const std::string& line) {
  ck_assert_msg(!parse_progress_line(line).has_value(), "'%s' should not be a progress line",
                line.c_str());
}

std::string stage_of(const std::string& line) {
  const auto update = parse_progress_line(line);
  ck_assert_msg(update.has_value(), "'%s' should be a progress line", line.c_str());
  ck_assert_msg(update->stage.has_value(), "'%s' should set a stage", line.c_str());
  return *update->stage;
}

START_TEST(progress_line_with_stage_sets_both) {
  const auto update = parse_progress_line("::progress 40 Provisioning");
  ck_assert(update.has_value());
  ck_assert(update->progress.has_value());
  ck_assert_int_eq(*update->progress, 40);
  ck_assert(update->stage.has_value());
  ASSERT_TEXT_EQ(update->stage->c_str(), "Provisioning");
}
END_TEST

START_TEST(progress_line_without_stage_leaves_stage_unset) {
  const auto update = parse_progress_line("::progress 7");
  ck_assert(update.has_value());
  ck_assert_int_eq(*update->progress, 7);
  ck_assert(!update->stage.has_value());
}
END_TEST

START_TEST(progress_bounds_zero_and_hundred_are_accepted) {
  ck_assert_int_eq(*parse_progress_line("::progress 0")->progress, 0);
  ck_assert_int_eq(*parse_progress_line("::progress 100")->progress, 100);
  ck_assert_int_eq(*parse_progress_line("::progress 007")->progress, 7);
}
END_TEST

START_TEST(progress_stage_is_trimmed_and_blank_means_none) {
  ASSERT_TEXT_EQ(stage_of("::progress 50   Running playbooks  "), "Running playbooks");
  const auto blank = parse_progress_line("::progress 50    ");
  ck_assert(blank.has_value());
  ck_assert_int_eq(*blank->progress, 50);
  ck_assert(!blank->stage.has_value());
}
END_TEST

START_TEST(malformed_progress_lines_are_ignored) {
  assert_not_progress("::progress 101");
  assert_not_progress("::progress 1000");
  assert_not_progress("::progress 0100");
  assert_not_progress("::progress abc");
  assert_not_progress("::progress -5");
  assert_not_progress("::progress +5");
  assert_not_progress("::progress 4.5");
  assert_not_progress("::progress 40abc");
  assert_not_progress("::progress 40\tTabbed");
  assert_not_progress("::progress");
  assert_not_progress("::progress ");
  assert_not_progress("::progress  40");
  assert_not_progress("::progressive");
  assert_not_progress("::Progress 40");
  assert_not_progress(" ::progress 40");
  assert_not_progress("progress 40");
  assert_not_progress("");
}
END_TEST

START_TEST(stage_line_sets_only_stage) {
  const auto update = parse_progress_line("::stage Rebooting the VM");
  ck_assert(update.has_value());
  ck_assert(!update->progress.has_value());
  ASSERT_TEXT_EQ(update->stage->c_str(), "Rebooting the VM");
}
END_TEST

START_TEST(stage_line_without_text_is_ignored) {
  assert_not_progress("::stage");
  assert_not_progress("::stage ");
  assert_not_progress("::stage    ");
  assert_not_progress("::stage \x01\x02");
  assert_not_progress("::stagecoach");
}
END_TEST

START_TEST(trailing_carriage_return_is_ignored) {
  const auto progress = parse_progress_line("::progress 30\r");
  ck_assert(progress.has_value());
  ck_assert_int_eq(*progress->progress, 30);
  ck_assert(!progress->stage.has_value());
  ASSERT_TEXT_EQ(stage_of("::stage Checking SSH\r"), "Checking SSH");
}
END_TEST

START_TEST(stage_control_characters_are_removed) {
  ASSERT_TEXT_EQ(stage_of("::stage a\x1b[31mred\x7f\tb"), "a[31mredb");
}
END_TEST

START_TEST(stage_invalid_utf8_becomes_replacement_character) {
  ASSERT_TEXT_EQ(stage_of("::stage caf\xC3\xA9 \xFF ok"), "caf\xC3\xA9 \xEF\xBF\xBD ok");
  ASSERT_TEXT_EQ(stage_of("::stage cut \xE2\x82"), "cut \xEF\xBF\xBD");
}
END_TEST

START_TEST(long_stage_is_cut_to_the_limit_at_a_character_boundary) {
  const std::string ascii(deploy::kStageMax + 50, 'a');
  ck_assert_uint_eq(stage_of("::stage " + ascii).size(), deploy::kStageMax);

  // Three-byte characters: the limit falls inside one, which must go whole.
  std::string euros;
  while (euros.size() <= deploy::kStageMax) euros += "\xE2\x82\xAC";
  const std::string stage = stage_of("::stage " + euros);
  ck_assert_uint_le(stage.size(), deploy::kStageMax);
  ck_assert_uint_eq(stage.size() % 3, 0);
  ck_assert_uint_gt(stage.size(), deploy::kStageMax - 3);
  ASSERT_TEXT_EQ(stage.substr(stage.size() - 3), "\xE2\x82\xAC");
}
END_TEST

Suite* progress_suite() {
  Suite* suite = suite_create("progress");
  TCase* progress = tcase_create("progress lines");
  tcase_add_test(progress, progress_line_with_stage_sets_both);
  tcase_add_test(progress, progress_line_without_stage_leaves_stage_unset);
  tcase_add_test(progress, progress_bounds_zero_and_hundred_are_accepted);
  tcase_add_test(progress, progress_stage_is_trimmed_and_blank_means_none);
  tcase_add_test(progress, malformed_progress_lines_are_ignored);
  tcase_add_test(progress, trailing_carriage_return_is_ignored);
  suite_add_tcase(suite, progress);
  TCase* stage = tcase_create("stage text");
  tcase_add_test(stage, stage_line_sets_only_stage);
  tcase_add_test(stage, stage_line_without_text_is_ignored);
  tcase_add_test(stage, stage_control_characters_are_removed);
  tcase_add_test(stage, stage_invalid_utf8_becomes_replacement_character);
  tcase_add_test(stage, long_stage_is_cut_to_the_limit_at_a_character_boundary);
  suite_add_tcase(suite, stage);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(progress_suite);
