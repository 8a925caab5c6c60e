#include "client.h"

#include <jansson.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>

#include "clock.h"
#include "interruption.h"
#include "signature.h"

namespace deploy::ctl {

namespace {

constexpr long kConnectTimeoutSeconds = 10;
// A stalled server: below one byte per second for this long ends a request.
constexpr long kStallSeconds = 60;

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}

size_t collect_body(char* data, size_t size, size_t count, void* reply) {
  static_cast<Reply*>(reply)->body.append(data, size * count);
  return size * count;
}

// Called once per header line; a status line starts a new answer (after
// "100 Continue", say), so the headers of an earlier one are dropped.
size_t collect_header(char* data, size_t size, size_t count, void* reply_pointer) {
  auto* reply = static_cast<Reply*>(reply_pointer);
  const std::string_view line = trim(std::string_view(data, size * count));
  if (line.starts_with("HTTP/")) {
    reply->headers.clear();
    reply->reason.clear();
    // "HTTP/1.1 404 Not Found": the reason is after the second space.
    const size_t first = line.find(' ');
    const size_t second = first == line.npos ? line.npos : line.find(' ', first + 1);
    if (second != line.npos) reply->reason = std::string(trim(line.substr(second + 1)));
  } else if (const size_t colon = line.find(':'); colon != line.npos) {
    reply->headers[lower(std::string(trim(line.substr(0, colon))))] =
        std::string(trim(line.substr(colon + 1)));
  }
  return size * count;
}

int abort_when_interrupted(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return interrupted() ? 1 : 0;
}

// The bytes of an answer that is not an event stream kept for its error message.
constexpr size_t kMaxErrorBody = 64 * 1024;

struct HeaderList {
  curl_slist* list = nullptr;
  void add(const std::string& line) {
    curl_slist* longer = curl_slist_append(list, line.c_str());
    if (!longer) throw std::bad_alloc();
    list = longer;
  }
  ~HeaderList() { curl_slist_free_all(list); }
};

}  // namespace

struct Client::StreamContext {
  CURL* curl;
  const StreamHandler& handler;
  StreamReply& result;
  EventStreamParser parser;
  bool decided = false;  // whether the answer is a stream (result.opened)
  std::string body;      // of an answer that is no stream
  int64_t last_byte_at;  // monotonic; the request's start before the first byte
};

namespace {

// Whether the answer is an event stream: known once its headers are read.
void decide_whether_stream(Client::StreamContext& context) {
  context.decided = true;
  long status = 0;
  const char* type = nullptr;
  curl_easy_getinfo(context.curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(context.curl, CURLINFO_CONTENT_TYPE, &type);
  context.result.opened = status == 200 && type && lower(type).starts_with("text/event-stream");
}

size_t stream_body(char* data, size_t size, size_t count, void* context_pointer) {
  auto* context = static_cast<Client::StreamContext*>(context_pointer);
  StreamReply& result = context->result;
  context->last_byte_at = mono_now();
  if (!context->decided) decide_whether_stream(*context);
  const std::string_view chunk(data, size * count);
  if (!result.opened) {
    context->body.append(
        chunk.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, context->body.size())));
    return chunk.size();
  }
  switch (context->parser.feed(chunk)) {
    case EventStreamParser::Result::more:
      return chunk.size();
    case EventStreamParser::Result::stopped:
      result.stopped = true;
      return 0;
    case EventStreamParser::Result::too_large:
      result.too_large = true;
      return 0;
  }
  return 0;
}

int tick_unless_interrupted(void* context_pointer, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  if (interrupted()) return 1;
  auto* context = static_cast<Client::StreamContext*>(context_pointer);
  // libcurl's low-speed limit averages: a keepalive of a few bytes every 15 s
  // is below 1 byte/s, yet the stream is alive. What counts is the silence.
  if (mono_now() - context->last_byte_at > kStreamStallSeconds * 1'000'000) {
    context->result.stalled = true;
    return 1;
  }
  if (context->result.opened && context->handler.on_tick) context->handler.on_tick();
  return 0;
}

// With `stream`, a transfer's bytes go to its parser; without, back to the
// defaults of every other request (the constructor's).
void use_stream_callbacks(CURL* curl, Client::StreamContext* stream) {
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, stream ? stream_body : collect_body);
  if (stream) curl_easy_setopt(curl, CURLOPT_WRITEDATA, stream);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION,
                   stream ? tick_unless_interrupted : abort_when_interrupted);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, stream);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stream ? 0L : kStallSeconds);
}

}  // namespace

