#include "deploy_handler.h"

#include <httpd.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "deploy_access.h"
#include "deploy_dashboard.h"
#include "deploy_events.h"
#include "deploy_job_page.h"
#include "deploy_module.h"
#include "deploy_response.h"
#include "deploy_status.h"
#include "deploy_state.h"
#include "job_json.h"
#include "origin.h"
#include "route.h"
#include "scheduler.h"
#include "submission.h"

namespace deploy {
namespace {

// How long a client refused for a full queue should wait before trying again.
constexpr int kRetryAfterSeconds = 5;
// What one read of a log brings into memory while it is sent.
constexpr uint64_t kLogChunk = 256 * 1024;

// The Location path the request came through (see find_bases in mod_deploy.cc).
std::string base_of(const ModuleState& state, const char* uri, std::string* rest) {
  std::string path(uri ? uri : "");
  const std::string* best = base_of_path(state, path);
  std::string base = best ? *best : "";
  *rest = path.substr(base.size());
  return base;
}

// Reads the whole body, refusing more than `limit` bytes before parsing.
std::optional<RequestError> read_body(request_rec* r, uint64_t limit, std::string* body) {
  if (ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK) != OK)
    return RequestError{HTTP_BAD_REQUEST, "bad_request", "the request body cannot be read"};
  const RequestError too_large{
      HTTP_REQUEST_ENTITY_TOO_LARGE, "too_large",
      "the request body is larger than " + std::to_string(limit) + " bytes"};
  if (r->remaining > apr_off_t(limit)) return too_large;
  if (!ap_should_client_block(r)) return std::nullopt;
  char buffer[8192];
  for (;;) {
    long n = ap_get_client_block(r, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0)
      return RequestError{HTTP_BAD_REQUEST, "bad_request", "the request body cannot be read"};
    if (body->size() + size_t(n) > limit) return too_large;
    body->append(buffer, size_t(n));
  }
  return std::nullopt;
}

// How this server is reached: the names of the virtual host that answers
// (ServerName, ServerAlias), the address the connection came in on (and
// "localhost" for a loopback one), and the port of ServerName (when it gives
// one) or of that connection. Never the request's Host header, which the
// client chooses.
ServerOrigin server_origin(request_rec* r) {
  const server_rec* s = r->server;
  ServerOrigin server;
  server.scheme = ap_run_http_scheme(r);
  if (s->server_hostname) server.names.emplace_back(s->server_hostname);
  if (s->names)
    for (int i = 0; i < s->names->nelts; ++i)
      server.names.emplace_back(APR_ARRAY_IDX(s->names, i, const char*));
  if (s->wild_names)
    for (int i = 0; i < s->wild_names->nelts; ++i)
      server.patterns.emplace_back(APR_ARRAY_IDX(s->wild_names, i, const char*));
  if (const char* local = r->connection->local_ip) {
    std::string_view address(local);
    // An IPv4 client of an IPv6 socket: the origin names the IPv4 address.
    if (address.starts_with("::ffff:") && address.find('.') != std::string_view::npos)
      address.remove_prefix(7);
    server.names.emplace_back(address);
    // A browser on this machine names a loopback address "localhost"; no
    // other host can make a page of that origin.
    if (address == "::1" || address.starts_with("127.")) server.names.emplace_back("localhost");
  }
  if (s->port) server.ports.push_back(s->port);
  if (r->connection->local_addr) server.ports.push_back(r->connection->local_addr->port);
  return server;
}

std::optional<RequestError> check_origin(request_rec* r) {
  const char* origin = apr_table_get(r->headers_in, "Origin");
  if (!origin || is_server_origin(origin, server_origin(r))) return std::nullopt;
  return RequestError{HTTP_FORBIDDEN, "cross_origin",
                      std::string("requests from origin ") + origin + " are not accepted"};
}

// 503 store_full: the job store cannot take the submission now.
RequestError store_full(request_rec* r, const std::string& why) {
  apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, kRetryAfterSeconds));
  return RequestError{HTTP_SERVICE_UNAVAILABLE, "store_full",
                      why + "; nothing was recorded, try again later"};
}

