// The runner's side of the launcher (launcher.h): the loop of a runner the
// launcher forked, and what the two processes share: the frames on the
// runner's socket, its title in the launcher's argv memory, the record of a
// job that cannot get a runner.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "job_table.h"
#include "launch_request.h"
#include "privileges.h"

namespace deploy {

// How much a FrameReader reads at a time.
inline constexpr size_t kReadChunk = 64 * 1024;
// What a runner writes to the launcher once it is ready for another job.
inline constexpr char kReady = 'R';

// The memory of main()'s argv strings, which /proc/PID/cmdline shows: a
// runner writes its own words there.
class ProcessTitle {
 public:
  ProcessTitle(int argc, char** argv) {
    if (argc == 0) return;
    begin_ = argv[0];
    end_ = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
  }

  // Words separated by NULs, cut to the space there is, the rest zeroed.
  void set(const std::vector<std::string_view>& words) {
    char* out = begin_;
    for (std::string_view word : words) {
      const size_t room = static_cast<size_t>(end_ - out);
      if (room < 2) break;
      const size_t n = std::min(word.size(), room - 1);
      memcpy(out, word.data(), n);
      out += n;
      *out++ = '\0';
    }
    if (out != nullptr) memset(out, 0, static_cast<size_t>(end_ - out));
  }

 private:
  char* begin_ = nullptr;
  char* end_ = nullptr;
};

// Frames from a descriptor, across reads: call fill() when the descriptor
// is readable, then take() until it has no whole frame left.
class FrameReader {
 public:
  enum class Result { request, none, malformed };

  // One read; false once the descriptor has ended (or failed).
  bool fill(int fd) {
    const ssize_t n = read(fd, chunk_.data(), chunk_.size());
    if (n < 0) return errno == EINTR || errno == EAGAIN;
    buffer_.append(chunk_.data(), static_cast<size_t>(n));
    return n > 0;
  }

  // The next whole frame read so far: `request` holds it, `raw` (unless
  // null) its bytes.
  Result take(LaunchRequest* request, std::string* raw) {
    size_t used = 0;
    switch (decode_launch_request(buffer_, request, &used)) {
      case DecodeResult::complete:
        if (raw != nullptr) raw->assign(buffer_, 0, used);
        buffer_.erase(0, used);
        return Result::request;
      case DecodeResult::malformed:
        return Result::malformed;
      case DecodeResult::incomplete:
        break;
    }
    return Result::none;
  }

 private:
  std::string buffer_;
  std::vector<char> chunk_ = std::vector<char>(kReadChunk);
};

// The job cannot get a runner: it failed without running, as a runner whose
// start fails records it.
void record_launch_failure(JobTable& table, uint64_t job_id, const std::string& message);

// In the forked child: runs `first`, then every job the launcher sends, one at
// a time, on the launcher's `table`. Never returns.
[[noreturn]] void runner_main(const std::string& state_dir, std::unique_ptr<JobTable> table,
                              LaunchRequest first, int socket_fd, ProcessTitle& title,
                              const std::string& program, const std::vector<RunAs>& users);

}  // namespace deploy
