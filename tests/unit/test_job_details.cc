// Stages and outputs (core/job_details.h, core/progress.h): the ::output
// line, the runner's lists and their caps, and the stored text form, which
// is read back as untrusted.
#include "job_details.h"

#include <string>

#include "progress.h"
#include "unit_test.h"

using namespace deploy;

namespace {

START_TEST(an_output_line_sets_a_name_to_the_rest_of_the_line) {
  auto line = parse_output_line("::output address 10.0.0.7 (eth0)\r");
  ck_assert(line.has_value());
  ASSERT_TEXT_EQ(line->name, "address");
  ASSERT_TEXT_EQ(line->value, "10.0.0.7 (eth0)");
  line = parse_output_line("::output _empty");
  ck_assert(line.has_value());
  ASSERT_TEXT_EQ(line->value, "");
  line = parse_output_line("::output spaced  two  ");  // the rest of the line, untrimmed
  ASSERT_TEXT_EQ(line->value, " two  ");
  for (const char* bad :
       {"::output", "::output ", "::output 1st x", "::output a-b x", "::outputs a x",
        " ::output a x", "::output a\tb",
        "::output aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa x"})
    ck_assert_msg(!parse_output_line(bad), "'%s' should not be an output line", bad);
  ck_assert(!parse_progress_line("::output a x"));
}
END_TEST

START_TEST(an_output_value_is_repaired_and_cut_at_512_bytes) {
  auto line = parse_output_line(
      "::output v a\x01\x7f"
      "b\xff");
  ASSERT_TEXT_EQ(line->value, "ab\xEF\xBF\xBD");
  // 511 ASCII bytes then a 2-byte character: cut before it, not inside.
  line = parse_output_line("::output v " + std::string(511, 'x') + "\xC3\xA9" + "tail");
  ck_assert_uint_eq(line->value.size(), 511);
  line = parse_output_line("::output v " + std::string(600, 'y'));
  ck_assert_uint_eq(line->value.size(), kOutputValueMax);
}
END_TEST

START_TEST(a_later_output_wins_and_new_names_stop_at_16) {
  Outputs outputs;
  ck_assert_int_eq(int(set_output(&outputs, "a", "1")), int(OutputChange::set));
  ck_assert_int_eq(int(set_output(&outputs, "b", "2")), int(OutputChange::set));
  ck_assert_int_eq(int(set_output(&outputs, "a", "1")), int(OutputChange::unchanged));
  ck_assert_int_eq(int(set_output(&outputs, "a", "3")), int(OutputChange::set));
  ck_assert(outputs == (Outputs{{"a", "3"}, {"b", "2"}}));  // its first place kept
  for (int i = 2; i < 16; ++i) set_output(&outputs, "n" + std::to_string(i), "v");
  ck_assert_uint_eq(outputs.size(), kOutputsMax);
  ck_assert_int_eq(int(set_output(&outputs, "seventeenth", "v")), int(OutputChange::full));
  ck_assert_uint_eq(outputs.size(), kOutputsMax);
  ck_assert_int_eq(int(set_output(&outputs, "b", "again")), int(OutputChange::set));
}
END_TEST

START_TEST(a_new_stage_ends_the_open_one_and_past_32_replaces_the_last) {
  std::vector<Stage> stages;
  ck_assert(enter_stage(&stages, "one", 10));
  ck_assert(!enter_stage(&stages, "one", 20));  // the same value is no new stage
  ck_assert(enter_stage(&stages, "two", 30));
  ck_assert(stages == (std::vector<Stage>{{"one", 10, 30}, {"two", 30, 0}}));
  ck_assert(enter_stage(&stages, "one", 40));  // a stage may come back
  ck_assert_uint_eq(stages.size(), 3);
  for (int i = 3; i < 32; ++i) enter_stage(&stages, "s" + std::to_string(i), 100 + i);
  ck_assert_uint_eq(stages.size(), kStagesMax);
  ck_assert(stages[30].finished_at == 131);
  ck_assert(enter_stage(&stages, "newest", 500));
  ck_assert_uint_eq(stages.size(), kStagesMax);
  ck_assert(stages.back() == (Stage{"newest", 500, 0}));
  ASSERT_TEXT_EQ(stages[30].name, "s30");
  ck_assert(stages[30].finished_at == 131);
  ck_assert(enter_stage(&stages, "last", 600));
  ck_assert(stages.back() == (Stage{"last", 600, 0}));
  ck_assert_uint_eq(stages.size(), kStagesMax);
}
END_TEST

START_TEST(the_text_form_reads_back_what_was_written) {
  std::vector<Stage> stages = {{"Create VM", 1795255201000000, 1795255231500000},
                               {"Ansible \xC3\xA9", 1795255231500000, 0}};
  Outputs outputs = {{"address", "10.0.0.7"}, {"empty", ""}, {"colon", "a:b 12:x"}};
  std::vector<Stage> s;
  Outputs o;
  ck_assert(decode_details(encode_details(stages, outputs), &s, &o));
  ck_assert(s == stages);
  ck_assert(o == outputs);
  ck_assert(decode_details(encode_details({}, {}), &s, &o));
  ck_assert(s.empty() && o.empty());
  ck_assert(decode_stages(encode_stages(stages), &s) && s == stages);
  ck_assert(decode_outputs(encode_outputs(outputs), &o) && o == outputs);
  ck_assert(decode_stages("", &s) && s.empty());
  // The largest lists there can be fit the bound.
  std::vector<Stage> big_stages(kStagesMax, Stage{std::string(200, 'x'), INT64_MAX, INT64_MAX});
  Outputs big_outputs;
  for (size_t i = 0; i < kOutputsMax; ++i)
    big_outputs.emplace_back(std::string(63, 'n') + char('a' + i), std::string(512, 'v'));
  const std::string big = encode_details(big_stages, big_outputs);
  ck_assert_uint_le(big.size(), kDetailsMax);
  ck_assert(decode_details(big, &s, &o) && s.size() == kStagesMax && o.size() == kOutputsMax);
}
END_TEST

START_TEST(damaged_text_reads_as_nothing) {
  const std::string good = encode_details({{"build", 5, 9}}, {{"a", "1"}});
  std::vector<Stage> s;
  Outputs o;
  // Every cut of a good text is refused, as are these.
  for (size_t cut = 0; cut < good.size(); ++cut) {
    ck_assert_msg(!decode_details(good.substr(0, cut), &s, &o), "cut at %zu", cut);
    ck_assert(s.empty() && o.empty());
  }
  const std::vector<std::string> damaged = {
      good + "x",
      "deploy-details 2\n0:0:",
      "deploy-details 1\n-1:0:",
      "deploy-details 1\n99999999999:0:",
      encode_details({{"", 1, 2}}, {}),
      encode_details({{" padded", 1, 2}}, {}),
      encode_details({{"bad\nline", 1, 2}}, {}),
      encode_details({{std::string(201, 'x'), 1, 2}}, {}),
      encode_details({}, {{"a", "1"}, {"a", "2"}}),
      encode_details({}, {{"not-a-name", "1"}}),
      encode_details({}, {{"a", std::string(513, 'v')}}),
      encode_details({}, {{"a", "bad\xff"}}),
      encode_details({}, {{"a", "tab\t"}}),
      "deploy-details 1\n" + std::to_string(std::string("5:build1:x1:9").size()) +
          ":5:build1:x1:90:",
      std::string("deploy-details 1\n") + std::string(kDetailsMax, '9'),
  };
  for (const std::string& text : damaged) {
    ck_assert_msg(!decode_details(text, &s, &o), "accepted '%s'", text.c_str());
    ck_assert(s.empty() && o.empty());
  }
  std::vector<Stage> many(kStagesMax + 1, Stage{"x", 1, 2});
  ck_assert(!decode_stages(encode_stages(many), &s));
  Outputs too_many;
  for (size_t i = 0; i <= kOutputsMax; ++i) too_many.emplace_back("n" + std::to_string(i), "v");
  ck_assert(!decode_outputs(encode_outputs(too_many), &o));
}
END_TEST

Suite* job_details_suite() {
  Suite* suite = suite_create("job details");
  TCase* lines = tcase_create("output lines");
  tcase_add_test(lines, an_output_line_sets_a_name_to_the_rest_of_the_line);
  tcase_add_test(lines, an_output_value_is_repaired_and_cut_at_512_bytes);
  suite_add_tcase(suite, lines);
  TCase* lists = tcase_create("the runner's lists");
  tcase_add_test(lists, a_later_output_wins_and_new_names_stop_at_16);
  tcase_add_test(lists, a_new_stage_ends_the_open_one_and_past_32_replaces_the_last);
  suite_add_tcase(suite, lists);
  TCase* codec = tcase_create("text form");
  tcase_add_test(codec, the_text_form_reads_back_what_was_written);
  tcase_add_test(codec, damaged_text_reads_as_nothing);
  suite_add_tcase(suite, codec);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(job_details_suite);
