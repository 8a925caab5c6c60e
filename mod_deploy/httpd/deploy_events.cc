#include "deploy_events.h"

#include <httpd.h>
#include <ap_mpm.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_portable.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "deploy_module.h"
#include "deploy_response.h"
#include "event_id.h"
#include "job_json.h"
#include "route.h"

namespace deploy {
namespace {

constexpr Micros kHeartbeat = 15 * 1000000LL;  // keeps proxies from closing an idle stream
// An idle stream looks this often whether its httpd child is stopping: a
// stream must not hold a child past `apachectl stop`, `restart` or `graceful`.
constexpr Micros kStoppingCheck = 1000000LL;
constexpr size_t kLogChunk = 64 * 1024;  // output read per step
// A line of output longer than a chunk still reaches the stream whole, in
// one data: line, up to this size; a longer one is cut here (it would hold
// this much memory per stream).
constexpr size_t kLongestLine = 4 * 1024 * 1024;
// A stream refused for the limits: streams end after DeployEventsTimeout.
constexpr int kStreamRetryAfterSeconds = 10;
constexpr Micros kBatchWindow = 100000;  // see EventStream::pace
constexpr size_t kMaxJobsPerBatch = 1000;
// A child's feed of changes (ChangeFeed) reads the table at most this often,
// and keeps the latest state of this many jobs.
constexpr Micros kFeedRefresh = 5000;
constexpr size_t kFeedCapacity = 1024;

class EventStream {
 public:
  EventStream(request_rec* r, Micros lifetime)
      : r_(r), deadline_(mono_now() + lifetime), phase_(draw_phase(r)) {
    r->status = HTTP_OK;
    ap_set_content_type(r, "text/event-stream; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    // No Content-Length and no compression: events must leave at once.
    apr_table_setn(r->subprocess_env, "no-gzip", "1");
  }

  void send(std::string_view event, const std::string& id, std::string_view data) {
    std::string out;
    out.reserve(data.size() + 64);
    out.append("event: ").append(event).append("\nid: ").append(id).append("\n");
    // Every line of the data is a data: line; CR, LF and CRLF all end lines.
    // Job JSON has none, and log output is whole lines.
    size_t start = 0;
    for (;;) {
      size_t end = start;
      while (end < data.size() && data[end] != '\n' && data[end] != '\r') ++end;
      out.append("data: ").append(data.substr(start, end - start)).append("\n");
      if (end == data.size()) break;
      start = end + ((data[end] == '\r' && end + 1 < data.size() && data[end + 1] == '\n') ? 2 : 1);
      if (start == data.size()) break;
    }
    out += '\n';
    write(out);
    ++events_;
  }

  // Under a burst of changes a stream passes at most once per kBatchWindow,
  // and sends what changed meanwhile together: hundreds of watchers then cost
  // a few passes each, not one per change. A stream passes at its own phase
  // of the window, drawn when it opens: one change wakes every waiting stream
  // at once, and streams that kept passing together would write in bursts
  // that requests queue behind (docs/performance.md). The first change after
  // a quiet spell is sent at once.
  void pace() {
    Micros now = mono_now();
    if (now - last_pass_ >= kBatchWindow) {
      last_pass_ = now;
      return;
    }
    Micros next = last_pass_ + kBatchWindow;
    next += ((phase_ - next) % kBatchWindow + kBatchWindow) % kBatchWindow;
    usleep(useconds_t(next - now));
    last_pass_ = next;
  }

  bool open() const {
    return !r_->connection->aborted && !failed_ && mono_now() < deadline_ && !child_stopping();
  }
  // How long to sleep before looking again: not past the end of the stream,
  // and short enough to notice a stop of the child in time.
  Micros wait_budget() const {
    return std::clamp<Micros>(deadline_ - mono_now(), 0, kStoppingCheck);
  }
  // Called after a wait that saw no change (at least once per
  // kStoppingCheck): ends the stream when the client has gone, else sends a
  // heartbeat once the stream has been quiet for kHeartbeat.
  void idle() {
    if (client_gone())
      gone_ = failed_ = true;
    else if (mono_now() - last_write_ >= kHeartbeat)
      heartbeat();
  }

  // Why open() turned false, for end().
  const char* why_closed() const {
    if (gone_) return "the client closed the connection";
    if (failed_ || r_->connection->aborted) return "a write failed";
    if (mono_now() >= deadline_) return "DeployEventsTimeout";
    return "httpd is stopping or reloading";
  }

  // LogLevel deploy:debug says how each stream ended.
  void end(const char* why) const {
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r_,
                  "mod_deploy: event stream %s ended after %.1f s and %" APR_UINT64_T_FMT
                  " events: %s",
                  r_->uri, double(mono_now() - opened_) / 1e6, apr_uint64_t(events_), why);
  }