// A new job whose record could not be flushed is taken back while it has
// not started: the client is told it was not stored. (A joined waiting job
// keeps the join: it was stored before.)
void withdraw_job(const ModuleState& state, uint64_t id) { (void)state.store->withdraw(id); }

// The glue's answer to a store that could not do what was asked.
RequestError store_refusal(request_rec* r, const Status& why) {
  if (why.code() == kStoreBusy || why.code() == kStoreUnavailable) return table_busy(r, why);
  // (A full store is logged by the caller, which knows what was refused.)
  if (why.code() == kStoreFull) return store_full(r, "the file system of the job store is full");
  if (why.code() == kNotFound) return not_found(why.message());
  ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_deploy: %s", why.message().c_str());
  if (why.code() == kStoreDamaged)
    return RequestError{HTTP_INTERNAL_SERVER_ERROR, "internal",
                        "the job table is damaged; see the error log"};
  return RequestError{HTTP_INTERNAL_SERVER_ERROR, "internal", "the job store failed"};
}

// The request's side of read_submission: its body, query and headers.
SubmissionRequest submission_request(request_rec* r, std::string_view body) {
  SubmissionRequest request;
  const char* type = apr_table_get(r->headers_in, "Content-Type");
  request.content_type = type ? type : "";
  request.body = body;
  request.query = r->args ? r->args : "";
  request.header = [r](std::string_view name) -> std::optional<std::string> {
    const char* value = apr_table_get(r->headers_in, std::string(name).c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
  return request;
}

// The submission's idempotency key: Idempotency-Key, else the target's
// DeployIdempotencyHeader. At most kIdempotencyKeyMax bytes of printable
// ASCII, else 400.
std::optional<RequestError> idempotency_key(request_rec* r, const Target& target,
                                            std::optional<std::string>* key) {
  const char* raw = apr_table_get(r->headers_in, "Idempotency-Key");
  const char* header = "Idempotency-Key";
  if (!raw && target.idempotency_header) {
    header = target.idempotency_header->c_str();
    raw = apr_table_get(r->headers_in, header);
  }
  if (!raw) return std::nullopt;
  const std::string_view text = raw;
  const bool printable = std::all_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
  if (text.empty() || text.size() > kIdempotencyKeyMax || !printable)
    return RequestError{HTTP_BAD_REQUEST, "bad_request",
                        std::string("the ") + header + " header must be 1 to " +
                            std::to_string(kIdempotencyKeyMax) + " bytes of printable ASCII"};
  *key = std::string(text);
  return std::nullopt;
}

// What became of a submission that was not refused.
struct Accepted {
  Job job;
  bool coalesced = false;
  bool duplicate = false;                 // its idempotency key named `job`
  std::optional<std::string> ignored;     // a DeployFilter's reason
  std::vector<SupersededJob> superseded;  // DeploySupersede
  bool needs_flush = true;                // SubmitResult::needs_flush
};

// Checks a submission and records it: a new job, or one more request for
// the waiting job it joins, or none for the duplicate of a kept job. A
// refusal records nothing; neither does a submission a DeployFilter
// ignores, but the counter.
std::optional<RequestError> accept_submission(request_rec* r, const ModuleState& state,
                                              TargetAccess& access, const std::string& name,
                                              Accepted* accepted) {
  const Target* target = state.settings->find(name);
  if (!target) return not_found("no target named " + name);
  if (auto e = check_origin(r)) return e;
  std::string body;
  if (auto e = read_body(r, state.settings->max_body, &body)) return e;
  if (auto e = access.refuse_submission(name, target, body)) return e;
  NewSubmission s;
  if (auto e = idempotency_key(r, *target, &s.idempotency_key)) return e;
  auto read = read_submission(submission_request(r, body), target->submission_rules());
  if (auto* e = std::get_if<RequestError>(&read)) return *e;
  Submission submission = std::get<Submission>(std::move(read));
  if (submission.ignored) {
    (void)state.store->count_ignored();  // busy: not counted, still ignored
    accepted->ignored = std::move(submission.ignored);
    return std::nullopt;
  }
  const Params& params = submission.params;

  // Joining a waiting job needs no space (the table is allocated); a new
  // job needs room for its log (the store says store_full).
  s.target = name;
  s.group = job_group(params, target->policy.group_by).value_or("");
  s.params = params;
  if (r->user) s.submitted_by = r->user;
  s.policy = target->policy;
  s.limits = state.settings->limits();
  s.group_by = [&state](std::string_view t) { return state.settings->group_by(std::string(t)); };
  s.notifications = uint8_t(target->notify.size());  // at most kNotificationsMax
  s.supersede = target->supersede;
  SubmitResult result;
  if (Status st = state.store->submit(s, Instant::now(), &result); !st.is_ok()) {
    if (st.code() == kStoreFull)
      ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_deploy: submission for %s refused: %s",
                    name.c_str(), st.message().c_str());
    return store_refusal(r, st);
  }
  if (result.kind == SubmissionDecision::Kind::queue_full && !result.duplicate) {
    apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, kRetryAfterSeconds));
    return RequestError{HTTP_SERVICE_UNAVAILABLE, "queue_full",
                        "the queue holds " + std::to_string(state.settings->queue_limit) +
                            " jobs already; try again later"};
  }
  accepted->duplicate = result.duplicate;
  accepted->coalesced = !result.duplicate && result.kind == SubmissionDecision::Kind::coalesce;
  accepted->job = std::move(result.job);
  accepted->superseded = std::move(result.superseded);
  accepted->needs_flush = result.needs_flush;
  state.settings->set_group(accepted->job);
  return std::nullopt;
}

