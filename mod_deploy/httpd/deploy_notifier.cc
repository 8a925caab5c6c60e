#include "deploy_notifier.h"

#include <http_log.h>

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <list>
#include <exception>
#include <string>
#include <vector>

#include "deploy_module.h"
#include "job_json.h"
#include "signature.h"
#include "store_spec.h"

namespace deploy {
namespace {

constexpr Micros kMillisecond = 1000;
constexpr Micros kSecond = 1000 * kMillisecond;
// Attempts under way at most, side by side.
constexpr size_t kInFlight = 16;
// The store is looked at again at least this often (a claim that lapsed, a
// change missed), and at most this often on changes.
constexpr Micros kIdleInterval = kSecond;
constexpr Micros kMinScanInterval = 200 * kMillisecond;
// Without any DeployNotify, only leftovers of an earlier configuration are
// looked for, seldom.
constexpr Micros kUnconfiguredInterval = 30 * kSecond;
// How often a busy store is asked again to record an attempt.
constexpr int kRecordTries = 5;

// The tests' hook (docs/architecture.md): DEPLOY_TEST_NOTIFICATION_DIVISOR
// in httpd's environment divides every retry delay, never the answer limit.
uint32_t retry_divisor() {
  const char* text = getenv("DEPLOY_TEST_NOTIFICATION_DIVISOR");
  if (!text) return 1;
  const long value = strtol(text, nullptr, 10);
  return value >= 1 && value <= 1000 ? uint32_t(value) : 1;
}

size_t discard_body(char*, size_t size, size_t count, void*) { return size * count; }

// Lets a transfer end early when the process stops.
int abort_when_stopping(void* stop, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::atomic<bool>*>(stop)->load() ? 1 : 0;
}

}  // namespace

// One attempt of one notification: its request and, once done, its status.
struct Notifier::Attempt {
  NotificationClaim claim;
  std::string body;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::optional<int> status;
  std::string problem;    // why it had no answer, for the log
  bool given_up = false;  // its URL is no longer configured

  Attempt() = default;
  Attempt(const Attempt&) = delete;
  Attempt& operator=(const Attempt&) = delete;
  ~Attempt() {
    if (easy) curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }
};

Notifier::Notifier(server_rec* s, const ModuleState& state) : server_(s), state_(state) {}

Notifier::~Notifier() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Notifier::start() {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, server_,
                 "mod_deploy: cannot initialize libcurl: no notification is delivered");
    return;
  }
  store_ = open_store(state_.settings->store_spec(), *state_.table);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::exception& e) {
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, server_,
                 "mod_deploy: cannot start the notification deliverer: %s", e.what());
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

namespace {

// Prepares the request of one attempt; false when its URL is gone from the
// configuration (the target, or that many DeployNotify, removed).
bool prepare(Notifier::Attempt& a, const Settings& settings, const std::string& base,
             std::atomic<bool>* stop) {
  const Target* target = settings.find(a.claim.job.target);
  if (!target || a.claim.index >= target->notify.size()) return false;
  Job job = a.claim.job;
  settings.set_group(job);
  a.body = job_json(job, base);
  a.easy = curl_easy_init();
  if (!a.easy) return false;
  const std::string delivery = delivery_id(job.id, a.claim.index);
  for (const std::string& line :
       {std::string("Content-Type: application/json"), std::string("X-Deploy-Event: job.finished"),
        "X-Deploy-Delivery: " + delivery, std::string("Expect:")})
    a.headers = curl_slist_append(a.headers, line.c_str());
  if (target->notify_secret)
    a.headers = curl_slist_append(
        a.headers,
        ("X-Hub-Signature-256: " + signature_header(*target->notify_secret, a.body)).c_str());
  CURL* e = a.easy;
  curl_easy_setopt(e, CURLOPT_URL, target->notify[a.claim.index].c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, a.body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(a.body.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, a.headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "mod_deploy");
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, long(kNotificationAnswerLimit / kMillisecond));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is a failed attempt
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, abort_when_stopping);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, stop);
  if (!settings.notify_ca_file.empty())
    curl_easy_setopt(e, CURLOPT_CAINFO, settings.notify_ca_file.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, &a);
  return true;
}

}  // namespace