  void flush() {
    if (!failed_ && ap_rflush(r_) < 0) failed_ = true;
  }

 private:
  void write(const std::string& text) {
    if (failed_) return;
    last_write_ = mono_now();
    if (ap_rwrite(text.data(), int(text.size()), r_) < 0) failed_ = true;
  }

  void heartbeat() { write(": keepalive\n\n"); }

  // A client that closed the connection (a closed browser tab) is otherwise
  // noticed only when a write fails: after the next change, or two
  // heartbeats (30 s), all that time holding an httpd worker. As nginx does
  // for proxied requests, a client that shut down its side has gone.
  // Not on a secondary connection (an HTTP/2 stream): its socket is a
  // dummy of mod_http2's, not the client's, and mod_http2 aborts the
  // stream itself when the client resets it or goes.
  bool client_gone() const {
    if (r_->connection->master) return false;
    apr_socket_t* socket = ap_get_conn_socket(r_->connection);
    apr_os_sock_t fd;
    if (!socket || apr_os_sock_get(&fd, socket) != APR_SUCCESS) return false;
    struct pollfd p = {fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  }

  static bool child_stopping() {
    int mpm_state = AP_MPMQ_RUNNING;
    return ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS &&
           mpm_state == AP_MPMQ_STOPPING;
  }

  static Micros draw_phase(const request_rec* r) {
    // splitmix64 of the connection and the time: spread, not secret.
    uint64_t x = uint64_t(mono_now()) ^ (uint64_t(r->connection->id) << 32);
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return Micros((x ^ (x >> 31)) % uint64_t(kBatchWindow));
  }

  request_rec* r_;
  // Monotonic, as every time of a stream: a wall step neither ends a stream
  // early nor keeps it past DeployEventsTimeout.
  Micros opened_ = mono_now();
  Micros deadline_;
  Micros phase_;
  Micros last_write_ = mono_now();
  Micros last_pass_ = 0;
  uint64_t events_ = 0;
  bool failed_ = false;
  bool gone_ = false;  // the client closed the connection
};

// The job as it is now; nullopt when it is gone. *busy: the table could not
// be had in time (then nullopt too).
std::optional<Job> snapshot(const ModuleState& state, uint64_t id, bool* busy) {
  Job job;
  const Status st = state.store->get(id, &job);
  *busy = !st.is_ok() && st.code() != kNotFound;
  if (!st.is_ok()) return std::nullopt;
  state.settings->set_group(job);
  return job;
}

// Reads new output of the log from *offset: whole lines only, unless the job
// has finished (then everything) or a line is longer than kLongestLine. At
// most about a chunk is returned beyond the first whole line.
std::string read_new_output(JobStore& store, uint64_t id, uint64_t* offset, bool finished) {
  std::string data, piece;
  size_t last_newline = std::string::npos;
  bool at_end = false;
  while (data.size() < kLongestLine) {
    const size_t had = data.size();
    // No output (yet), or it cannot be read now: nothing new this time.
    if (!store.read_output(id, *offset + had, std::min(kLogChunk, kLongestLine - had), &piece)
             .is_ok() ||
        piece.empty()) {
      at_end = true;
      break;
    }
    data += piece;
    size_t newline = data.rfind('\n');
    if (newline != std::string::npos && newline >= had) last_newline = newline;
    if (last_newline != std::string::npos) break;  // a whole line at least
  }
  if (data.empty()) return "";
  if (!(finished && at_end) && data.size() < kLongestLine) {
    if (last_newline == std::string::npos) return "";  // a line still being written
    data.resize(last_newline + 1);
  } else if (data.size() >= kLongestLine && last_newline != std::string::npos) {
    data.resize(last_newline + 1);
  }
  *offset += data.size();
  return data;
}

const char* last_event_id(request_rec* r) { return apr_table_get(r->headers_in, "Last-Event-ID"); }

// A stream past DeployEventsMaxStreams or DeployEventsMaxPerClient is refused
// before anything is sent; nullopt when it may open.
std::optional<RequestError> stream_refusal(request_rec* r, const StreamSlots::Claim& claim,
                                           const StreamSlots& slots) {
  if (claim.refusal() == StreamSlots::Refusal::none) return std::nullopt;
  apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, kStreamRetryAfterSeconds));
  const bool server = claim.refusal() == StreamSlots::Refusal::server_full;
  ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "mod_deploy: event stream refused: %s (%u)",
                server ? "DeployEventsMaxStreams reached" : "DeployEventsMaxPerClient reached",
                server ? slots.max_streams() : slots.max_per_client());
  return RequestError{HTTP_SERVICE_UNAVAILABLE, "too_many_streams",
                      server ? "the server has " + std::to_string(slots.max_streams()) +
                                   " event streams open already; try again later"
                             : "this client has " + std::to_string(slots.max_per_client()) +
                                   " event streams open already; close one or try again later"};
}