int submit_job(request_rec* r, const ModuleState& state, TargetAccess& access,
               const std::string& base, const std::string& name) {
  Accepted accepted;
  if (std::optional<RequestError> refused = accept_submission(r, state, access, name, &accepted)) {
    // A busy store counts it when it is free again; submit counted queue_full.
    if (refused->code != "queue_full")
      (void)state.store->count_rejection(
          rejection_from_code(refused->code).value_or(Rejection::internal));
    return send_error(r, *refused);
  }
  if (accepted.ignored) {
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mod_deploy: submission to %s ignored: %s",
                  name.c_str(), accepted.ignored->c_str());
    return send_json(
        r, HTTP_OK,
        dump_json(json_pack("{s:b, s:s}", "ignored", 1, "message", accepted.ignored->c_str())));
  }
  const Job& job = accepted.job;
  if (accepted.duplicate) {
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "mod_deploy: submission to %s is a duplicate of job %" APR_UINT64_T_FMT,
                  name.c_str(), (apr_uint64_t)job.id);
    return send_json(r, HTTP_OK, job_json(job, base, "duplicate"));
  }
  // A 202 is a promise: the job and its id are on disk before it is sent.
  // A join that changed no parameter of a job already on stable storage
  // needs no flush: a power cut can cost it only its request count and a
  // later not_before, never the deployment (SubmitResult::needs_flush).
  if (Status durable = accepted.needs_flush ? state.store->make_durable() : Status::ok();
      !durable.is_ok()) {
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_deploy: job %" APR_UINT64_T_FMT " of %s: %s",
                  (apr_uint64_t)job.id, name.c_str(), durable.message().c_str());
    if (!accepted.coalesced) withdraw_job(state, job.id);
    (void)state.store->count_rejection(Rejection::store_full);
    return send_error(r, store_full(r, "the job store cannot be written"));
  }
  for (const SupersededJob& old : accepted.superseded) {
    if (old.nudge.runner_pid > 0) kill(old.nudge.runner_pid, SIGUSR1);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "mod_deploy: job %" APR_UINT64_T_FMT " %s: superseded by job %" APR_UINT64_T_FMT,
                  (apr_uint64_t)old.id, old.was_running ? "is stopped" : "canceled",
                  (apr_uint64_t)job.id);
  }
  ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mod_deploy: job %" APR_UINT64_T_FMT " of %s %s",
                (apr_uint64_t)job.id, name.c_str(), accepted.coalesced ? "coalesced" : "accepted");
  std::string self = base + "/jobs/" + std::to_string(job.id);
  apr_table_set(r->headers_out, "Location", self.c_str());
  return send_json(r, HTTP_ACCEPTED, job_json(job, base, accepted.coalesced ? "coalesced" : ""));
}

