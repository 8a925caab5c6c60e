// Per-target authorization: may this request read a target's jobs, and does
// it prove that it may submit to the target? httpd's own access control of
// BASE/targets/NAME decides (an administrator protects a target with
// <Location BASE/targets/NAME>), asked as an internal subrequest with the
// credentials of the request, so that the routes whose path does not name the
// target (BASE/jobs/ID/..., the listings, the streams, the status pages) obey
// it too. A subrequest runs httpd's access, authentication and authorization
// phases only, never a handler. Decisions are kept for the life of the
// request: a listing asks once per target.
#pragma once

#include <httpd.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "deploy_config.h"
#include "request_error.h"

namespace deploy {

class TargetAccess {
 public:
  // `base`: the Location path the request came through.
  TargetAccess(request_rec* r, std::string base);

  // May the request read the target's jobs (JSON, log, events, page)?
  // Exactly when it may GET BASE/targets/NAME. For filtering: httpd's log
  // lines of a refusal are left out (LogLevel deploy:debug names it).
  bool may_read(const std::string& target);
  // nullopt when it may; else the refusal httpd gives for GET
  // BASE/targets/NAME (401 `unauthorized` with httpd's WWW-Authenticate
  // set on the answer, or 403 `forbidden`).
  std::optional<RequestError> refuse_read(const std::string& target);

  // Does the request prove that it may submit to target `name`? httpd's
  // access control of POST BASE/targets/NAME, then the target's DeploySecret
  // over `body` (X-Hub-Signature-256) or its DeployToken (X-Gitlab-Token),
  // else 403 `bad_signature`; with DeployUnsignedUsers a user httpd
  // authenticated may leave either out (a wrong one is still refused).
  // `target` is null for a name no longer configured: then only httpd's
  // access control applies. Submissions and cancels both ask this.
  std::optional<RequestError> refuse_submission(const std::string& name, const Target* target,
                                                std::string_view body);
  // Can a submission of this request to `target` succeed without a
  // signature or token (the dashboard's Deploy form)? An unsigned target
  // needs only httpd's access control; a signed one DeployUnsignedUsers
  // and a user httpd authenticated for POST BASE/targets/NAME.
  bool may_submit_unsigned(const Target& target);

  // While the job table is locked no subrequest may run. A filter asks
  // may_read_decided: the decision when it was made, else false, and the
  // target is noted. decide_noted() then decides the noted targets (after
  // the lock is released) and returns true when there were any: the caller
  // copies the table again. Each pass decides new targets, so this ends.
  bool may_read_decided(std::string_view target);
  bool decide_noted();

 private:
  struct Decision {
    int status = HTTP_OK;                 // the subrequest's status after its access phases
    std::vector<const char*> challenges;  // its WWW-Authenticate headers
    const char* user = nullptr;           // the user httpd authenticated, if any
  };
  using Decisions = std::map<std::string, Decision, std::less<>>;

  // `quiet`: the decision only hides a target, and the subrequest logs
  // nothing below crit.
  const Decision& decide(Decisions& decisions, const std::string& target, int method, bool quiet);
  std::optional<RequestError> refusal(const std::string& target, const Decision& decision);

  request_rec* r_;
  std::string base_;
  Decisions reads_, submissions_;
  std::set<std::string, std::less<>> noted_;
};

// Hooks the checks need (from the module's register_hooks).
void register_access_hooks();

}  // namespace deploy
