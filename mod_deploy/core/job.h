// The job: its states and the plain value the rest of the code passes around.
// The times of a Job are wall-clock microseconds since the Unix epoch (apr_time_t's
// unit), for display; 0 means unset.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "notification.h"

namespace deploy {

using Micros = int64_t;  // microseconds: of the wall or monotonic clock (clock.h), or a duration

enum class JobState : uint8_t {
  waiting = 1,  // inside its quiet window (coalescing)
  queued,       // ready, waiting for a free slot
  running,
  succeeded,
  failed,
  timed_out,
  canceled,
  expired,
  lost,
};

constexpr bool is_final(JobState s) { return s >= JobState::succeeded; }
std::string_view state_name(JobState s);
std::optional<JobState> state_from_name(std::string_view name);
bool is_valid_state(uint8_t raw);

using Params = std::vector<std::pair<std::string, std::string>>;  // in submission order
// `::output NAME VALUE` lines of the job (job_details.h), in the order of
// their first line: the same shape as Params.
using Outputs = Params;

// One stage the job entered (`stages` of the job JSON): the wall times it
// began and ended, 0 while it is the open one.
struct Stage {
  std::string name;
  Micros started_at = 0, finished_at = 0;
  bool operator==(const Stage&) const = default;
};

// The longest Idempotency-Key (printable ASCII) a submission may carry.
constexpr size_t kIdempotencyKeyMax = 255;
// DeployNotify URLs of one target (configtest refuses more).
constexpr size_t kNotificationsMax = 8;

// A copy of one job, taken under the table lock and used after it is released.
struct Job {
  uint64_t id = 0;
  std::string target;
  JobState state = JobState::queued;
  Params params;
  int progress = -1;  // -1: null
  std::optional<std::string> stage;
  std::vector<Stage> stages;  // oldest first, at most kStagesMax (job_details.h)
  Outputs outputs;            // at most kOutputsMax
  uint32_t requests = 1;
  Micros not_before = 0;
  std::optional<std::string> submitted_by;
  Micros submitted_at = 0, started_at = 0, finished_at = 0;
  std::optional<int> exit_code;
  std::optional<int> signal;
  // False when some of the job's output could not be written to its log.
  bool log_complete = true;
  uint64_t change_seq = 0;  // table change counter at the last change of this job
  // The node (DeployNodeName) that runs or ran the job; none before it starts.
  std::optional<std::string> node;
  // Of its target's DeployGroupBy (job_group); none without it. Derived from
  // params, never stored.
  std::optional<std::string> group;
  // The authenticated user of the cancel that asked to stop it (none when
  // none asked, or without a user); shown while running and once canceled.
  std::optional<std::string> canceled_by;
  // The job whose submission canceled this one (DeploySupersede); 0: none.
  uint64_t superseded_by = 0;
  // Its completion notifications, one per DeployNotify URL of its target
  // when it was submitted, in configuration order (notification.h).
  std::vector<Notification> notifications;
};

// canceled_by as the job JSON shows it: a job that ended otherwise than
// canceled (it finished before the cancel reached it) has none.
inline const std::optional<std::string>& shown_canceled_by(const Job& job) {
  static const std::optional<std::string> none;
  return is_final(job.state) && job.state != JobState::canceled ? none : job.canceled_by;
}

// The line a cancel adds to the job's log (SPEC "Audit"): what happened and
// who asked, e.g. "deploy: canceled by alice\n" or "deploy: superseded by
// job 43\n". Control characters of the user name are left out.
std::string cancel_note(const std::optional<std::string>& by, uint64_t superseded_by);

// When stage `i` of the job ended, as shown: a final job's open last stage
// (it ended without its runner: lost, or finished by a store that kept no
// later report) ends at the job's finished_at; 0 while it is open.
Micros stage_finished_at(const Job& job, size_t i);

// The group of a job with these params in a target grouped by `group_by`
// (DeployGroupBy): that parameter's value, "" when it is absent; none when the
// target has no DeployGroupBy.
std::optional<std::string> job_group(const Params& params,
                                     const std::optional<std::string>& group_by);

}  // namespace deploy
