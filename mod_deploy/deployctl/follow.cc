#include "follow.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "event_id.h"
#include "event_stream_parser.h"
#include "exit_code.h"
#include "interruption.h"
#include "job_view.h"
#include "progress_bar.h"

namespace deploy::ctl {

namespace {

// How long a follow rides out a server that stopped answering after it had
// answered once (httpd restarting, say) before it gives up.
constexpr Micros kOutageAllowance = 30'000'000;

class OutageAllowance {
 public:
  // Call with every reply. True when `reply` failed in a way worth retrying.
  bool tolerates(const Reply& reply) {
    if (reply.ok()) {
      answered_ = true;
      failing_since_ = -1;
      return false;
    }
    const bool transient = !reply.interrupted && (!reply.reached || reply.status == 502 ||
                                                  reply.status == 503 || reply.status == 504);
    if (!answered_ || !transient) return false;
    if (failing_since_ < 0) failing_since_ = mono_now();
    return mono_now() - failing_since_ < kOutageAllowance;
  }

 private:
  bool answered_ = false;
  Micros failing_since_ = -1;  // monotonic
};

int report_interruption(uint64_t id) {
  std::fprintf(stderr,
               "deployctl: interrupted; job %llu goes on (deployctl cancel %llu stops it)\n",
               static_cast<unsigned long long>(id), static_cast<unsigned long long>(id));
  return kExitInterrupted;
}

void print_line(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// The live line of FollowOutput::progress_bar; ended with a newline before
// anything else is written.
class LiveLine {
 public:
  void show(const std::string& text) {
    if (text == shown_) return;
    // \r: back to the line's start; \033[K: erase what a longer line left.
    std::fprintf(stdout, "\r%s\033[K", text.c_str());
    std::fflush(stdout);
    shown_ = text;
  }
  void end() {
    if (shown_.empty()) return;
    std::fputc('\n', stdout);
    std::fflush(stdout);
    shown_.clear();
  }

 private:
  std::string shown_;
};

// The end of a log that a follow prints when the job did not succeed: at
// most kTailLines lines, read from at most the last kTailBytes bytes.
constexpr size_t kTailLines = 20;
constexpr uint64_t kTailBytes = 64 * 1024;

// The last kTailLines lines of `text`; when `partial_start` (the text does
// not begin at the log's start), a first line without its start is left out.
std::vector<std::string_view> last_lines(std::string_view text, bool partial_start) {
  if (text.ends_with('\n')) text.remove_suffix(1);
  std::vector<std::string_view> lines;
  while (!text.empty() && lines.size() < kTailLines) {
    const size_t newline = text.rfind('\n');
    if (newline == text.npos) {
      if (!partial_start) lines.push_back(text);
      break;
    }
    lines.push_back(text.substr(newline + 1));
    text = text.substr(0, newline);
  }
  return {lines.rbegin(), lines.rend()};
}

// Prints the last lines of the log of job `id` to stderr, each made
// printable, under a line that says what they are. Prints nothing when the
// log is empty or cannot be read: the follow's own result stands.
void print_log_tail(Client& client, uint64_t id) {
  const std::string path = "/jobs/" + std::to_string(id) + "/log?offset=";
  // An offset past the end answers no bytes, only X-Log-Size.
  const Reply sized = client.get(path + "9223372036854775807");
  if (!sized.ok()) return;
  const std::string size_text = sized.header("X-Log-Size").value_or("");
  uint64_t size = 0;
  const auto [end, error] =
      std::from_chars(size_text.data(), size_text.data() + size_text.size(), size);
  if (error != std::errc() || end != size_text.data() + size_text.size() || size == 0) return;
  const uint64_t from = size > kTailBytes ? size - kTailBytes : 0;
  const Reply tail = client.get(path + std::to_string(from));
  if (!tail.ok()) return;
  const std::vector<std::string_view> lines = last_lines(tail.body, from > 0);
  if (lines.empty()) return;
  std::fprintf(stderr, "deployctl: the last %zu lines of the log of job %llu:\n", lines.size(),
               static_cast<unsigned long long>(id));
  for (std::string_view line : lines) std::fprintf(stderr, "  %s\n", printable(line).c_str());
  std::fflush(stderr);
}

}  // namespace

int report_failure(const Reply& reply, const Client& client) {
  if (reply.interrupted) {
    std::fputs("deployctl: interrupted\n", stderr);
    return kExitInterrupted;
  }
  std::fprintf(stderr, "deployctl: %s\n",
               printable(describe_failure(reply, client.base_url())).c_str());
  return kExitServerError;
}

namespace {

// How often a follow retries a stream that broke; doubled at each failure
// up to kMaxStreamBackoff, and ridden out for at most kOutageAllowance.
constexpr int kFirstStreamBackoffMilliseconds = 250;
constexpr int kMaxStreamBackoffMilliseconds = 4000;

// A stream that the server ends sooner than this without an event is no
// stream to follow (DeployEventsTimeout 0).
constexpr Micros kShortestStreamMicros = 500'000;

enum class StreamOutcome {
  done,         // the handler had its last event
  poll,         // no stream here (or no more): poll for the rest
  interrupted,  // SIGINT or SIGTERM
  too_large,    // the server sent a line or an event past the parser's limit
};

// Follows GET BASE/jobs/ID/events, handing each event to `on_event` (false:
// done), reconnecting with Last-Event-ID when the stream ends before that.
//
// Only a stream that opened is retried: an answer that is no stream (404 of
// a server without the route, 403, 405, 503 too_many_streams, a proxy's 502
// or 504, a 200 that is not text/event-stream) or no answer at all on the
// first request means polling, which also reports an error in the usual
// words. Once a stream was open, a broken connection or a 502/503/504 (httpd
// restarting) is retried with backoff for at most kOutageAllowance; a stream
// that opened but sent nothing for kStreamStallSeconds (a proxy that buffers)
// or that the server ended at once without an event means polling.
StreamOutcome follow_stream(Client& client, uint64_t id,
                            const std::function<bool(const StreamEvent&)>& on_event,
                            const std::function<void()>& on_tick) {
  const std::string path = "/jobs/" + std::to_string(id) + "/events";
  std::string last_event_id;
  const StreamHandler handler{[&](const StreamEvent& event) {
                                last_event_id = event.id;
                                return on_event(event);
                              },
                              on_tick};
  bool opened_once = false;
  Micros failing_since = -1;  // monotonic
  int backoff = kFirstStreamBackoffMilliseconds;
  for (;;) {
    const Micros asked_at = mono_now();
    const StreamReply stream = client.stream(path, last_event_id, handler);
    if (stream.reply.interrupted || interrupted()) return StreamOutcome::interrupted;
    if (stream.too_large) return StreamOutcome::too_large;
    if (stream.stopped) return StreamOutcome::done;
    if (stream.opened) {
      opened_once = true;
      failing_since = -1;
      if (stream.stalled && stream.events == 0) return StreamOutcome::poll;
      if (stream.reply.reached) {
        // The server ended it (DeployEventsTimeout, a restart): resume at
        // once, unless it ends at once without an event (DeployEventsTimeout 0).
        if (stream.events == 0 && mono_now() - asked_at < kShortestStreamMicros)
          return StreamOutcome::poll;
        backoff = kFirstStreamBackoffMilliseconds;
        continue;
      }
    } else {
      const long status = stream.reply.status;
      const bool restarting = status == 502 || status == 503 || status == 504;
      if (!opened_once || (stream.reply.reached && !restarting)) return StreamOutcome::poll;
      if (failing_since < 0) failing_since = mono_now();
      if (mono_now() - failing_since >= kOutageAllowance) return StreamOutcome::poll;
    }
    sleep_unless_interrupted(backoff);
    backoff = std::min(backoff * 2, kMaxStreamBackoffMilliseconds);
  }
}

// What a follow shows of a job, from the stream or from polls alike.
class JobDisplay {
 public:
  JobDisplay(Client& client, uint64_t id, FollowOutput output)
      : client_(client), id_(id), output_(output) {}