// The job `id`, or why it cannot be answered: not found, or the table busy.
std::variant<Job, RequestError> find_job(request_rec* r, const ModuleState& state, uint64_t id) {
  Job job;
  if (Status st = state.store->get(id, &job); !st.is_ok()) {
    if (st.code() == kNotFound) return not_found("no job " + std::to_string(id));
    return store_refusal(r, st);
  }
  state.settings->set_group(job);
  return job;
}

// The job, when it exists and the request may read its target; else the
// refusal to send.
std::variant<Job, RequestError> readable_job(request_rec* r, const ModuleState& state,
                                             TargetAccess& access, uint64_t id) {
  auto found = find_job(r, state, id);
  if (auto* job = std::get_if<Job>(&found))
    if (auto refused = access.refuse_read(job->target)) return *refused;
  return found;
}

int get_job(request_rec* r, const ModuleState& state, TargetAccess& access, const std::string& base,
            uint64_t id) {
  // A browser gets the job's page, every other client the JSON (SPEC,
  // "Watching a deployment"); caches keep the two apart.
  apr_table_mergen(r->headers_out, "Vary", "Accept");
  auto job = readable_job(r, state, access, id);
  if (auto* e = std::get_if<RequestError>(&job)) return send_error(r, *e);
  const char* accept = apr_table_get(r->headers_in, "Accept");
  if (accept && prefers_html(accept))
    return send_job_page(r, state, access, base, std::get<Job>(job));
  return send_json(r, HTTP_OK, job_json(std::get<Job>(job), base));
}

int list_jobs(request_rec* r, const ModuleState& state, TargetAccess& access,
              const std::string& base) {
  auto parsed = parse_jobs_query(r->args ? r->args : "");
  if (auto* e = std::get_if<RequestError>(&parsed)) return send_error(r, *e);
  const JobsQuery& q = std::get<JobsQuery>(parsed);
  // Decided before the lock: the targets the answer may hold.
  if (q.target)
    access.may_read(*q.target);
  else
    for (const Target& t : state.settings->targets) access.may_read(t.name);
  std::vector<Job> listed;
  do {
    if (Status st = state.store->list(
            q, [&](std::string_view target) { return access.may_read_decided(target); }, &listed);
        !st.is_ok())
      return send_error(r, store_refusal(r, st));
  } while (access.decide_noted());
  std::deque<Job> jobs;  // not a vector: see chunked_text.h
  for (Job& job : listed) jobs.push_back(std::move(job));
  for (Job& job : jobs) state.settings->set_group(job);
  ChunkedText array;
  array += "[";
  for (const Job& job : jobs) {
    if (&job != &jobs.front()) array += ",";
    array += job_json(job, base);
  }
  array += "]";
  return send_json(r, HTTP_OK, std::move(array));
}

json_t* seconds(Micros t) { return json_real(double(t) / 1e6); }

