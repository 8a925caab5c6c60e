// RFC 6901 pointers into webhook payloads: the RFC's own examples, escapes,
// arrays, and what each kind of value becomes for a parameter.
#include "json_pointer.h"

#include <jansson.h>

#include <string>

#include "unit_test.h"

namespace {

using deploy::JsonPointer;
using deploy::PointedValue;

// RFC 6901, section 5.
constexpr const char* kRfcDocument = R"({
  "foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4,
  "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8})";

PointedValue at(const char* document, const char* pointer) {
  json_error_t error;
  json_t* doc = json_loads(document, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
  ck_assert_msg(doc != nullptr, "bad test document: %s", error.text);
  JsonPointer parsed;
  ck_assert_msg(deploy::parse_json_pointer(pointer, &parsed).is_ok(), "pointer %s", pointer);
  PointedValue value = deploy::resolve_json_pointer(doc, parsed);
  json_decref(doc);
  return value;
}

void assert_text(const char* document, const char* pointer, const std::string& expected) {
  PointedValue v = at(document, pointer);
  ck_assert_msg(v.kind == PointedValue::Kind::scalar && v.text == expected,
                "%s: want '%s', got kind %d '%s'", pointer, expected.c_str(), int(v.kind),
                v.text.c_str());
}

void assert_kind(const char* document, const char* pointer, PointedValue::Kind kind) {
  ck_assert_msg(at(document, pointer).kind == kind, "%s: kind %d expected", pointer, int(kind));
}

START_TEST(the_rfc_examples_resolve) {
  assert_kind(kRfcDocument, "", PointedValue::Kind::container);
  assert_kind(kRfcDocument, "/foo", PointedValue::Kind::container);
  assert_text(kRfcDocument, "/foo/0", "bar");
  assert_text(kRfcDocument, "/", "0");
  assert_text(kRfcDocument, "/a~1b", "1");
  assert_text(kRfcDocument, "/c%d", "2");
  assert_text(kRfcDocument, "/e^f", "3");
  assert_text(kRfcDocument, "/g|h", "4");
  assert_text(kRfcDocument, "/i\\j", "5");
  assert_text(kRfcDocument, "/k\"l", "6");
  assert_text(kRfcDocument, "/ ", "7");
  assert_text(kRfcDocument, "/m~0n", "8");
}
END_TEST

START_TEST(a_github_push_gives_its_commit_and_ref) {
  const char* push =
      R"({"ref": "refs/heads/main", "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
    "repository": {"full_name": "octo/app", "id": 1296269, "private": false, "score": 0.5},
    "commits": [{"id": "a"}], "pusher": null})";
  assert_text(push, "/ref", "refs/heads/main");
  assert_text(push, "/after", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c");
  assert_text(push, "/repository/full_name", "octo/app");
  assert_text(push, "/repository/id", "1296269");
  assert_text(push, "/repository/private", "false");
  assert_text(push, "/repository/score", "0.5");
  assert_text(push, "/commits/0/id", "a");
  assert_kind(push, "/commits", PointedValue::Kind::container);
  assert_kind(push, "/repository", PointedValue::Kind::container);
  assert_kind(push, "/pusher", PointedValue::Kind::absent);
  assert_kind(push, "/missing", PointedValue::Kind::absent);
  assert_kind(push, "/ref/deeper", PointedValue::Kind::absent);
}
END_TEST

START_TEST(array_indexes_are_plain_decimals) {
  const char* doc = R"({"a": [10, 11, 12]})";
  assert_text(doc, "/a/2", "12");
  assert_kind(doc, "/a/3", PointedValue::Kind::absent);
  assert_kind(doc, "/a/-", PointedValue::Kind::absent);
  assert_kind(doc, "/a/01", PointedValue::Kind::absent);
  assert_kind(doc, "/a/+1", PointedValue::Kind::absent);
  assert_kind(doc, "/a/1x", PointedValue::Kind::absent);
  assert_kind(doc, "/a/99999999999999999999999", PointedValue::Kind::absent);
}
END_TEST

START_TEST(malformed_pointers_are_refused) {
  JsonPointer p;
  for (const char* bad : {"a", "a/b", "/~", "/~2", "/a~", "~0"})
    ck_assert_msg(!deploy::parse_json_pointer(bad, &p).is_ok(), "'%s' accepted", bad);
}
END_TEST

START_TEST(pointers_round_trip_through_their_text) {
  for (const char* text : {"", "/", "//", "/a~1b/~0/x", "/~01", "/ ~1~0 "}) {
    JsonPointer p;
    ck_assert(deploy::parse_json_pointer(text, &p).is_ok());
    ck_assert_msg(deploy::format_json_pointer(p) == text, "%s does not print back", text);
  }
  JsonPointer p;
  ck_assert(deploy::parse_json_pointer("/~01", &p).is_ok());
  ck_assert_uint_eq(p.tokens.size(), 1);
  ck_assert_str_eq(p.tokens[0].c_str(), "~1");
}
END_TEST

Suite* json_pointer_suite() {
  Suite* suite = suite_create("json_pointer");
  TCase* tc = tcase_create("resolve");
  tcase_add_test(tc, the_rfc_examples_resolve);
  tcase_add_test(tc, a_github_push_gives_its_commit_and_ref);
  tcase_add_test(tc, array_indexes_are_plain_decimals);
  tcase_add_test(tc, malformed_pointers_are_refused);
  tcase_add_test(tc, pointers_round_trip_through_their_text);
  suite_add_tcase(suite, tc);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(json_pointer_suite);