// The feed of this child for `base`, made on first use.
ChangeFeed& change_feed(const ModuleState& state, const std::string& base) {
  std::lock_guard<std::mutex> guard(state.feeds_mutex);
  std::unique_ptr<ChangeFeed>& feed = state.feeds[base];
  if (!feed)
    feed = std::make_unique<ChangeFeed>(
        *state.store,
        [base, settings = state.settings](Job job) {
          settings->set_group(job);
          return job_json(job, base);
        },
        kFeedRefresh, kFeedCapacity);
  return *feed;
}

}  // namespace

int stream_job_events(request_rec* r, const ModuleState& state, const std::string& base,
                      uint64_t id) {
  StreamSlots::Claim claim(*state.stream_slots, r->useragent_ip ? r->useragent_ip : "");
  if (auto refused = stream_refusal(r, claim, *state.stream_slots)) return send_error(r, *refused);
  JobEventId sent;
  if (const char* resume = last_event_id(r))
    sent = parse_job_event_id(resume, state.store->change_seq()).value_or(JobEventId{});
  EventStream stream(r, state.settings->events_timeout);
  if (r->header_only) return OK;
  const char* why = nullptr;
  while (stream.open()) {
    stream.pace();
    uint64_t seen = state.store->output_seq();
    bool busy = false;
    std::optional<Job> job = snapshot(state, id, &busy);
    if (busy) continue;  // the stream goes on; its deadline still holds
    if (!job) {
      why = "the job left the history";
      break;
    }
    bool finished = is_final(job->state);
    // Output first: a progress change is sent after the line that made it,
    // and the final state after the last of the output.
    for (;;) {
      std::string output = read_new_output(*state.store, id, &sent.offset, finished);
      if (output.empty()) break;
      stream.send("log", format_job_event_id(sent), output);
    }
    if (job->change_seq > sent.change) {
      sent.change = job->change_seq;
      stream.send("job", format_job_event_id(sent), job_json(*job, base));
    }
    stream.flush();
    if (finished) {
      why = "the job finished";
      break;
    }
    if (!state.store->wait_for_output(seen, stream.wait_budget())) stream.idle();
  }
  stream.end(why ? why : stream.why_closed());
  return OK;
}

int stream_all_events(request_rec* r, const ModuleState& state, TargetAccess& access,
                      const std::string& base) {
  StreamSlots::Claim claim(*state.stream_slots, r->useragent_ip ? r->useragent_ip : "");
  if (auto refused = stream_refusal(r, claim, *state.stream_slots)) return send_error(r, *refused);
  ChangeFeed& feed = change_feed(state, base);
  uint64_t since = state.store->change_seq();
  const char* resume = last_event_id(r);
  std::string since_param;
  if (r->args)
    if (auto query = parse_query(r->args))
      for (const auto& [name, value] : *query)
        if (name == "since") since_param = value;
  if (!resume && !since_param.empty()) resume = since_param.c_str();
  if (resume) since = parse_change_event_id(resume, since).value_or(since);

  EventStream stream(r, state.settings->events_timeout);
  if (r->header_only) return OK;
  stream.flush();  // the client learns at once that the stream is open
  std::vector<ChangeFeed::Event> events;
  while (stream.open()) {
    stream.pace();
    events.clear();
    since = feed.read(since, kMaxJobsPerBatch, &events);
    for (const ChangeFeed::Event& event : events)
      if (access.may_read(event.target))
        stream.send("job", std::to_string(event.change_seq), *event.data);
    stream.flush();
    if (!state.store->wait_for_change(since, stream.wait_budget()) && events.empty()) stream.idle();
  }
  stream.end(stream.why_closed());
  return OK;
}

}  // namespace deploy