int list_targets(request_rec* r, const ModuleState& state, TargetAccess& access,
                 const std::string& base) {
  std::vector<const Target*> shown;  // the targets the request may read
  for (const Target& t : state.settings->targets)
    if (access.may_read(t.name)) shown.push_back(&t);
  // The newest job of each shown target: newest first, until every one has
  // one (a target without any job reads the whole table).
  std::map<std::string, Job> latest;
  {
    std::vector<std::string> names;
    for (const Target* t : shown) names.push_back(t->name);
    std::vector<Job> newest;
    if (Status st = state.store->newest_per_target(names, &newest); !st.is_ok())
      return send_error(r, store_refusal(r, st));
    for (Job& job : newest) latest[job.target] = std::move(job);
  }
  for (auto& [name, job] : latest) state.settings->set_group(job);
  std::string array = "[";
  for (const Target* shown_target : shown) {
    const Target& t = *shown_target;
    json_t* command = json_array();
    for (const std::string& word : t.command)
      json_array_append_new(command, json_string(word.c_str()));
    json_t* params = json_array();
    for (const ParamRule& rule : t.params)
      json_array_append_new(params, json_pack("{s:s, s:s}", "name", rule.name.c_str(), "pattern",
                                              rule.pattern.source().c_str()));
    auto it = latest.find(t.name);
    json_t* obj = json_object();
    json_object_set_new(obj, "name", json_string(t.name.c_str()));
    json_object_set_new(obj, "command", command);
    json_object_set_new(obj, "params", params);
    json_object_set_new(obj, "timeout", seconds(t.timeout));
    json_object_set_new(obj, "kill_grace", seconds(t.kill_grace));
    json_object_set_new(obj, "queue_timeout", seconds(t.queue_timeout));
    json_object_set_new(obj, "wait_change_notification", seconds(t.policy.quiet_window));
    json_object_set_new(obj, "max_wait_change_notification", seconds(t.policy.max_wait));
    json_object_set_new(obj, "concurrency", json_integer(t.policy.concurrency));
    json_object_set_new(obj, "signed", json_boolean(t.is_signed()));
    json_object_set_new(obj, "links",
                        json_pack("{s:s}", "submit", (base + "/targets/" + t.name).c_str()));
    // The job's own text goes in as it is: "latest_job" is the object's
    // last member.
    std::string text = dump_json(obj);
    text.pop_back();
    text += ",\"latest_job\":";
    text += it == latest.end() ? "null" : job_json(it->second, base);
    text += '}';
    if (array.size() > 1) array += ',';
    array += text;
  }
  array += ']';
  return send_json(r, HTTP_OK, array);
}

int get_log(request_rec* r, const ModuleState& state, TargetAccess& access, uint64_t id) {
  auto parsed = parse_log_offset(r->args ? r->args : "");
  if (auto* e = std::get_if<RequestError>(&parsed)) return send_error(r, *e);
  uint64_t offset = std::get<uint64_t>(parsed);
  auto readable = readable_job(r, state, access, id);
  if (auto* e = std::get_if<RequestError>(&readable)) return send_error(r, *e);
  const Job* job = &std::get<Job>(readable);
  // The size first: the answer is what the log held then, even while the
  // job goes on writing.
  uint64_t size = 0;
  if (Status st = state.store->output_size(id, &size); !st.is_ok() && st.code() != kNotFound)
    return send_error(r, store_refusal(r, st));
  r->status = HTTP_OK;
  ap_set_content_type(r, "text/plain; charset=utf-8");
  apr_table_setn(r->headers_out, "Cache-Control", "no-store");
  apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
  apr_table_setn(r->headers_out, "X-Log-Size", apr_off_t_toa(r->pool, apr_off_t(size)));
  if (!is_final(job->state)) apr_table_setn(r->headers_out, "X-More-Data", "true");
  const uint64_t from = std::min(offset, size);
  ap_set_content_length(r, apr_off_t(size - from));
  if (r->header_only) return OK;
  std::string chunk;
  for (uint64_t at = from; at < size;) {
    Status st =
        state.store->read_output(id, at, size_t(std::min<uint64_t>(size - at, kLogChunk)), &chunk);
    if (!st.is_ok() || chunk.empty()) {
      // Too late for another status: the client sees a short body.
      ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                    "deploy: job %llu: the log could not be read from byte %llu: %s",
                    static_cast<unsigned long long>(id), static_cast<unsigned long long>(at),
                    st.is_ok() ? "it is shorter than it was" : st.message().c_str());
      break;
    }
    if (ap_rwrite(chunk.data(), int(chunk.size()), r) < 0) break;  // the client left
    at += chunk.size();
  }
  return OK;
}

