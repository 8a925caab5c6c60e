// Frames to the runner launcher: decode_launch_request on any bytes never
// reads past them, and what it accepts encodes back to the bytes it took.
// A request that decodes has a job id, a program, no NUL in any string, and a
// user only with its group (DeployUser; never half root), and secret entries
// (DeploySecretEnv) that name, in increasing order, environment entries with
// a value.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "launch_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = deploy::fuzz::as_text(data, size);
  while (!rest.empty()) {
    deploy::LaunchRequest request;
    size_t used = 0;
    if (deploy::decode_launch_request(rest, &request, &used) != deploy::DecodeResult::complete)
      break;
    FUZZ_CHECK(used > 0 && used <= rest.size());
    FUZZ_CHECK(request.job_id != 0 && !request.command.empty() && !request.command[0].empty());
    FUZZ_CHECK(request.timeout >= 0 && request.kill_grace >= 0);
    FUZZ_CHECK((request.user_id == 0) == (request.group_id == 0));
    for (size_t i = 0; i < request.secret_entries.size(); ++i) {
      const uint32_t index = request.secret_entries[i];
      FUZZ_CHECK(index < request.environment.size());
      FUZZ_CHECK(i == 0 || index > request.secret_entries[i - 1]);
      FUZZ_CHECK(request.environment[index].find('=') != std::string::npos);
    }
    FUZZ_CHECK(deploy::secret_values(request).size() == request.secret_entries.size());
    FUZZ_CHECK(deploy::encode_launch_request(request) == rest.substr(0, used));
    rest.remove_prefix(used);
  }
  return 0;
}
