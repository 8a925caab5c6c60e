// The state files read at start-up: the input becomes DeployStateDir/
// jobs.table, JobTable::open_for_startup opens it with capacity 2, and every
// record is read as the server reads it (record_to_job, load_params,
// job_json, the unfinished jobs, the recent changes). open_for_startup must
// succeed whatever the file holds and keep only records that validate.
//
// A mutated record rarely keeps a valid checksum, so each input is tried a
// second time with the checksum of every record recomputed: that lets the
// fuzzer reach the readers of records, not only the validation.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "job_json.h"
#include "job_table.h"

namespace {

constexpr uint32_t kCapacity = 2;

const std::string& state_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/job_table_fuzzer.XXXXXX";
    FUZZ_CHECK(mkdtemp(pattern.data()) != nullptr);
    const std::string state = pattern + "/state";
    FUZZ_CHECK(mkdir(state.c_str(), 0750) == 0);
    return state;
  }();
  return dir;
}

void write_table(const std::vector<char>& bytes) {
  const std::string path = state_dir() + "/jobs.table";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(bytes.empty() || write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size()));
  ::close(fd);
}

void open_and_read(const std::vector<char>& bytes) {
  write_table(bytes);
  std::unique_ptr<deploy::JobTable> table;
  std::vector<std::string> warnings;
  const deploy::Status st =
      deploy::JobTable::open_for_startup(state_dir(), kCapacity, -1, -1, &table, &warnings);
  if (!st.is_ok()) std::fprintf(stderr, "open_for_startup: %s\n", st.message().c_str());
  FUZZ_CHECK(st.is_ok());

  deploy::JobTable::Lock lock(*table);
  deploy::TableHeader& header = lock.header();
  FUZZ_CHECK(lock.capacity() == kCapacity);
  // The metrics page prints these names as C strings.
  for (const deploy::TargetStats& stats : header.targets)
    FUZZ_CHECK(memchr(stats.target, '\0', sizeof stats.target) != nullptr);

  const char* first_slot = reinterpret_cast<const char*>(&header) + deploy::kHeaderSize;
  lock.for_each([&](deploy::JobRecord& record) {
    const size_t slot =
        size_t(reinterpret_cast<const char*>(&record) - first_slot) / deploy::kRecordSize;
    FUZZ_CHECK(deploy::record_is_valid(record, kCapacity, slot));
    FUZZ_CHECK(lock.find(record.id) == &record);
    const deploy::Job job = deploy::record_to_job(record);
    FUZZ_CHECK(job.params == deploy::load_params(record));
    FUZZ_CHECK(!deploy::job_json(job, "/deploy").empty());
  });
  size_t unfinished = 0;
  lock.for_each_unfinished([&](deploy::JobRecord&) { ++unfinished; });
  FUZZ_CHECK(unfinished <= kCapacity);
  std::vector<uint64_t> changed;
  (void)lock.changed_since(header.change_seq > 10 ? header.change_seq - 10 : 0, &changed);
}

// `bytes` with the checksum of every complete record recomputed; false when
// nothing changed.
bool fix_checksums(std::vector<char>& bytes) {
  bool changed = false;
  for (size_t at = deploy::kHeaderSize; at + deploy::kRecordSize <= bytes.size();
       at += deploy::kRecordSize) {
    deploy::JobRecord record;
    memcpy(&record, bytes.data() + at, sizeof record);
    const uint64_t checksum = deploy::record_checksum(record);
    if (record.checksum == checksum) continue;
    record.checksum = checksum;
    memcpy(bytes.data() + at, &record, sizeof record);
    changed = true;
  }
  return changed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<char> bytes(data, data + size);
  open_and_read(bytes);
  if (fix_checksums(bytes)) open_and_read(bytes);
  return 0;
}