// Records the end of an attempt (retried while the store is busy) and logs
// it: the delivery id, never the URL.
void Notifier::record(const Attempt& a, uint32_t divisor) {
  const std::string delivery = delivery_id(a.claim.job.id, a.claim.index);
  NotificationDecision decision{NotificationState::failed, 0};
  if (!a.given_up) decision = after_attempt(a.claim.attempt, a.status, mono_now(), divisor);
  Status recorded = Status::ok();
  for (int i = 0; i < kRecordTries && !stop_; ++i) {
    recorded = store_->record_notification(a.claim, a.status, decision, Instant::now());
    if (recorded.code() != kStoreBusy && recorded.code() != kStoreUnavailable) break;
  }
  if (!recorded.is_ok())
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, server_,
                 "mod_deploy: notification %s: its attempt %u could not be recorded: %s",
                 delivery.c_str(), a.claim.attempt, recorded.message().c_str());
  else if (a.given_up)
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, server_,
                 "mod_deploy: notification %s failed: target %s has no DeployNotify %u now",
                 delivery.c_str(), a.claim.job.target.c_str(), a.claim.index + 1);
  else if (decision.state != NotificationState::delivered)
    ap_log_error(
        APLOG_MARK, APLOG_WARNING, 0, server_,
        "mod_deploy: notification %s, attempt %u of %u: %s%s", delivery.c_str(), a.claim.attempt,
        kNotificationAttemptsMax,
        a.status ? ("HTTP status " + std::to_string(*a.status)).c_str() : a.problem.c_str(),
        decision.state == NotificationState::failed ? "; given up" : "");
  else
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, server_,
                 "mod_deploy: notification %s delivered (HTTP status %d)", delivery.c_str(),
                 *a.status);
}

// The attempts run side by side in one curl multi handle, each recorded as
// soon as it ends; the store is asked for more whenever it changed, the next
// retry is due, or a second passed, while fewer than kInFlight run.
void Notifier::run() {
  const uint32_t divisor = retry_divisor();
  const Settings& settings = *state_.settings;
  bool configured = false;
  for (const Target& t : settings.targets) configured |= !t.notify.empty();
  const std::string base = state_.bases.empty() ? std::string() : state_.bases.front();
  CURLM* multi = curl_multi_init();
  if (!multi) {
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, server_,
                 "mod_deploy: libcurl failed: no notification is delivered");
    return;
  }
  std::list<Attempt> in_flight;
  bool warned = false;  // of a store that cannot be had, once until it can
  uint64_t seen = 0;
  Micros scan_at = 0;  // monotonic: when to ask the store next
  while (!stop_) {
    const Micros now_mono = mono_now();
    // One read of the change number a turn (with PostgreSQL, a round trip).
    const uint64_t current = configured ? store_->change_seq() : seen;
    bool changed = current != seen;
    if (in_flight.size() < kInFlight &&
        (now_mono >= scan_at || (changed && now_mono - last_scan_ >= kMinScanInterval))) {
      changed = false;
      seen = current;
      last_scan_ = now_mono;
      std::vector<NotificationClaim> claims;
      Micros next_due = 0;
      Status st = store_->claim_notifications(Instant::now(), kInFlight - in_flight.size(), &claims,
                                              &next_due);
      if (!st.is_ok() && !warned)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, server_,
                     "mod_deploy: notifications wait for the job store: %s", st.message().c_str());
      warned = !st.is_ok();
      Micros wait = configured ? kIdleInterval : kUnconfiguredInterval;
      if (next_due > 0) wait = std::clamp<Micros>(next_due - now_mono, kMillisecond, wait);
      // More may be due at once when as many as asked for came.
      scan_at = claims.size() == kInFlight - in_flight.size() ? now_mono : now_mono + wait;
      for (NotificationClaim& claim : claims) {
        Attempt& a = in_flight.emplace_back();
        a.claim = std::move(claim);
        if (!prepare(a, settings, base, &stop_) ||
            curl_multi_add_handle(multi, a.easy) != CURLM_OK) {
          a.given_up = true;
          record(a, divisor);
          in_flight.pop_back();
        }
      }
    }
    if (in_flight.empty()) {
      // A change may end a job: its notifications are due at once, or once
      // kMinScanInterval has passed since the last scan. A change seen but
      // not scanned yet is slept past, not waited for: the wait would
      // return at once, again and again until then.
      const Micros wake = changed ? std::min(scan_at, last_scan_ + kMinScanInterval) : scan_at;
      const Micros wait = std::max<Micros>(wake - mono_now(), kMillisecond);
      if (configured && !changed)
        store_->wait_for_change(seen, std::min(wait, kIdleInterval));
      else
        usleep(useconds_t(std::min<Micros>(wait, 100 * kMillisecond)));
      continue;
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &left)) {
      if (message->msg != CURLMSG_DONE) continue;
      Attempt* a = nullptr;
      curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&a));
      if (!a) continue;
      long code = 0;
      if (message->data.result == CURLE_OK &&
          curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code > 0)
        a->status = int(code);
      else
        a->problem = curl_easy_strerror(message->data.result);
      curl_multi_remove_handle(multi, a->easy);
      if (stop_) break;  // unrecorded: made again once its claim lapses
      record(*a, divisor);
      in_flight.remove_if([a](const Attempt& x) { return &x == a; });
    }
    if (!in_flight.empty()) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  for (Attempt& a : in_flight) curl_multi_remove_handle(multi, a.easy);
  in_flight.clear();
  curl_multi_cleanup(multi);
}

}  // namespace deploy
