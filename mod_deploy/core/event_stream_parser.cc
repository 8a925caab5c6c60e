#include "event_stream_parser.h"

#include <utility>

namespace deploy {

namespace {
constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
}

EventStreamParser::EventStreamParser(std::function<bool(const StreamEvent&)> on_event, size_t limit)
    : on_event_(std::move(on_event)), limit_(limit) {}

EventStreamParser::Result EventStreamParser::feed(std::string_view chunk) {
  while (result_ == Result::more && !chunk.empty()) {
    if (after_cr_) {
      after_cr_ = false;
      if (chunk.front() == '\n') {
        chunk.remove_prefix(1);
        continue;
      }
    }
    const size_t end = chunk.find_first_of("\r\n");
    const std::string_view part = chunk.substr(0, end);
    if (line_.size() + part.size() > limit_) {
      result_ = Result::too_large;
      break;
    }
    line_.append(part);
    if (end == chunk.npos) break;
    after_cr_ = chunk[end] == '\r';
    chunk.remove_prefix(end + 1);
    if (!end_line()) result_ = Result::stopped;
  }
  return result_;
}

bool EventStreamParser::end_line() {
  std::string_view line = line_;
  if (at_start_) {
    at_start_ = false;
    if (line.starts_with(kByteOrderMark)) line.remove_prefix(kByteOrderMark.size());
  }
  bool go_on = true;
  if (line.empty()) {
    // A blank line ends the event; one without data is not dispatched.
    if (!data_.empty()) {
      data_.pop_back();  // the "\n" after the last data line
      const StreamEvent event{name_.empty() ? "message" : name_, last_event_id_, data_};
      go_on = on_event_(event);
    }
    name_.clear();
    data_.clear();
  } else if (!line.starts_with(':')) {
    const size_t colon = line.find(':');
    std::string_view value;
    if (colon != line.npos) {
      value = line.substr(colon + 1);
      if (value.starts_with(' ')) value.remove_prefix(1);
    }
    field(line.substr(0, colon), value);
  }
  line_.clear();
  return go_on;
}

void EventStreamParser::field(std::string_view name, std::string_view value) {
  if (name == "event") {
    name_ = value;
  } else if (name == "data") {
    data_.append(value);
    data_.push_back('\n');
    if (data_.size() > limit_) result_ = Result::too_large;
  } else if (name == "id") {
    // An id with a NUL is ignored, as SSE says.
    if (value.find('\0') == value.npos) last_event_id_ = value;
  }
  // `retry` and unknown fields: nothing deployctl needs.
}

}  // namespace deploy
