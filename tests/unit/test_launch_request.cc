// The frames the scheduler writes to the runner launcher: what is encoded
// decodes to the same request, a frame arrives in any number of pieces, and
// a frame that cannot be trusted is refused, not guessed at.
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "launch_request.h"
#include "unit_test.h"

namespace {

using deploy::DecodeResult;
using deploy::LaunchRequest;

LaunchRequest sample() {
  LaunchRequest r;
  r.job_id = 42;
  r.timeout = 900'000'000;
  r.kill_grace = 10'000'000;
  r.working_directory = "/srv/deploy";
  r.command = {"/opt/deploy/vm-deploy", "--flag", "", "a b"};
  r.environment = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "DEPLOY_JOB_ID=42",
                   "EMPTY=", "TOKEN=s3cret=value"};
  r.user_id = 998;
  r.group_id = 997;
  r.secret_entries = {4};
  return r;
}

// The secret entries' count and indices at the end of sample()'s frame.
constexpr size_t kSampleSecretsSize = 4 + 4;

void assert_same(const LaunchRequest& a, const LaunchRequest& b) {
  ck_assert_uint_eq(a.job_id, b.job_id);
  ck_assert_int_eq(a.timeout, b.timeout);
  ck_assert_int_eq(a.kill_grace, b.kill_grace);
  ASSERT_TEXT_EQ(a.working_directory, b.working_directory);
  ck_assert(a.command == b.command);
  ck_assert(a.environment == b.environment);
  ck_assert_uint_eq(a.user_id, b.user_id);
  ck_assert_uint_eq(a.group_id, b.group_id);
  ck_assert(a.secret_entries == b.secret_entries);
}

// The 4-byte size, then the body at `offset` within it overwritten.
std::string with_field(std::string frame, size_t offset, const void* value, size_t size) {
  memcpy(frame.data() + 4 + offset, value, size);
  return frame;
}

START_TEST(a_request_decodes_to_itself) {
  const std::string frame = deploy::encode_launch_request(sample());
  ck_assert(!frame.empty());
  LaunchRequest out;
  size_t used = 0;
  ck_assert(deploy::decode_launch_request(frame, &out, &used) == DecodeResult::complete);
  ck_assert_uint_eq(used, frame.size());
  assert_same(out, sample());
}
END_TEST

START_TEST(a_request_without_a_user_runs_as_the_runner) {
  LaunchRequest own = sample();
  own.user_id = 0;
  own.group_id = 0;
  LaunchRequest out;
  size_t used = 0;
  ck_assert(deploy::decode_launch_request(deploy::encode_launch_request(own), &out, &used) ==
            DecodeResult::complete);
  ck_assert_uint_eq(out.user_id, 0);
  ck_assert_uint_eq(out.group_id, 0);
}
END_TEST

START_TEST(every_prefix_is_incomplete_and_the_rest_is_left_alone) {
  const std::string frame = deploy::encode_launch_request(sample());
  LaunchRequest out;
  size_t used = 0;
  for (size_t n = 0; n < frame.size(); ++n) {
    ck_assert_msg(deploy::decode_launch_request(std::string_view(frame).substr(0, n), &out,
                                                &used) == DecodeResult::incomplete,
                  "prefix of %zu bytes", n);
  }
  // Two frames back to back: the first is taken, its size says where the
  // second begins.
  LaunchRequest second = sample();
  second.job_id = 43;
  const std::string both = frame + deploy::encode_launch_request(second);
  ck_assert(deploy::decode_launch_request(both, &out, &used) == DecodeResult::complete);
  ck_assert_uint_eq(out.job_id, 42);
  ck_assert(deploy::decode_launch_request(std::string_view(both).substr(used), &out, &used) ==
            DecodeResult::complete);
  ck_assert_uint_eq(out.job_id, 43);
}
END_TEST

START_TEST(a_request_that_cannot_be_started_has_no_frame) {
  LaunchRequest nul = sample();
  nul.environment.push_back(std::string("A=b\0c", 5));
  ck_assert(deploy::encode_launch_request(nul).empty());
  LaunchRequest huge = sample();
  huge.environment.push_back("BIG=" + std::string(deploy::kMaxLaunchFrame, 'x'));
  ck_assert(deploy::encode_launch_request(huge).empty());
  // A DeployUser job names both its uid and its gid, never one alone.
  LaunchRequest no_group = sample();
  no_group.group_id = 0;
  ck_assert(deploy::encode_launch_request(no_group).empty());
}
END_TEST

