// Ctrl-C while deployctl waits: the wait and any transfer in flight stop
// early so that the caller can restore the terminal and say what happened.
#pragma once

namespace deploy::ctl {

// Installs a SIGINT/SIGTERM handler that only records the signal.
void catch_interruptions();

// True once SIGINT or SIGTERM arrived.
bool interrupted();

// Sleeps `milliseconds`, returning early (false) when interrupted.
bool sleep_unless_interrupted(int milliseconds);

}  // namespace deploy::ctl
