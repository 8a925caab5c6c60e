#include "progress_bar.h"

#include <sys/ioctl.h>

#include <cstdio>

namespace deploy::ctl {

std::string progress_bar_line(const JobView& job, Micros now, size_t columns) {
  std::optional<int> progress = job.progress;
  if (job.state == "succeeded") progress = 100;
  const size_t filled = progress ? kBarCells * size_t(*progress) / 100 : 0;
  char percent[8];
  if (progress)
    std::snprintf(percent, sizeof percent, "%3d%%", *progress);
  else
    std::snprintf(percent, sizeof percent, " --%%");

  const std::string head =
      "[" + std::string(filled, '#') + std::string(kBarCells - filled, '.') + "] " + percent;
  const std::string tail =
      "  (" + printable(job.state) + ", " + format_duration(elapsed(job, now)) + ")";
  std::string stage = job.stage ? "  " + printable(*job.stage) : "";
  const size_t fixed = column_count(head) + column_count(tail);
  if (fixed >= columns) return first_columns(head + tail, columns);
  if (column_count(stage) > columns - fixed) {
    const size_t room = columns - fixed;
    stage = room > 3 ? first_columns(stage, room - 3) + "..." : first_columns(stage, room);
  }
  return head + stage + tail;
}

size_t terminal_columns(int fd) {
  winsize size{};
  if (ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

}  // namespace deploy::ctl
