#include "interruption.h"

#include <signal.h>
#include <time.h>

#include <cerrno>

namespace deploy::ctl {

namespace {

volatile sig_atomic_t interruption_seen = 0;

void record_interruption(int) { interruption_seen = 1; }

}  // namespace

void catch_interruptions() {
  struct sigaction action {};
  action.sa_handler = record_interruption;
  sigemptyset(&action.sa_mask);
  // No SA_RESTART: a blocking call returns EINTR and the caller looks.
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool interrupted() { return interruption_seen != 0; }

bool sleep_unless_interrupted(int milliseconds) {
  timespec left{milliseconds / 1000, (milliseconds % 1000) * 1000000L};
  while (!interrupted()) {
    if (nanosleep(&left, &left) == 0) return true;
    if (errno != EINTR) return true;
  }
  return false;
}

}  // namespace deploy::ctl
