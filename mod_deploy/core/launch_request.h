// What the scheduler sends the runner launcher to start one job's runner:
// the job, its limits, where and what to run, and the environment to run it
// in. One frame per job over a pipe:
//
//   u32 body size, then the body:
//   u64 job id, u64 timeout (us), u64 kill grace (us),
//   u32 number of command words, u32 number of environment entries,
//   then the working directory, the command words and the environment
//   entries, each as u32 size + bytes,
//   then u32 user id, u32 group id (both 0: the job runs as its runner),
//   then u32 number of secret entries and that many u32 indices into the
//   environment entries, strictly increasing (DeploySecretEnv: the runner
//   masks those entries' values in the job's output).
//
// Integers are in the host's byte order: both ends are the same build on the
// same machine. The launcher trusts nothing of a frame it has not checked:
// sizes and counts are bounded and no string may hold a NUL (argv and
// environment entries cannot).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "job.h"
#include "status.h"

namespace deploy {

struct LaunchRequest {
  uint64_t job_id = 0;
  Micros timeout = 0;     // 0: none
  Micros kill_grace = 0;  // between SIGTERM and SIGKILL
  std::string working_directory;
  std::vector<std::string> command;      // argv; command[0] is the program's path
  std::vector<std::string> environment;  // "NAME=value" entries
  // DeployUser: the uid and gid the job runs as; 0 and 0 run it as its
  // runner (httpd's User). Never root: a frame asking for uid or gid 0
  // with the other set is malformed, and the launcher runs only the users
  // it was started with (runner/launcher.h).
  uint32_t user_id = 0;
  uint32_t group_id = 0;
  // DeploySecretEnv: the indices of the `environment` entries whose value
  // is a secret, strictly increasing; each such entry holds a '='. The
  // frame carries no value twice: the runner takes them from the entries.
  std::vector<uint32_t> secret_entries;
};

// The values of the request's secret entries (what follows the first '=').
std::vector<std::string> secret_values(const LaunchRequest& request);

// No frame is larger: execve() refuses a larger argv plus environment anyway.
constexpr size_t kMaxLaunchFrame = 2 * 1024 * 1024;

// The frame of `request`; empty when it would exceed kMaxLaunchFrame or a
// string holds a NUL (such a job cannot be started).
std::string encode_launch_request(const LaunchRequest& request);

enum class DecodeResult { complete, incomplete, malformed };

// Decodes the frame at the start of `data`. complete: *out holds it and
// *consumed its size; incomplete: more bytes are needed; malformed: the
// stream cannot be trusted any further.
DecodeResult decode_launch_request(std::string_view data, LaunchRequest* out, size_t* consumed);

// DeployUser: who the launcher becomes and whom its runners may run jobs
// as, given on its command line after `--launcher STATE_DIR` by a scheduler
// that is still root:
//
//   --user UID:GID [--job-user UID:GID:NAME]...
//
// No uid or gid is 0; NAME (for the user's supplementary groups) is last,
// so it may hold anything but is never empty.
struct LauncherJobUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string name;
};

struct LauncherUsers {
  uint32_t uid = 0;  // httpd's User and Group
  uint32_t gid = 0;
  std::vector<LauncherJobUser> job_users;
};

std::vector<std::string> launcher_arguments(const LauncherUsers& users);

// The words after STATE_DIR: none gives no users (the launcher keeps no
// privilege); anything that is not what launcher_arguments() writes is an
// error.
Status parse_launcher_arguments(const std::vector<std::string_view>& words,
                                std::optional<LauncherUsers>* out);

}  // namespace deploy
