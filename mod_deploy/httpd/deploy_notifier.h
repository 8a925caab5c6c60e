// The deliverer of completion notifications (DeployNotify): a thread of the
// scheduler process that claims due notifications from the job store, POSTs
// each job's JSON to its URLs with libcurl, and records every attempt
// (notification.h has the schedule, job_store.h the claims). It has a store
// of its own (for postgresql, its own connection) and holds it only for a
// claim or a record, never while it waits for a receiver: scheduling and
// requests never wait for a notification (docs/architecture.md).
#pragma once

#include <httpd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "deploy_state.h"

namespace deploy {

class Notifier {
 public:
  // In the scheduler process, after it dropped its privileges.
  Notifier(server_rec* s, const ModuleState& state);
  // Stops the thread: an attempt under way is abandoned (it is tried again
  // once its claim lapses) and the thread joined.
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Starts the thread, with every signal blocked in it (they are the
  // scheduler's). Nothing happens when no target has DeployNotify.
  void start();

 public:
  struct Attempt;  // of deploy_notifier.cc

 private:
  void run();
  void record(const Attempt& attempt, uint32_t divisor);

  server_rec* server_;
  const ModuleState& state_;
  std::unique_ptr<JobStore> store_;
  std::atomic<bool> stop_{false};
  Micros last_scan_ = 0;  // monotonic: the deliverer's latest claim
  std::thread thread_;
};

}  // namespace deploy
