// The jobs' logs and their recycling (JobTable::open_log, drop_log).
#include "job_table.h"
#include "table_file.h"
#include "job_details.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <map>

namespace deploy {

using namespace table_file;

namespace {

// Below this much free space (for httpd's user) a submission is refused as
// store_full: its job could not keep even a short log.
constexpr uint64_t kMinFreeBytes = 64 * 1024;

}  // namespace

uint64_t table_file::scan_logs(const std::string& state_dir, uint32_t capacity) {
  uint64_t highest = 0;
  std::string dir = state_dir + "/logs";
  if (DIR* d = opendir(dir.c_str())) {
    while (struct dirent* entry = readdir(d)) {
      char* end = nullptr;
      if (strncmp(entry->d_name, kSparePrefix, strlen(kSparePrefix)) == 0) {
        const char* digits = entry->d_name + strlen(kSparePrefix);
        const uint64_t slot = strtoull(digits, &end, 10);
        if (end == digits || *end != '\0' || slot >= capacity) unlinkat(dirfd(d), entry->d_name, 0);
        continue;
      }
      uint64_t id = strtoull(entry->d_name, &end, 10);
      if (end != entry->d_name && strcmp(end, ".log") == 0) highest = std::max(highest, id);
      // A details file half written when its writer died (write_details
      // renames it into place under the table's lock, which start-up holds).
      if (end != entry->d_name && strcmp(end, ".details.new") == 0)
        unlinkat(dirfd(d), entry->d_name, 0);
    }
    closedir(d);
  }
  return highest;
}

std::string JobTable::log_path(uint64_t id) const {
  return state_dir_ + "/logs/" + std::to_string(id) + ".log";
}

std::string JobTable::spare_log_path(uint64_t id) const {
  return state_dir_ + "/logs/" + kSparePrefix + std::to_string(id % capacity_.load());
}

int JobTable::open_log(uint64_t id) const {
  const std::string path = log_path(id);
  // Fails harmlessly without a spare, or when the log exists already.
  renameat2(AT_FDCWD, spare_log_path(id).c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, kFileMode);
}

void JobTable::drop_log(uint64_t id) const {
  unlink(details_path(id).c_str());  // most jobs have none
  const std::string path = log_path(id);
  if (truncate(path.c_str(), 0) != 0 || rename(path.c_str(), spare_log_path(id).c_str()) != 0)
    unlink(path.c_str());
}

std::string JobTable::details_path(uint64_t id) const {
  return state_dir_ + "/logs/" + std::to_string(id) + ".details";
}

Status JobTable::write_details(uint64_t id, std::string_view text) const {
  const std::string path = details_path(id), temporary = path + ".new";
  const int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, kFileMode);
  if (fd < 0) return Status::error("cannot create " + temporary + ": " + strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : ENOSPC;
      ::close(fd);
      unlink(temporary.c_str());
      return Status::error("cannot write " + temporary + ": " + strerror(error));
    }
    done += size_t(n);
  }
  if (::close(fd) != 0 || rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    unlink(temporary.c_str());
    return Status::error("cannot write " + path + ": " + strerror(error));
  }
  return Status::ok();
}

bool JobTable::read_details(uint64_t id, std::string* text) const {
  const int fd = ::open(details_path(id).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  text->assign(kDetailsMax + 1, '\0');
  size_t done = 0;
  while (done < text->size()) {
    const ssize_t n = ::read(fd, text->data() + done, text->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += size_t(n);
  }
  ::close(fd);
  text->resize(done);
  return done <= kDetailsMax;
}

bool JobTable::has_room_for_a_job() const {
  struct statvfs fs;
  if (statvfs(state_dir_.c_str(), &fs) != 0) return true;  // let the writes say what fails
  return uint64_t(fs.f_bavail) * fs.f_frsize >= kMinFreeBytes;
}

}  // namespace deploy
