// Who the launcher, its runners and their jobs run as, when some target has
// DeployUser (docs/architecture.md, "Users and capabilities").
//
// The scheduler then starts the launcher while it is still root. The
// launcher becomes httpd's User at once and keeps exactly three
// capabilities, which its runners inherit (they are forked, not executed):
// CAP_SETUID and CAP_SETGID, to start a job as its DeployUser, and CAP_KILL,
// to signal that job's process group at a timeout or cancel. A job runs with
// no capability at all, whoever it runs as. Without DeployUser nothing of
// this happens: the launcher is started as User and has no capability.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "launch_request.h"
#include "status.h"

namespace deploy {

// A DeployUser the launcher may run jobs as: its uid, gid and the
// supplementary groups initgroups() would give it.
struct RunAs {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// As root: looks up each job user's supplementary groups into *job_users
// (gid 0 left out), then becomes users.uid/gid (with that user's groups) and
// keeps only CAP_SETUID, CAP_SETGID and CAP_KILL, permitted and effective,
// none inheritable or ambient. Checks that the result is exactly that.
Status become_launcher_user(const LauncherUsers& users, std::vector<RunAs>* job_users);

// In the forked child of a job: becomes `user` and drops every capability,
// then checks that no id is left that could be taken back and that the
// capability sets are empty. Only system calls: safe between fork and exec.
// 0, or the errno of what failed (EPERM when a check found a privilege).
int become_job_user(const RunAs& user);

}  // namespace deploy
