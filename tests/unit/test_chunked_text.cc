// ChunkedText: the text appended, in pieces none larger than 64 KiB, and its
// size, whatever the sizes of the appends.
#include "chunked_text.h"

#include <string>

#include "unit_test.h"

namespace {

using deploy::ChunkedText;

START_TEST(pieces_hold_the_text_and_none_exceeds_the_limit) {
  ChunkedText text;
  std::string expected;
  // Appends of every size around the limit, with content that shows order.
  for (size_t n : {size_t(1), size_t(7), ChunkedText::kPiece - 3, size_t(2), size_t(5),
                   3 * ChunkedText::kPiece + 11, size_t(0), ChunkedText::kPiece}) {
    std::string part;
    for (size_t i = 0; i < n; ++i) part += char('a' + (expected.size() + i) % 26);
    text += part;
    expected += part;
  }
  text += 'Z';
  expected += 'Z';
  ck_assert_uint_eq(text.size(), expected.size());
  ck_assert(text.str() == expected);
  for (size_t i = 0; i < text.pieces().size(); ++i) {
    ck_assert_uint_le(text.pieces()[i].size(), ChunkedText::kPiece);
    if (i + 1 < text.pieces().size())
      ck_assert_uint_eq(text.pieces()[i].size(), ChunkedText::kPiece);
  }
}
END_TEST

START_TEST(empty_text_has_no_piece) {
  ChunkedText text;
  text += "";
  ck_assert_uint_eq(text.size(), 0);
  ck_assert(text.pieces().empty());
}
END_TEST

Suite* chunked_text_suite() {
  Suite* s = suite_create("chunked_text");
  TCase* tc = tcase_create("pieces");
  tcase_add_test(tc, pieces_hold_the_text_and_none_exceeds_the_limit);
  tcase_add_test(tc, empty_text_has_no_piece);
  suite_add_tcase(s, tc);
  return s;
}

}  // namespace

DEPLOY_TEST_SUITE(chunked_text_suite);