START_TEST(frames_that_cannot_be_trusted_are_malformed) {
  const std::string frame = deploy::encode_launch_request(sample());
  LaunchRequest out;
  size_t used = 0;
  auto result = [&](const std::string& bytes) {
    return deploy::decode_launch_request(bytes, &out, &used);
  };
  // A body size beyond the limit, or too small for the fixed fields.
  const uint32_t too_big = deploy::kMaxLaunchFrame;
  std::string bad = frame;
  memcpy(bad.data(), &too_big, 4);
  ck_assert(result(bad) == DecodeResult::malformed);
  const uint32_t too_small = 8;
  memcpy(bad.data(), &too_small, 4);
  ck_assert(result(bad) == DecodeResult::malformed);
  // Job id 0; a timeout beyond what Micros holds.
  const uint64_t zero = 0, negative = uint64_t{1} << 63;
  ck_assert(result(with_field(frame, 0, &zero, 8)) == DecodeResult::malformed);
  ck_assert(result(with_field(frame, 8, &negative, 8)) == DecodeResult::malformed);
  // No command; more strings than the body can hold; one string fewer than
  // the body holds (bytes left over).
  const uint32_t none = 0, many = 1u << 30, one_less = 3;
  ck_assert(result(with_field(frame, 24, &none, 4)) == DecodeResult::malformed);
  ck_assert(result(with_field(frame, 24, &many, 4)) == DecodeResult::malformed);
  ck_assert(result(with_field(frame, 28, &many, 4)) == DecodeResult::malformed);
  ck_assert(result(with_field(frame, 24, &one_less, 4)) == DecodeResult::malformed);
  // A NUL inside a string: argv and environment entries cannot hold one.
  bad = frame;
  bad[bad.find("/srv/deploy") + 4] = '\0';
  ck_assert(result(bad) == DecodeResult::malformed);
  // An empty program path.
  LaunchRequest empty_program = sample();
  empty_program.command[0].clear();
  ck_assert(result(deploy::encode_launch_request(empty_program)) == DecodeResult::malformed);
  // A user without a group, or a group without a user (the 8 bytes before
  // the secret entries): root would fill in the missing half.
  const uint32_t root = 0;
  const size_t user_at = frame.size() - 4 - kSampleSecretsSize - 8;
  ck_assert(result(with_field(frame, user_at, &root, 4)) == DecodeResult::malformed);
  ck_assert(result(with_field(frame, user_at + 4, &root, 4)) == DecodeResult::malformed);
}
END_TEST

START_TEST(secret_entries_name_environment_values_only) {
  LaunchRequest out;
  size_t used = 0;
  ck_assert(deploy::decode_launch_request(deploy::encode_launch_request(sample()), &out, &used) ==
            DecodeResult::complete);
  // The value is what follows the first '=': it may hold '=' itself.
  const std::vector<std::string> values = deploy::secret_values(out);
  ck_assert_uint_eq(values.size(), 1);
  ASSERT_TEXT_EQ(values[0], "s3cret=value");

  // An index past the entries, one twice or out of order, or an entry
  // without '=' cannot be encoded...
  for (const std::vector<uint32_t>& indices :
       std::vector<std::vector<uint32_t>>{{5}, {4, 4}, {4, 0}, {UINT32_MAX}}) {
    LaunchRequest bad = sample();
    bad.secret_entries = indices;
    ck_assert(deploy::encode_launch_request(bad).empty());
  }
  LaunchRequest no_equals = sample();
  no_equals.environment[4] = "TOKEN";
  ck_assert(deploy::encode_launch_request(no_equals).empty());

  // ...nor decoded: the index (the last 4 bytes) past the entries, or more
  // indices than the body holds.
  const std::string frame = deploy::encode_launch_request(sample());
  const uint32_t past = 5, many = 1u << 30, two = 2;
  ck_assert(deploy::decode_launch_request(with_field(frame, frame.size() - 4 - 4, &past, 4), &out,
                                          &used) == DecodeResult::malformed);
  ck_assert(deploy::decode_launch_request(with_field(frame, frame.size() - 4 - 8, &many, 4), &out,
                                          &used) == DecodeResult::malformed);
  ck_assert(deploy::decode_launch_request(with_field(frame, frame.size() - 4 - 8, &two, 4), &out,
                                          &used) == DecodeResult::malformed);
  // A request without secrets has none.
  LaunchRequest plain = sample();
  plain.secret_entries.clear();
  ck_assert(deploy::decode_launch_request(deploy::encode_launch_request(plain), &out, &used) ==
            DecodeResult::complete);
  ck_assert(deploy::secret_values(out).empty());
}
END_TEST

