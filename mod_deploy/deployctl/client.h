// HTTP to mod_deploy through libcurl: one connection, kept alive between
// requests, with the user's credentials and, when asked, signed bodies.
#pragma once

#include <curl/curl.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "event_stream_parser.h"

namespace deploy::ctl {

// The outcome of one request: the server's answer, or why there is none.
struct Reply {
  bool reached = false;  // false: no HTTP answer (see `failure`)
  bool interrupted = false;
  std::string failure;  // why the server was not reached: "Connection refused"

  long status = 0;
  std::string reason;                          // "Not Found"
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  bool ok() const { return reached && status >= 200 && status < 300; }
  std::optional<std::string> header(std::string name) const;
};

// What Client::stream() is given to do with an event stream.
struct StreamHandler {
  // Each event, in order; false ends the stream (the caller has what it wanted).
  std::function<bool(const StreamEvent&)> on_event;
  // About once a second while the stream is open (to redraw a clock, say).
  std::function<void()> on_tick;
};

// How a request for an event stream ended.
struct StreamReply {
  // The answer's status and headers, and its body when it was no stream.
  // When `opened`: reached with the server's end of the stream, or not
  // reached (`failure`) when the connection broke or stalled.
  Reply reply;
  bool opened = false;     // the answer was 200 text/event-stream
  bool stalled = false;    // no byte for kStreamStallSeconds (a buffering proxy, say)
  bool stopped = false;    // on_event returned false
  bool too_large = false;  // a line or an event past EventStreamParser's limit
  size_t events = 0;       // the events read
};

// With a keepalive every 15 s from the server, this long without a byte
// means the stream does not come through.
constexpr long kStreamStallSeconds = 45;

struct Credentials {
  std::optional<std::string> user;
  std::optional<std::string> password;  // unset: ~/.netrc may supply it
};

class Client {
 public:
  // `base_url`: the Location of mod_deploy, without a trailing slash.
  // `signing_key`: when set, every POST carries X-Hub-Signature-256.
  Client(std::string base_url, Credentials credentials, std::optional<std::string> signing_key);

  // `path` is relative to the base URL ("/jobs/42"); its query, if any,
  // must already be escaped (see escape()).
  Reply get(std::string_view path);
  Reply post(std::string_view path, std::string_view content_type, const std::string& body);
  // GET `path` as an event stream (Accept: text/event-stream, with
  // Last-Event-ID when `last_event_id` is not empty), its events handed to
  // `handler` as they arrive.
  StreamReply stream(std::string_view path, const std::string& last_event_id,
                     const StreamHandler& handler);

  const std::string& base_url() const { return base_url_; }

  struct StreamContext;  // what stream()'s callbacks share (client.cc)

  // `text` %-escaped for a URL path segment or query value.
  std::string escape(std::string_view text);

 private:
  Reply perform(std::string_view path, const struct curl_slist* headers,
                StreamContext* stream = nullptr);

  struct CurlCleanup {
    void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
  };
  std::unique_ptr<CURL, CurlCleanup> curl_;
  std::string base_url_;
  std::string request_prefix_;  // base_url_, with "USER@" when ~/.netrc is to find USER's password
  Credentials credentials_;
  std::optional<std::string> signing_key_;
};

// One line for a person about a reply that is not ok(), without the
// "deployctl: " prefix: "cannot reach URL: Connection refused",
// "404 not_found: no job 99" (the module's error JSON), "401 Unauthorized".
std::string describe_failure(const Reply& reply, const std::string& base_url);

}  // namespace deploy::ctl
