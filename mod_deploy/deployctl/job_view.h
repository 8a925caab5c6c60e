// A job as deployctl shows it: the fields of the server's job JSON
// (docs/api.md, "The job") that a person reads, and the lines written about it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "display.h"

namespace deploy::ctl {

struct JobView {
  uint64_t id = 0;
  std::string target;
  std::string state;
  std::vector<std::pair<std::string, std::string>> params;
  std::optional<std::string> group;  // DeployGroupBy's value; none without it
  std::optional<int> progress;
  std::optional<std::string> stage;
  struct Stage {
    std::string name;
    Micros started_at = -1, finished_at = -1;  // -1: unset (finished: the open stage)
  };
  std::vector<Stage> stages;
  std::vector<std::pair<std::string, std::string>> outputs;
  int64_t requests = 0;
  std::optional<std::string> submitted_by;
  std::optional<std::string> node;  // that runs or ran it
  Micros not_before = -1;           // -1: unset, as the times below
  Micros submitted_at = -1;
  Micros started_at = -1;
  Micros finished_at = -1;
  std::optional<int64_t> exit_code;
  std::optional<int64_t> signal;
  bool coalesced = false;
};

// The job of a job JSON object's text; nullopt when it is not one.
std::optional<JobView> parse_job(std::string_view json_text);
// The jobs of a JSON array's text (GET BASE/jobs); nullopt when it is not one.
std::optional<std::vector<JobView>> parse_jobs(std::string_view json_text);

bool is_final_state(std::string_view state);

// How long the job has been in its current phase at `now`: running since
// it started, finished after running that long, or waiting since it was
// submitted.
Micros elapsed(const JobView& job, Micros now);

// A timestamped line for logs and pipes:
// "2026-11-21T10:00:01Z job 42 running 40% Provisioning"
std::string change_line(const JobView& job, Micros now);

// The line that closes a follow: "job 42 failed: exit code 3, ran 1m 02s".
std::string summary_line(const JobView& job);

// The fields that a follow reports a change of.
bool same_progress(const JobView& a, const JobView& b);

}  // namespace deploy::ctl