// A cancel is allowed exactly when a submission to the job's target would
// be: httpd's access control of POST BASE/targets/NAME and, for a signed
// target, a signature over the cancel's own body (often empty) or the
// target's token (see TargetAccess::refuse_submission).
int cancel_job(request_rec* r, const ModuleState& state, TargetAccess& access,
               const std::string& base, uint64_t id) {
  if (auto e = check_origin(r)) return send_error(r, *e);
  auto found = find_job(r, state, id);
  if (auto* e = std::get_if<RequestError>(&found)) return send_error(r, *e);
  const std::string& target = std::get<Job>(found).target;
  std::string body;
  if (auto e = read_body(r, state.settings->max_body, &body)) return send_error(r, *e);
  if (auto e = access.refuse_submission(target, state.settings->find(target), body))
    return send_error(r, *e);
  Job job;
  RunnerRef runner;
  const std::optional<std::string> by =
      r->user ? std::optional<std::string>(r->user) : std::nullopt;
  if (Status st = state.store->cancel(id, by, Instant::now(), &job, &runner); !st.is_ok()) {
    if (st.code() == kConflict)
      return send_error(r, RequestError{HTTP_CONFLICT, "conflict", st.message()});
    if (st.code() == kNotFound) return send_error(r, not_found("no job " + std::to_string(id)));
    return send_error(r, store_refusal(r, st));
  }
  state.settings->set_group(job);
  // A final state is durable before it is answered; a cancel flag need not be.
  if (is_final(job.state)) {
    if (Status durable = state.store->make_durable(); !durable.is_ok())
      ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_deploy: job %" APR_UINT64_T_FMT ": %s",
                    (apr_uint64_t)id, durable.message().c_str());
  }
  if (runner.runner_pid > 0) kill(runner.runner_pid, SIGUSR1);
  ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                "mod_deploy: cancel of job %" APR_UINT64_T_FMT " requested by %s", (apr_uint64_t)id,
                r->user ? r->user : "(anonymous)");
  return send_json(r, HTTP_ACCEPTED, job_json(job, base));
}

bool method_allowed(const Route& route, int method) {
  std::string_view allowed = allowed_methods(route.kind);
  if (method == M_GET) return allowed.find("GET") != std::string_view::npos;
  if (method == M_POST) return allowed.find("POST") != std::string_view::npos;
  return false;
}

int dispatch(request_rec* r, const ModuleState& state) {
  std::string rest;
  std::string base = base_of(state, r->uri, &rest);
  std::optional<Route> route = parse_route(rest);
  if (!route) return send_error(r, not_found(std::string("no such resource: ") + r->uri));
  if (!method_allowed(*route, r->method_number)) {
    apr_table_setn(r->headers_out, "Allow",
                   apr_pstrdup(r->pool, std::string(allowed_methods(route->kind)).c_str()));
    return send_error(r, RequestError{HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                                      std::string(r->method) + " is not allowed here"});
  }
  TargetAccess access(r, base);
  switch (route->kind) {
    case Route::Kind::target:
      return submit_job(r, state, access, base, route->target);
    case Route::Kind::targets:
      return list_targets(r, state, access, base);
    case Route::Kind::jobs:
      return list_jobs(r, state, access, base);
    case Route::Kind::job:
      return get_job(r, state, access, base, route->job_id);
    case Route::Kind::job_log:
      return get_log(r, state, access, route->job_id);
    case Route::Kind::job_cancel:
      return cancel_job(r, state, access, base, route->job_id);
    case Route::Kind::job_events: {
      auto job = readable_job(r, state, access, route->job_id);
      if (auto* e = std::get_if<RequestError>(&job)) return send_error(r, *e);
      return stream_job_events(r, state, base, route->job_id);
    }
    case Route::Kind::events:
      return stream_all_events(r, state, access, base);
    case Route::Kind::metrics:
      return send_metrics(r, state, access);
    case Route::Kind::dashboard:
      if (r->args && strcmp(r->args, "auto") == 0) return send_auto_status(r, state);
      return send_dashboard(r, state, access, base);
  }
  return send_error(r, not_found(std::string("no such resource: ") + r->uri));
}

}  // namespace

int handle_request(request_rec* r) {
  // No exception may cross into httpd.
  try {
    ModuleState* state = module_state();
    if (!state || !state->table) {
      ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_deploy: not initialised");
      return send_error(
          r, RequestError{HTTP_INTERNAL_SERVER_ERROR, "internal", "mod_deploy is not initialised"});
    }
    return dispatch(r, *state);
  } catch (const std::exception& e) {
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_deploy: %s", e.what());
  } catch (...) {
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "mod_deploy: unknown failure");
  }
  return send_error(
      r, RequestError{HTTP_INTERNAL_SERVER_ERROR, "internal", "internal error; see the error log"});
}

}  // namespace deploy
