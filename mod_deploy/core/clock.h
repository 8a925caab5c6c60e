// The two clocks, named for what they are (docs/architecture.md, "Clocks").
//
// Wall time (CLOCK_REALTIME) is for display only: the times a job shows.
// Every delay, timeout, quiet window and deadline is measured on the
// monotonic clock, CLOCK_BOOTTIME: it never steps, it is the same in every
// process of the host (the job table stores its values and shares them), and
// it counts a suspend, so a deadline does not stretch over one. Its values
// mean something only within one boot: the job table keeps the boot id with
// them (job_table.h).
#pragma once

#include <string>

#include "job.h"

namespace deploy {

// Microseconds since the Unix epoch; may step backwards or forwards.
Micros wall_now();
// Microseconds since boot; only grows.
Micros mono_now();

// One moment on both clocks, read together.
struct Instant {
  Micros wall = 0;
  Micros mono = 0;
  static Instant now() { return Instant{wall_now(), mono_now()}; }
  // The monotonic time of wall time `wall_time`, assuming the wall clock did
  // not step in between: the best that can be said of a time recorded in an
  // earlier boot or by a build that kept only wall times.
  Micros mono_of(Micros wall_time) const { return mono + (wall_time - wall); }
  // The wall time shown for monotonic time `mono_time`, as of this moment.
  Micros wall_of(Micros mono_time) const { return wall + (mono_time - mono); }
};

// This boot's id (/proc/sys/kernel/random/boot_id), "" when unreadable.
std::string boot_id();

}  // namespace deploy