  // Shows the job of `json`, the server's job JSON; true when it is final.
  bool show(const JobView& job, std::string_view json) {
    const bool changed = !last_ || !same_progress(*last_, job);
    switch (output_) {
      case FollowOutput::progress_bar:
        live_.show(progress_bar_line(job, wall_now(), terminal_columns(STDOUT_FILENO) - 1));
        break;
      case FollowOutput::change_lines:
        if (changed) print_line(change_line(job, wall_now()));
        break;
      case FollowOutput::json:
        if (changed) {
          while (!json.empty() && (json.back() == '\n' || json.back() == '\r'))
            json.remove_suffix(1);
          print_line(std::string(json));
        }
        break;
    }
    last_ = job;
    return is_final_state(job.state);
  }

  // Redraws the bar, whose clock moves also while the job does not change.
  void tick() {
    if (output_ == FollowOutput::progress_bar && last_)
      live_.show(progress_bar_line(*last_, wall_now(), terminal_columns(STDOUT_FILENO) - 1));
  }

  // Ends the live line, so that a message starts on a line of its own.
  void end_line() { live_.end(); }

  // After the final job: the summary, the log's end unless it succeeded,
  // and the exit status.
  int finish() {
    live_.end();
    if (output_ != FollowOutput::json) print_line(summary_line(*last_));
    if (last_->state != "succeeded") print_log_tail(client_, id_);
    return exit_code_for_final_state(last_->state);
  }

