#include "privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace deploy {
namespace {

// Capabilities as the kernel's two 32-bit words of each set.
struct CapabilitySets {
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
};

int get_capabilities(CapabilitySets* sets) {
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  return static_cast<int>(syscall(SYS_capget, &header, sets->data));
}

int set_capabilities(const CapabilitySets& sets) {
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  return static_cast<int>(syscall(SYS_capset, &header, sets.data));
}

// The launcher's: permitted and effective, nothing inheritable.
CapabilitySets launcher_capabilities() {
  CapabilitySets sets;
  for (int cap : {CAP_SETUID, CAP_SETGID, CAP_KILL}) {
    sets.data[CAP_TO_INDEX(cap)].permitted |= CAP_TO_MASK(cap);
    sets.data[CAP_TO_INDEX(cap)].effective |= CAP_TO_MASK(cap);
  }
  return sets;
}

bool same_sets(const CapabilitySets& a, const CapabilitySets& b) {
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
    if (a.data[i].permitted != b.data[i].permitted || a.data[i].effective != b.data[i].effective ||
        a.data[i].inheritable != b.data[i].inheritable)
      return false;
  }
  return true;
}

bool has_ids(uid_t uid, gid_t gid) {
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  return getresuid(&ru, &eu, &su) == 0 && getresgid(&rg, &eg, &sg) == 0 && ru == uid && eu == uid &&
         su == uid && rg == gid && eg == gid && sg == gid;
}

Status errno_status(const std::string& what) {
  return Status::error(what + ": " + strerror(errno));
}

std::vector<gid_t> supplementary_groups(const std::string& name, gid_t gid) {
  std::vector<gid_t> groups(64);
  int count = static_cast<int>(groups.size());
  while (getgrouplist(name.c_str(), gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<size_t>(count) + 64);
    count = static_cast<int>(groups.size());
  }
  groups.resize(static_cast<size_t>(count));
  std::erase(groups, gid_t{0});
  return groups;
}

}  // namespace

Status become_launcher_user(const LauncherUsers& users, std::vector<RunAs>* job_users) {
  job_users->clear();
  for (const LauncherJobUser& user : users.job_users) {
    job_users->push_back(
        RunAs{user.name, user.uid, user.gid, supplementary_groups(user.name, user.gid)});
  }
  // The User's own groups, as httpd gives its children (initgroups).
  const passwd* pw = getpwuid(users.uid);
  std::vector<gid_t> own = {users.gid};
  if (pw != nullptr) own = supplementary_groups(pw->pw_name, users.gid);
  if (own.empty()) own = {users.gid};
  if (setgroups(own.size(), own.data()) != 0) return errno_status("setgroups");
  // Permitted capabilities survive the change of uid only with KEEPCAPS.
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return errno_status("prctl(PR_SET_KEEPCAPS)");
  if (setresgid(users.gid, users.gid, users.gid) != 0) return errno_status("setresgid");
  if (setresuid(users.uid, users.uid, users.uid) != 0) return errno_status("setresuid");
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return errno_status("prctl(PR_SET_KEEPCAPS)");
  const CapabilitySets wanted = launcher_capabilities();
  if (set_capabilities(wanted) != 0) return errno_status("capset");
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  CapabilitySets got;
  if (get_capabilities(&got) != 0) return errno_status("capget");
  if (!has_ids(users.uid, users.gid) || !same_sets(got, wanted))
    return Status::error("the launcher's ids or capabilities are not what was set");
  return Status::ok();
}

int become_job_user(const RunAs& user) {
  const uid_t runner_uid = getuid();
  if (setgroups(user.groups.size(), user.groups.data()) != 0) return errno;
  if (setresgid(user.gid, user.gid, user.gid) != 0) return errno;
  if (setresuid(user.uid, user.uid, user.uid) != 0) return errno;
  // Between non-zero uids the capabilities stay: they go explicitly.
  const CapabilitySets none;
  if (set_capabilities(none) != 0) return errno;
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  CapabilitySets got;
  if (get_capabilities(&got) != 0) return errno;
  if (!has_ids(user.uid, user.gid) || !same_sets(got, none)) return EPERM;
  // No way back to the runner's uid.
  if (user.uid != runner_uid && setreuid(runner_uid, runner_uid) == 0) return EPERM;
  return 0;
}

}  // namespace deploy
