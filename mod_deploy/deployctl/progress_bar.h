// The live line `deployctl follow` keeps redrawing on a terminal:
//   [########............]  40%  Provisioning  (running, 1m 02s)
#pragma once

#include <cstddef>
#include <string>

#include "job_view.h"

namespace deploy::ctl {

constexpr size_t kBarCells = 20;

// The line for `job` at `now`, at most `columns` characters wide (the stage
// is shortened first). A job without progress shows "--" and an empty bar;
// a succeeded job a full one.
std::string progress_bar_line(const JobView& job, Micros now, size_t columns);

// Width of the terminal on file descriptor `fd`; 80 when it cannot be known.
size_t terminal_columns(int fd);

}  // namespace deploy::ctl
