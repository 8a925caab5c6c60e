// The `file` engine's job output (job_store.h, JobOutput): the job's log
// file in the state directory, appended to as the job writes, allocated
// ahead so that a full disk is noticed while room for the last line is
// still kept.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "file_store.h"

namespace deploy {
namespace {

// Kept allocated past the end of the log (fallocate KEEP_SIZE), so that the
// line saying output was lost can be written on a full disk.
constexpr uint64_t kLogReserve = 4096;
// The log is allocated ahead in steps of this much, not at every write; what
// is left past its end is freed when the output is closed.
constexpr uint64_t kLogAllocationStep = 64 * 1024;

class FileOutput : public JobOutput {
 public:
  FileOutput(uint64_t id, std::string path, int fd) : id_(id), path_(std::move(path)), fd_(fd) {
    struct stat st;
    if (fstat(fd_, &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
    has_room(0);  // the reserve for the last line, before any output
  }
  ~FileOutput() override {
    if (fd_ >= 0) ::close(fd_);
  }
  FileOutput(const FileOutput&) = delete;
  FileOutput& operator=(const FileOutput&) = delete;

  void append(std::string_view data) override {
    const char* p = data.data();
    size_t size = data.size();
    if (fd_ < 0 || failed_ || !has_room(size)) {
      bytes_lost_ += size;
      return;
    }
    while (size > 0) {
      const ssize_t n = write(fd_, p, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        // A full disk must not stop the job.
        lost(errno);
        bytes_lost_ += size;
        return;
      }
      p += n;
      size -= static_cast<size_t>(n);
      size_ += static_cast<uint64_t>(n);
    }
  }
  uint64_t size() const override { return size_; }
  bool incomplete() const override { return failed_; }
  Status flush() override { return Status::ok(); }  // written through

  Status close() override {
    if (fd_ < 0) return Status::ok();
    if (failed_) {  // the log's last line, in the room kept for it
      const std::string line = "\ndeploy: output lost: the log could not be written (" +
                               std::string(strerror(error_)) + "); " + std::to_string(bytes_lost_) +
                               " bytes of output are missing\n";
      const ssize_t n = write(fd_, line.data(), line.size());
      if (n > 0) size_ += static_cast<uint64_t>(n);
    }
    // Frees the blocks allocated ahead past the end of the log: a finished
    // job's log takes only what it holds.
    struct stat st;
    if (allocated_end_ != 0 && fstat(fd_, &st) == 0 && ftruncate(fd_, st.st_size) == 0)
      allocated_end_ = 0;
    ::close(fd_);
    fd_ = -1;
    return Status::ok();
  }

 private:
  // Whether `size` more bytes fit in the log with the reserve still behind
  // them: the blocks are allocated ahead, so that a full disk is noticed
  // before the reserve is spent.
  bool has_room(size_t size) {
    const uint64_t needed = size_ + size + kLogReserve;
    if (!preallocation_ || needed <= allocated_end_) return true;
    for (uint64_t end : {needed + kLogAllocationStep, needed}) {
      if (fallocate(fd_, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(size_),
                    static_cast<off_t>(end - size_)) == 0) {
        allocated_end_ = end;
        return true;
      }
      if (errno == EOPNOTSUPP || errno == ENOSYS) {
        preallocation_ = false;  // nothing to reserve with: write and see
        return true;
      }
    }
    lost(errno);
    return false;
  }

  // From now on the job's output is dropped (the job goes on); the error log
  // says why, once.
  void lost(int error) {
    if (failed_) return;
    failed_ = true;
    error_ = error;
    fprintf(stderr,
            "deploy-runner[job %llu]: [error] cannot write the log %s: %s; its output is "
            "lost from byte %llu on\n",
            static_cast<unsigned long long>(id_), path_.c_str(), strerror(error),
            static_cast<unsigned long long>(size_));
  }

  const uint64_t id_;
  const std::string path_;
  int fd_;
  uint64_t size_ = 0;           // bytes in the log
  bool failed_ = false;         // output could not all be written
  int error_ = 0;               // why, an errno
  uint64_t bytes_lost_ = 0;     // output not written
  uint64_t allocated_end_ = 0;  // the log has disk blocks up to here
  bool preallocation_ = true;   // false: the file system cannot fallocate
};

}  // namespace

JobOutput::~JobOutput() = default;

Status FileStore::open_output(uint64_t id, const RunnerRef&, std::unique_ptr<JobOutput>* out) {
  const int fd = table_.open_log(id);
  if (fd < 0) {
    return Status::error("cannot open the log " + table_.log_path(id) + ": " + strerror(errno),
                         errno == ENOSPC ? kStoreFull : "");
  }
  *out = std::make_unique<FileOutput>(id, table_.log_path(id), fd);
  return Status::ok();
}

Status FileStore::read_output(uint64_t id, uint64_t offset, size_t max, std::string* out) {
  out->clear();
  const std::string path = table_.log_path(id);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return Status::error("job " + std::to_string(id) + " has no output", kNotFound);
    return Status::error("cannot open the log " + path + ": " + strerror(errno));
  }
  struct stat st;
  Status result = Status::ok();
  if (fstat(fd, &st) != 0) {
    result = Status::error("cannot read the log " + path + ": " + strerror(errno));
  } else if (offset < static_cast<uint64_t>(st.st_size)) {
    // Bounded by what is there now: the log only grows while it is read.
    out->resize(std::min<uint64_t>(max, static_cast<uint64_t>(st.st_size) - offset));
    size_t got = 0;
    while (got < out->size()) {
      const ssize_t n =
          pread(fd, out->data() + got, out->size() - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n < 0) result = Status::error("cannot read the log " + path + ": " + strerror(errno));
        break;
      }
      got += static_cast<size_t>(n);
    }
    out->resize(got);
  }
  ::close(fd);
  return result;
}

}  // namespace deploy
