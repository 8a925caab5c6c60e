#include "follow.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

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

int follow_job(Client& client, uint64_t id, FollowOutput output) {
  const std::string path = "/jobs/" + std::to_string(id);
  OutageAllowance outage;
  LiveLine live;
  std::optional<JobView> last;
  for (;;) {
    Reply reply = client.get(path);
    if (reply.interrupted || interrupted()) {
      live.end();
      return report_interruption(id);
    }
    if (outage.tolerates(reply)) {
      sleep_unless_interrupted(kPollMilliseconds);
      continue;
    }
    if (!reply.ok()) {
      live.end();
      return report_failure(reply, client);
    }
    std::optional<JobView> job = parse_job(reply.body);
    if (!job) {
      live.end();
      std::fprintf(stderr, "deployctl: %s%s did not answer with a job\n", client.base_url().c_str(),
                   path.c_str());
      return kExitServerError;
    }
    const bool changed = !last || !same_progress(*last, *job);
    const Micros now = wall_now();
    switch (output) {
      case FollowOutput::progress_bar:
        live.show(progress_bar_line(*job, now, terminal_columns(STDOUT_FILENO) - 1));
        break;
      case FollowOutput::change_lines:
        if (changed) print_line(change_line(*job, now));
        break;
      case FollowOutput::json:
        if (changed) {
          std::string body = reply.body;
          while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
          print_line(body);
        }
        break;
    }
    last = std::move(job);
    if (is_final_state(last->state)) {
      live.end();
      if (output != FollowOutput::json) print_line(summary_line(*last));
      if (last->state != "succeeded") print_log_tail(client, id);
      return exit_code_for_final_state(last->state);
    }
    sleep_unless_interrupted(kPollMilliseconds);
  }
}

int copy_log(Client& client, uint64_t id, bool until_finished) {
  const std::string path = "/jobs/" + std::to_string(id) + "/log?offset=";
  OutageAllowance outage;
  uint64_t offset = 0;
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
