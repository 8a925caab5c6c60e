#include "clock.h"

#include <time.h>

#include <fstream>

namespace deploy {
namespace {

Micros read_clock(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return Micros(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace

Micros wall_now() { return read_clock(CLOCK_REALTIME); }

Micros mono_now() { return read_clock(CLOCK_BOOTTIME); }

std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (!std::getline(in, id)) return "";
  return id;
}

}  // namespace deploy
