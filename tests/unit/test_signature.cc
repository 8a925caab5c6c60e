// X-Hub-Signature-256 checks (DeploySecret).
#include "signature.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "unit_test.h"

using deploy::signature_matches;
using deploy::token_matches;

namespace {

// RFC 4231 test case 2.
constexpr const char* kKey = "Jefe";
constexpr const char* kBody = "what do ya want for nothing?";
constexpr const char* kDigest = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

std::string header(const std::string& digest) { return "sha256=" + digest; }

START_TEST(correct_hmac_matches) {
  ck_assert(signature_matches(header(kDigest), kKey, kBody));
  // GitHub's documented example.
  ck_assert(
      signature_matches("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                        "It's a Secret to Everybody", "Hello, World!"));
}
END_TEST

START_TEST(hex_digits_match_in_either_case) {
  std::string upper = kDigest;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  ck_assert(signature_matches(header(upper), kKey, kBody));
}
END_TEST

START_TEST(wrong_key_or_body_does_not_match) {
  ck_assert(!signature_matches(header(kDigest), "jefe", kBody));
  ck_assert(!signature_matches(header(kDigest), kKey, "what do ya want for nothing!"));
  ck_assert(!signature_matches(header(kDigest), kKey, ""));
}
END_TEST

START_TEST(one_changed_digit_does_not_match) {
  std::string digest = kDigest;
  digest[63] = digest[63] == '3' ? '4' : '3';
  ck_assert(!signature_matches(header(digest), kKey, kBody));
  digest = kDigest;
  digest[0] = digest[0] == '5' ? '6' : '5';
  ck_assert(!signature_matches(header(digest), kKey, kBody));
}
END_TEST

START_TEST(malformed_headers_do_not_match) {
  const std::string digest = kDigest;
  ck_assert(!signature_matches("", kKey, kBody));
  ck_assert(!signature_matches(digest, kKey, kBody));
  ck_assert(!signature_matches("sha1=" + digest, kKey, kBody));
  ck_assert(!signature_matches("SHA256=" + digest, kKey, kBody));
  ck_assert(!signature_matches("sha256= " + digest, kKey, kBody));
  ck_assert(!signature_matches(header(digest.substr(0, 63)), kKey, kBody));
  ck_assert(!signature_matches(header(digest + "0"), kKey, kBody));
  ck_assert(!signature_matches(header(digest.substr(0, 62) + "zz"), kKey, kBody));
  ck_assert(!signature_matches(header(digest + "\n"), kKey, kBody));
}
END_TEST

START_TEST(empty_key_and_body_are_hashed_not_refused) {
  ck_assert(signature_matches(
      "sha256=b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", "", ""));
}
END_TEST

START_TEST(signature_header_gives_the_known_digest_and_matches_itself) {
  ASSERT_TEXT_EQ(deploy::signature_header(kKey, kBody), header(kDigest));
  const std::string body = "{\"params\": {\"version\": \"1.2.3\"}}";
  ck_assert(signature_matches(deploy::signature_header("k3y", body), "k3y", body));
  ck_assert(!signature_matches(deploy::signature_header("k3y", body), "other", body));
}
END_TEST

START_TEST(gitlab_token_matches_only_itself) {
  ck_assert(token_matches("s3cr3t-token", "s3cr3t-token"));
  ck_assert(!token_matches("s3cr3t-tokeN", "s3cr3t-token"));
  ck_assert(!token_matches("s3cr3t-toke", "s3cr3t-token"));  // a prefix
  ck_assert(!token_matches("s3cr3t-token ", "s3cr3t-token"));
  ck_assert(!token_matches("", "s3cr3t-token"));
  ck_assert(!token_matches(std::string("s3cr3t-token\0", 13), "s3cr3t-token"));
}
END_TEST

Suite* signature_suite() {
  Suite* suite = suite_create("signature");
  TCase* signature = tcase_create("signature");
  tcase_add_test(signature, correct_hmac_matches);
  tcase_add_test(signature, hex_digits_match_in_either_case);
  tcase_add_test(signature, wrong_key_or_body_does_not_match);
  tcase_add_test(signature, one_changed_digit_does_not_match);
  tcase_add_test(signature, malformed_headers_do_not_match);
  tcase_add_test(signature, empty_key_and_body_are_hashed_not_refused);
  tcase_add_test(signature, signature_header_gives_the_known_digest_and_matches_itself);
  tcase_add_test(signature, gitlab_token_matches_only_itself);
  suite_add_tcase(suite, signature);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(signature_suite);
