// Reading a text/event-stream (server-sent events) as it arrives, in chunks
// cut anywhere: the fields `event`, `id` and `data` of each event, comments
// (lines starting with ':') skipped, lines ended by CR, LF or CRLF, several
// `data` lines joined with "\n", and a blank line ending the event. What the
// server sends is bounded: a line or an event's data larger than the limit
// ends the stream with an error instead of growing without end.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace deploy {

struct StreamEvent {
  std::string name;  // "message" when the event had no `event` field
  std::string id;    // the last `id` seen in the stream so far, as SSE says
  std::string data;  // the `data` lines joined with "\n", without a last "\n"
};

class EventStreamParser {
 public:
  static constexpr size_t kDefaultLimit = 8 * 1024 * 1024;

  // `on_event` is called for every complete event with data; it returns
  // false to stop the parser (feed() then returns Result::stopped).
  explicit EventStreamParser(std::function<bool(const StreamEvent&)> on_event,
                             size_t limit = kDefaultLimit);

  enum class Result { more, stopped, too_large };
  // Parses `chunk`, the next bytes of the stream. Once it returned
  // anything but `more`, later calls return the same and parse nothing.
  Result feed(std::string_view chunk);

  const std::string& last_event_id() const { return last_event_id_; }

 private:
  bool end_line();  // false when the parser is to stop
  void field(std::string_view name, std::string_view value);

  std::function<bool(const StreamEvent&)> on_event_;
  size_t limit_;
  Result result_ = Result::more;
  bool at_start_ = true;       // a UTF-8 BOM here is skipped
  bool after_cr_ = false;      // an LF right after a CR ends no second line
  std::string line_;           // the line read so far
  std::string name_;           // the event being read
  std::string data_;           // its data, each line followed by "\n"
  std::string last_event_id_;  // kept from event to event
};

}  // namespace deploy