 private:
  Client& client_;
  uint64_t id_;
  FollowOutput output_;
  LiveLine live_;
  std::optional<JobView> last_;
};

int report_not_a_job(const Client& client, const std::string& path) {
  std::fprintf(stderr, "deployctl: %s%s did not answer with a job\n", client.base_url().c_str(),
               path.c_str());
  return kExitServerError;
}

int report_too_large(uint64_t id) {
  std::fprintf(stderr,
               "deployctl: the event stream of job %llu sent a line or an event larger than "
               "%zu MiB\n",
               static_cast<unsigned long long>(id), EventStreamParser::kDefaultLimit >> 20);
  return kExitServerError;
}

// Polls GET BASE/jobs/ID every kPollMilliseconds until the job is final.
int poll_job(Client& client, uint64_t id, JobDisplay& display) {
  const std::string path = "/jobs/" + std::to_string(id);
  OutageAllowance outage;
  for (;;) {
    Reply reply = client.get(path);
    if (reply.interrupted || interrupted()) {
      display.end_line();
      return report_interruption(id);
    }
    if (outage.tolerates(reply)) {
      sleep_unless_interrupted(kPollMilliseconds);
      continue;
    }
    if (!reply.ok()) {
      display.end_line();
      return report_failure(reply, client);
    }
    std::optional<JobView> job = parse_job(reply.body);
    if (!job) {
      display.end_line();
      return report_not_a_job(client, path);
    }
    if (display.show(*job, reply.body)) return display.finish();
    sleep_unless_interrupted(kPollMilliseconds);
  }
}

}  // namespace

int follow_job(Client& client, uint64_t id, FollowOutput output) {
  JobDisplay display(client, id, output);
  bool not_a_job = false;
  const StreamOutcome outcome = follow_stream(
      client, id,
      [&](const StreamEvent& event) {
        if (event.name != "job") return true;
        std::optional<JobView> job = parse_job(event.data);
        if (!job) {
          not_a_job = true;
          return false;
        }
        return !display.show(*job, event.data);
      },
      [&] { display.tick(); });
  switch (outcome) {
    case StreamOutcome::done:
      if (!not_a_job) return display.finish();
      display.end_line();
      return report_not_a_job(client, "/jobs/" + std::to_string(id) + "/events");
    case StreamOutcome::poll:
      return poll_job(client, id, display);
    case StreamOutcome::interrupted:
      display.end_line();
      return report_interruption(id);
    case StreamOutcome::too_large:
      display.end_line();
      return report_too_large(id);
  }
  return kExitServerError;
}

int copy_log(Client& client, uint64_t id, bool until_finished) {
  uint64_t offset = 0;
  if (until_finished) {
    const StreamOutcome outcome = follow_stream(
        client, id,
        [&](const StreamEvent& event) {
          if (event.name == "job") {
            const std::optional<JobView> job = parse_job(event.data);
            return !(job && is_final_state(job->state));
          }
          if (event.name != "log") return true;
          // SSE drops the newline after the last line; the id's offset says
          // whether the log had one (only a final line may lack it).
          const std::optional<JobEventId> sent =
              parse_job_event_id(event.id, std::numeric_limits<uint64_t>::max());
          const bool newline = !sent || sent->offset != offset + event.data.size();
          std::fwrite(event.data.data(), 1, event.data.size(), stdout);
          if (newline) std::fputc('\n', stdout);
          std::fflush(stdout);
          offset = sent ? sent->offset : offset + event.data.size() + (newline ? 1 : 0);
          return true;
        },
        {});
    switch (outcome) {
      case StreamOutcome::done:
        return kExitSucceeded;
      case StreamOutcome::poll:
        break;
      case StreamOutcome::interrupted:
        return report_interruption(id);
      case StreamOutcome::too_large:
        return report_too_large(id);
    }
  }
  const std::string path = "/jobs/" + std::to_string(id) + "/log?offset=";
  OutageAllowance outage;
  for (;;) {
    Reply reply = client.get(path + std::to_string(offset));
    if (reply.interrupted || interrupted()) return report_interruption(id);
    if (until_finished && outage.tolerates(reply)) {
      sleep_unless_interrupted(kPollMilliseconds);
      continue;
    }
    if (!reply.ok()) return report_failure(reply, client);
    std::fwrite(reply.body.data(), 1, reply.body.size(), stdout);
    std::fflush(stdout);
    offset += reply.body.size();
    if (!until_finished || reply.header("X-More-Data") != "true") return kExitSucceeded;
    sleep_unless_interrupted(kPollMilliseconds);
  }
}

}  // namespace deploy::ctl
