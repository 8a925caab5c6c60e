// Reading server-sent events as deployctl receives them: in chunks cut at
// any byte, with any of the three line ends, comments and multi-line data,
// and bounded against a server that never ends a line or an event.
#include "event_stream_parser.h"

#include <string>
#include <vector>

#include "unit_test.h"

namespace {

using deploy::EventStreamParser;
using deploy::StreamEvent;

struct Collected {
  std::vector<StreamEvent> events;
  EventStreamParser parser{[this](const StreamEvent& event) {
                             events.push_back(event);
                             return true;
                           },
                           EventStreamParser::kDefaultLimit};
};

// The events of `stream` fed in chunks of the given sizes (the rest at the end).
std::vector<StreamEvent> parse_in_pieces(std::string_view stream, std::vector<size_t> cuts) {
  Collected collected;
  size_t at = 0;
  for (size_t cut : cuts) {
    ck_assert(collected.parser.feed(stream.substr(at, cut - at)) ==
              EventStreamParser::Result::more);
    at = cut;
  }
  ck_assert(collected.parser.feed(stream.substr(at)) == EventStreamParser::Result::more);
  return collected.events;
}

void assert_event(const StreamEvent& event, const char* name, const char* id, const char* data) {
  ck_assert_str_eq(event.name.c_str(), name);
  ck_assert_str_eq(event.id.c_str(), id);
  ck_assert_str_eq(event.data.c_str(), data);
}

// `stream` in one chunk gives exactly one event, this one.
void assert_one_event(std::string_view stream, const char* name, const char* id, const char* data) {
  const std::vector<StreamEvent> events = parse_in_pieces(stream, {});
  ck_assert_uint_eq(events.size(), 1);
  assert_event(events[0], name, id, data);
}

// What the server sends: a log event of two lines, a comment, a job event.
constexpr std::string_view kServerStream =
    "event: log\nid: 0.12\ndata: start 42\ndata: ::progress 40 Provisioning\n\n"
    ": keepalive\n\n"
    "event: job\nid: 7.12\ndata: {\"id\":42,\"state\":\"running\"}\n\n";

void assert_server_stream(const std::vector<StreamEvent>& events) {
  ck_assert_uint_eq(events.size(), 2);
  assert_event(events[0], "log", "0.12", "start 42\n::progress 40 Provisioning");
  assert_event(events[1], "job", "7.12", "{\"id\":42,\"state\":\"running\"}");
}

START_TEST(events_come_whole_in_one_chunk) {
  assert_server_stream(parse_in_pieces(kServerStream, {}));
}
END_TEST

START_TEST(a_stream_split_at_every_byte_gives_the_same_events) {
  for (size_t cut = 0; cut <= kServerStream.size(); ++cut)
    assert_server_stream(parse_in_pieces(kServerStream, {cut}));
  std::vector<size_t> every_byte;
  for (size_t cut = 1; cut < kServerStream.size(); ++cut) every_byte.push_back(cut);
  assert_server_stream(parse_in_pieces(kServerStream, every_byte));
}
END_TEST

START_TEST(cr_lf_and_crlf_all_end_lines_also_split_between_cr_and_lf) {
  std::string crlf, cr;
  for (char c : kServerStream) {
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    cr += c == '\n' ? '\r' : c;
  }
  for (const std::string& stream : {crlf, cr})
    for (size_t cut = 0; cut <= stream.size(); ++cut)
      assert_server_stream(parse_in_pieces(stream, {cut}));
  // Mixed: CRLF then a lone CR then LF.
  assert_one_event("data: a\r\ndata: b\rdata: c\n\r\n", "message", "", "a\nb\nc");
}
END_TEST

START_TEST(empty_data_lines_keep_empty_log_lines) {
  auto events = parse_in_pieces(
      "event: log\ndata: one\ndata:\ndata: three\n\n"
      "event: log\ndata:\n\n",
      {});
  ck_assert_uint_eq(events.size(), 2);
  assert_event(events[0], "log", "", "one\n\nthree");
  assert_event(events[1], "log", "", "");
}
END_TEST

START_TEST(only_one_space_after_the_colon_is_dropped) {
  assert_one_event("data:  two spaces\ndata:none\ndata\n\n", "message", "", " two spaces\nnone\n");
}
END_TEST

START_TEST(comments_unknown_fields_and_events_without_data_are_skipped) {
  // The event name does not carry over; the id does (SSE's last event id).
  assert_one_event(":hello\nretry: 10\nfoo: bar\n\nevent: job\nid: 3.0\n\ndata: x\n\n", "message",
                   "3.0", "x");
}
END_TEST

START_TEST(the_last_event_id_is_kept_until_a_new_one_and_an_unfinished_event_is_not_sent) {
  Collected collected;
  collected.parser.feed("id: 1.5\ndata: a\n\ndata: b\n\nid: 2.9\ndata: c\n");
  ck_assert_uint_eq(collected.events.size(), 2);
  assert_event(collected.events[1], "message", "1.5", "b");
  // "id: 2.9" was read, but its event has not ended: a resume must not skip it.
  ck_assert_str_eq(collected.events.back().id.c_str(), "1.5");
  collected.parser.feed("\n");
  assert_event(collected.events[2], "message", "2.9", "c");
  ck_assert_str_eq(collected.parser.last_event_id().c_str(), "2.9");
}
END_TEST

START_TEST(a_byte_order_mark_at_the_start_is_skipped) {
  auto events = parse_in_pieces(
      "\xEF\xBB\xBF"
      "data: x\n\n",
      {1, 2});
  ck_assert_uint_eq(events.size(), 1);
  assert_event(events[0], "message", "", "x");
}
END_TEST

START_TEST(a_line_or_an_event_larger_than_the_limit_ends_the_stream) {
  std::vector<StreamEvent> events;
  auto collect = [&events](const StreamEvent& event) {
    events.push_back(event);
    return true;
  };
  EventStreamParser long_line(collect, 16);
  ck_assert(long_line.feed("data: 0123456789") == EventStreamParser::Result::more);
  ck_assert(long_line.feed("x") == EventStreamParser::Result::too_large);
  ck_assert(long_line.feed("\n\n") == EventStreamParser::Result::too_large);

  EventStreamParser long_event(collect, 16);
  ck_assert(long_event.feed("data: 01234567\n") == EventStreamParser::Result::more);
  ck_assert(long_event.feed("data: 01234567\n") == EventStreamParser::Result::too_large);
  ck_assert_uint_eq(events.size(), 0);
}
END_TEST

START_TEST(the_callback_stops_the_parser) {
  int seen = 0;
  EventStreamParser parser([&seen](const StreamEvent&) { return ++seen < 1; });
  ck_assert(parser.feed("data: a\n\ndata: b\n\n") == EventStreamParser::Result::stopped);
  ck_assert_int_eq(seen, 1);
  ck_assert(parser.feed("data: c\n\n") == EventStreamParser::Result::stopped);
  ck_assert_int_eq(seen, 1);
}
END_TEST

Suite* event_stream_parser_suite() {
  Suite* suite = suite_create("event_stream_parser");
  TCase* tc = tcase_create("parse");
  tcase_add_test(tc, events_come_whole_in_one_chunk);
  tcase_add_test(tc, a_stream_split_at_every_byte_gives_the_same_events);
  tcase_add_test(tc, cr_lf_and_crlf_all_end_lines_also_split_between_cr_and_lf);
  tcase_add_test(tc, empty_data_lines_keep_empty_log_lines);
  tcase_add_test(tc, only_one_space_after_the_colon_is_dropped);
  tcase_add_test(tc, comments_unknown_fields_and_events_without_data_are_skipped);
  tcase_add_test(tc, the_last_event_id_is_kept_until_a_new_one_and_an_unfinished_event_is_not_sent);
  tcase_add_test(tc, a_byte_order_mark_at_the_start_is_skipped);
  tcase_add_test(tc, a_line_or_an_event_larger_than_the_limit_ends_the_stream);
  tcase_add_test(tc, the_callback_stops_the_parser);
  suite_add_tcase(suite, tc);
  return suite;
}

}  // namespace

DEPLOY_TEST_SUITE(event_stream_parser_suite);