// --- the launcher's command line (DeployUser) ---

bool parses(const std::vector<std::string_view>& words, std::optional<deploy::LauncherUsers>* out) {
  const deploy::Status parsed = deploy::parse_launcher_arguments(words, out);
  ck_assert_msg(parsed.is_ok() == parsed.message().empty(), "problem '%s'",
                parsed.message().c_str());
  return parsed.is_ok();
}

START_TEST(launcher_users_read_back_what_the_scheduler_writes) {
  deploy::LauncherUsers users;
  users.uid = 33;
  users.gid = 33;
  users.job_users = {{998, 997, "deploy"}, {1001, 50, "odd:name"}};
  const std::vector<std::string> words = deploy::launcher_arguments(users);
  std::optional<deploy::LauncherUsers> out;
  ck_assert(parses(std::vector<std::string_view>(words.begin(), words.end()), &out));
  ck_assert(out.has_value());
  ck_assert_uint_eq(out->uid, 33);
  ck_assert_uint_eq(out->gid, 33);
  ck_assert_uint_eq(out->job_users.size(), 2);
  ck_assert_uint_eq(out->job_users[1].uid, 1001);
  ck_assert_uint_eq(out->job_users[1].gid, 50);
  ASSERT_TEXT_EQ(out->job_users[1].name, "odd:name");
  // No words: a launcher without users keeps no privilege.
  ck_assert(parses({}, &out));
  ck_assert(!out.has_value());
}
END_TEST

START_TEST(launcher_users_never_name_root_nor_anything_unclear) {
  std::optional<deploy::LauncherUsers> out;
  const std::vector<std::vector<std::string_view>> refused = {
      {"--user", "0:33"},
      {"--user", "33:0"},
      {"--user", "33:33", "--job-user", "0:5:root"},
      {"--user", "33:33", "--job-user", "5:0:x"},
      {"--user", "33:33", "--job-user", "5:5:"},
      {"--user", "33:33", "--job-user", "5:5"},
      {"--user", "4294967295:33"},
      {"--user", "-1:33"},
      {"--user", "33"},
      {"--user", "33:33x"},
      {"--user", "33:33", "--user", "34:34"},
      {"--job-user", "5:5:x"},
      {"--user"},
      {"--group", "5"},
  };
  for (const auto& words : refused) {
    ck_assert_msg(!parses(words, &out), "accepted %s %s", std::string(words[0]).c_str(),
                  words.size() > 1 ? std::string(words[1]).c_str() : "");
  }
}
END_TEST

Suite* launch_request_suite() {
  Suite* suite = suite_create("launch_request");
  TCase* tc = tcase_create("frames");
  tcase_add_test(tc, a_request_decodes_to_itself);
  tcase_add_test(tc, a_request_without_a_user_runs_as_the_runner);
  tcase_add_test(tc, every_prefix_is_incomplete_and_the_rest_is_left_alone);
  tcase_add_test(tc, a_request_that_cannot_be_started_has_no_frame);
  tcase_add_test(tc, frames_that_cannot_be_trusted_are_malformed);
  tcase_add_test(tc, secret_entries_name_environment_values_only);
  suite_add_tcase(suite, tc);
  TCase* users = tcase_create("launcher users");
  tcase_add_test(users, launcher_users_read_back_what_the_scheduler_writes);
  tcase_add_test(users, launcher_users_never_name_root_nor_anything_unclear);
  suite_add_tcase(suite, users);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(launch_request_suite);
