#include "deploy_access.h"

#include <httpd.h>
#include <apr_strings.h>
#include <http_log.h>
#include <http_request.h>

#include <algorithm>
#include <utility>

#include "deploy_module.h"
#include "signature.h"

namespace deploy {
namespace {

// Set in the notes of a request while it looks up a subrequest that only
// decides whether to hide a target.
constexpr const char* kQuietCheckNote = "deploy-quiet-access-check";

// post_perdir_config of such a subrequest: its log configuration (the
// request's, or its <Location>'s LogLevel) is lowered to crit before its
// access, authentication and authorization phases run.
int quiet_hidden_checks(request_rec* r) {
  if (!r->main || !apr_table_get(r->main->notes, kQuietCheckNote)) return DECLINED;
  const ap_logconf* from = r->log               ? r->log
                           : r->connection->log ? r->connection->log
                                                : &r->server->log;
  auto* quieter = static_cast<ap_logconf*>(apr_pmemdup(r->pool, from, sizeof *from));
  quieter->module_levels = nullptr;
  quieter->level = std::min(quieter->level, APLOG_CRIT);
  r->log = quieter;
  return OK;
}

}  // namespace

void register_access_hooks() {
  ap_hook_post_perdir_config(quiet_hidden_checks, nullptr, nullptr, APR_HOOK_REALLY_LAST);
}

TargetAccess::TargetAccess(request_rec* r, std::string base) : r_(r), base_(std::move(base)) {}

const TargetAccess::Decision& TargetAccess::decide(Decisions& decisions, const std::string& target,
                                                   int method, bool quiet) {
  auto it = decisions.find(target);
  if (it != decisions.end()) return it->second;
  Decision decision;
  const std::string uri = base_ + "/targets/" + target;
  // A request for that very URL and method went through the same checks
  // already to get here.
  if (r_->method_number != method || !r_->uri || uri != r_->uri) {
    // A check that only hides a target from a listing must not log, for
    // every listing, what httpd logs when it refuses a request (AH01630,
    // AH01631 at level error): see quiet_hidden_checks. LogLevel
    // deploy:debug says what was hidden.
    if (quiet) apr_table_setn(r_->notes, kQuietCheckNote, "1");
    // No next filter: the subrequest is looked up (translate, map to
    // storage, access, authentication, authorization, fixups), never run.
    request_rec* sub = ap_sub_req_method_uri(method == M_POST ? "POST" : "GET",
                                             ap_escape_uri(r_->pool, uri.c_str()), r_, nullptr);
    apr_table_unset(r_->notes, kQuietCheckNote);
    decision.status = sub->status;
    // REMOTE_USER of the subrequest, else of the request itself.
    const char* user = sub->user ? sub->user : r_->user;
    if (user) decision.user = apr_pstrdup(r_->pool, user);
    apr_table_do(
        [](void* challenges, const char*, const char* value) {
          static_cast<std::vector<const char*>*>(challenges)->push_back(value);
          return 1;
        },
        &decision.challenges, sub->err_headers_out, "WWW-Authenticate", nullptr);
    for (const char*& challenge : decision.challenges) challenge = apr_pstrdup(r_->pool, challenge);
    ap_destroy_sub_req(sub);
    ap_log_rerror(APLOG_MARK, quiet && decision.status != HTTP_OK ? APLOG_DEBUG : APLOG_TRACE1, 0,
                  r_, "mod_deploy: access to %s %s: %d%s", method == M_POST ? "POST" : "GET",
                  uri.c_str(), decision.status,
                  quiet && decision.status != HTTP_OK ? " (hidden from the answer)" : "");
  } else {
    decision.user = r_->user;
  }
  return decisions.emplace(target, std::move(decision)).first->second;
}

std::optional<RequestError> TargetAccess::refusal(const std::string& target,
                                                  const Decision& decision) {
  if (decision.status == HTTP_OK) return std::nullopt;
  if (decision.status == HTTP_UNAUTHORIZED) {
    for (const char* challenge : decision.challenges)
      apr_table_add(r_->err_headers_out, "WWW-Authenticate", challenge);
    return RequestError{HTTP_UNAUTHORIZED, "unauthorized",
                        "target " + target + " requires authentication"};
  }
  // 403, and whatever else stopped the subrequest before its handler.
  return RequestError{HTTP_FORBIDDEN, "forbidden", "access to target " + target + " is forbidden"};
}

bool TargetAccess::may_read(const std::string& target) {
  return decide(reads_, target, M_GET, true).status == HTTP_OK;
}

std::optional<RequestError> TargetAccess::refuse_read(const std::string& target) {
  return refusal(target, decide(reads_, target, M_GET, false));
}

std::optional<RequestError> TargetAccess::refuse_submission(const std::string& name,
                                                            const Target* target,
                                                            std::string_view body) {
  const Decision& decision = decide(submissions_, name, M_POST, false);
  if (auto refused = refusal(name, decision)) return refused;
  if (!target || !target->is_signed()) return std::nullopt;
  const bool may_leave_out = target->unsigned_users && decision.user;
  const char* header = target->secret ? "X-Hub-Signature-256" : "X-Gitlab-Token";
  const char* proof = apr_table_get(r_->headers_in, header);
  if (!proof) {
    if (may_leave_out) return std::nullopt;
    return RequestError{HTTP_FORBIDDEN, "bad_signature",
                        std::string("the ") + header + " header is missing"};
  }
  const bool matches = target->secret ? signature_matches(proof, *target->secret, body)
                                      : token_matches(proof, *target->token);
  if (!matches)
    return RequestError{HTTP_FORBIDDEN, "bad_signature",
                        std::string("the ") + header +
                            (target->secret ? " signature does not match" : " does not match")};
  return std::nullopt;
}

bool TargetAccess::may_submit_unsigned(const Target& target) {
  const Decision& decision = decide(submissions_, target.name, M_POST, true);
  if (decision.status != HTTP_OK) return false;
  return !target.is_signed() || (target.unsigned_users && decision.user);
}

bool TargetAccess::may_read_decided(std::string_view target) {
  auto it = reads_.find(target);
  if (it != reads_.end()) return it->second.status == HTTP_OK;
  noted_.emplace(target);
  return false;
}

bool TargetAccess::decide_noted() {
  if (noted_.empty()) return false;
  for (const std::string& target : noted_) may_read(target);
  noted_.clear();
  return true;
}

}  // namespace deploy