std::optional<std::string> Reply::header(std::string name) const {
  auto it = headers.find(lower(std::move(name)));
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

Client::Client(std::string base_url, Credentials credentials,
               std::optional<std::string> signing_key)
    : curl_(curl_easy_init()),
      base_url_(std::move(base_url)),
      credentials_(std::move(credentials)),
      signing_key_(std::move(signing_key)) {
  if (!curl_) throw std::runtime_error("libcurl cannot be initialised");
  CURL* curl = curl_.get();
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, kStallSeconds);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "deployctl/" DEPLOYCTL_VERSION);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort_when_interrupted);
  // ~/.netrc supplies the credentials --user does not give. libcurl reads
  // it only when no user name is set as an option; a user name in the URL
  // selects that login's entry.
  curl_easy_setopt(curl, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_OPTIONAL));
  request_prefix_ = base_url_;
  if (credentials_.user && credentials_.password) {
    curl_easy_setopt(curl, CURLOPT_USERNAME, credentials_.user->c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, credentials_.password->c_str());
  } else if (credentials_.user) {
    const size_t authority = request_prefix_.find("://") + 3;
    request_prefix_.insert(authority, escape(*credentials_.user) + "@");
  }
}

std::string Client::escape(std::string_view text) {
  char* escaped = curl_easy_escape(curl_.get(), text.data(), static_cast<int>(text.size()));
  if (!escaped) throw std::bad_alloc();
  std::string result(escaped);
  curl_free(escaped);
  return result;
}

Reply Client::get(std::string_view path) {
  CURL* curl = curl_.get();
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  return perform(path, nullptr);
}

Reply Client::post(std::string_view path, std::string_view content_type, const std::string& body) {
  CURL* curl = curl_.get();
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  HeaderList headers;
  headers.add("Content-Type: " + std::string(content_type));
  headers.add("Expect:");  // the body is small: no "100 Continue" round trip
  if (signing_key_) headers.add("X-Hub-Signature-256: " + signature_header(*signing_key_, body));
  return perform(path, headers.list);
}

StreamReply Client::stream(std::string_view path, const std::string& last_event_id,
                           const StreamHandler& handler) {
  CURL* curl = curl_.get();
  StreamReply result;
  StreamContext context{curl,
                        handler,
                        result,
                        EventStreamParser([&](const StreamEvent& event) {
                          ++result.events;
                          return handler.on_event(event);
                        }),
                        false,
                        {},
                        mono_now()};
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  HeaderList headers;
  headers.add("Accept: text/event-stream");
  if (!last_event_id.empty()) headers.add("Last-Event-ID: " + last_event_id);
  result.reply = perform(path, headers.list, &context);
  // A stream that ended without a byte (DeployEventsTimeout, nothing new).
  if (!context.decided && result.reply.reached) decide_whether_stream(context);
  if (!result.opened && result.reply.reached) result.reply.body = std::move(context.body);
  return result;
}

Reply Client::perform(std::string_view path, const curl_slist* headers, StreamContext* stream) {
  CURL* curl = curl_.get();
  const std::string url = request_prefix_ + std::string(path);
  Reply reply;
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  if (stream) use_stream_callbacks(curl, stream);
  const CURLcode code = curl_easy_perform(curl);
  if (stream) use_stream_callbacks(curl, nullptr);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  // A stream that the caller or the parser ended was answered all the same.
  const bool ended_here =
      stream && code == CURLE_WRITE_ERROR && (stream->result.stopped || stream->result.too_large);
  if (code == CURLE_OK || ended_here) {
    reply.reached = true;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
    return reply;
  }
  reply.body.clear();
  reply.headers.clear();
  const bool stalled = stream && stream->result.stalled;
  reply.interrupted = code == CURLE_ABORTED_BY_CALLBACK && !stalled;
  long os_error = 0;
  curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_error);
  if (stalled)
    reply.failure = "no byte for " + std::to_string(kStreamStallSeconds) + " seconds";
  else if (code == CURLE_COULDNT_CONNECT && os_error != 0)
    reply.failure = std::strerror(static_cast<int>(os_error));  // "Connection refused"
  else
    reply.failure = error[0] ? error : curl_easy_strerror(code);
  return reply;
}

std::string describe_failure(const Reply& reply, const std::string& base_url) {
  if (reply.interrupted) return "interrupted";
  if (!reply.reached) return "cannot reach " + base_url + ": " + reply.failure;
  std::string text = std::to_string(reply.status);
  json_error_t parse_error;
  json_t* answer = json_loadb(reply.body.data(), reply.body.size(), 0, &parse_error);
  const char* code = json_string_value(json_object_get(answer, "error"));
  const char* message = json_string_value(json_object_get(answer, "message"));
  if (code) {
    text += std::string(" ") + code;
    if (message) text += std::string(": ") + message;
  } else if (!reply.reason.empty()) {
    text += " " + reply.reason;
  }
  json_decref(answer);
  return text;
}

}  // namespace deploy::ctl
