#include "launch_request.h"

#include <charconv>
#include <cstring>

#include "text.h"

namespace deploy {
namespace {

constexpr size_t kFixedBody = 3 * sizeof(uint64_t) + 2 * sizeof(uint32_t);

template <typename T>
void put(std::string* out, T value) {
  char bytes[sizeof value];
  memcpy(bytes, &value, sizeof value);
  out->append(bytes, sizeof value);
}

void put_string(std::string* out, const std::string& s) {
  put(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Reads from a body whose size is already known to be complete.
class Reader {
 public:
  explicit Reader(std::string_view body) : rest_(body) {}

  template <typename T>
  bool get(T* value) {
    if (rest_.size() < sizeof(T)) return false;
    memcpy(value, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return true;
  }

  bool get_string(std::string* s) {
    uint32_t size = 0;
    if (!get(&size) || size > rest_.size()) return false;
    const std::string_view bytes = rest_.substr(0, size);
    if (bytes.find('\0') != std::string_view::npos) return false;
    s->assign(bytes);
    rest_.remove_prefix(size);
    return true;
  }

  bool get_strings(uint32_t count, std::vector<std::string>* out) {
    // Every string takes at least its size field: a count the body cannot
    // hold is rejected before anything is reserved for it.
    if (count > rest_.size() / sizeof(uint32_t)) return false;
    out->resize(count);
    for (std::string& s : *out) {
      if (!get_string(&s)) return false;
    }
    return true;
  }

  bool get_indices(uint32_t count, std::vector<uint32_t>* out) {
    if (count > rest_.size() / sizeof(uint32_t)) return false;
    out->resize(count);
    for (uint32_t& index : *out) get(&index);
    return true;
  }

  bool empty() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

// Indices strictly increasing, each naming an entry with a '=' in it.
bool valid_secret_entries(const std::vector<uint32_t>& indices,
                          const std::vector<std::string>& environment) {
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] >= environment.size() || (i > 0 && indices[i] <= indices[i - 1]) ||
        environment[indices[i]].find('=') == std::string::npos)
      return false;
  }
  return true;
}

// A uid or gid of the launcher's command line: decimal, never 0 (root), never
// -1 ("unchanged" to setresuid).
bool parse_id(std::string_view text, uint32_t* out) {
  uint32_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value == 0 ||
      value == UINT32_MAX)
    return false;
  *out = value;
  return true;
}

// "UID:GID", and ":NAME" after it when `name` is not null.
bool parse_ids(std::string_view text, uint32_t* uid, uint32_t* gid, std::string* name) {
  const size_t first = text.find(':');
  if (first == std::string_view::npos || !parse_id(text.substr(0, first), uid)) return false;
  text.remove_prefix(first + 1);
  if (name == nullptr) return parse_id(text, gid);
  const size_t second = text.find(':');
  if (second == std::string_view::npos || second + 1 == text.size()) return false;
  name->assign(text.substr(second + 1));
  return parse_id(text.substr(0, second), gid);
}

}  // namespace

std::string encode_launch_request(const LaunchRequest& request) {
  size_t size = sizeof(uint32_t) + kFixedBody + sizeof(uint32_t) +
                request.working_directory.size() + 2 * sizeof(uint32_t) + sizeof(uint32_t) +
                request.secret_entries.size() * sizeof(uint32_t);
  bool valid = !has_nul(request.working_directory) &&
               (request.user_id == 0) == (request.group_id == 0) &&
               valid_secret_entries(request.secret_entries, request.environment);
  for (const auto* strings : {&request.command, &request.environment}) {
    for (const std::string& s : *strings) {
      size += sizeof(uint32_t) + s.size();
      valid = valid && !has_nul(s);
    }
  }
  if (!valid || size > kMaxLaunchFrame) return {};
  std::string frame;
  frame.reserve(size);
  put(&frame, static_cast<uint32_t>(size - sizeof(uint32_t)));
  put(&frame, request.job_id);
  put(&frame, static_cast<uint64_t>(request.timeout));
  put(&frame, static_cast<uint64_t>(request.kill_grace));
  put(&frame, static_cast<uint32_t>(request.command.size()));
  put(&frame, static_cast<uint32_t>(request.environment.size()));
  put_string(&frame, request.working_directory);
  for (const std::string& word : request.command) put_string(&frame, word);
  for (const std::string& entry : request.environment) put_string(&frame, entry);
  put(&frame, request.user_id);
  put(&frame, request.group_id);
  put(&frame, static_cast<uint32_t>(request.secret_entries.size()));
  for (uint32_t index : request.secret_entries) put(&frame, index);
  return frame;
}

DecodeResult decode_launch_request(std::string_view data, LaunchRequest* out, size_t* consumed) {
  uint32_t body_size = 0;
  if (data.size() < sizeof body_size) return DecodeResult::incomplete;
  memcpy(&body_size, data.data(), sizeof body_size);
  if (body_size < kFixedBody || body_size > kMaxLaunchFrame - sizeof body_size)
    return DecodeResult::malformed;
  if (data.size() - sizeof body_size < body_size) return DecodeResult::incomplete;

  Reader body(data.substr(sizeof body_size, body_size));
  LaunchRequest request;
  uint64_t timeout = 0, grace = 0;
  uint32_t words = 0, entries = 0, secrets = 0;
  const bool read = body.get(&request.job_id) && body.get(&timeout) && body.get(&grace) &&
                    body.get(&words) && body.get(&entries) &&
                    body.get_string(&request.working_directory) &&
                    body.get_strings(words, &request.command) &&
                    body.get_strings(entries, &request.environment) && body.get(&request.user_id) &&
                    body.get(&request.group_id) && body.get(&secrets) &&
                    body.get_indices(secrets, &request.secret_entries) && body.empty();
  // Durations fit Micros (they are written from it); a job needs an id and
  // a program; a user comes with its group (root is neither); a secret is
  // an entry's value.
  if (!read || request.job_id == 0 || words == 0 || request.command[0].empty() ||
      (request.user_id == 0) != (request.group_id == 0) || timeout > uint64_t{INT64_MAX} ||
      grace > uint64_t{INT64_MAX} ||
      !valid_secret_entries(request.secret_entries, request.environment))
    return DecodeResult::malformed;
  request.timeout = static_cast<Micros>(timeout);
  request.kill_grace = static_cast<Micros>(grace);
  *out = std::move(request);
  *consumed = sizeof body_size + body_size;
  return DecodeResult::complete;
}

std::vector<std::string> secret_values(const LaunchRequest& request) {
  std::vector<std::string> values;
  for (uint32_t index : request.secret_entries) {
    if (index >= request.environment.size()) continue;
    const std::string& entry = request.environment[index];
    const size_t equals = entry.find('=');
    if (equals != std::string::npos) values.push_back(entry.substr(equals + 1));
  }
  return values;
}

std::vector<std::string> launcher_arguments(const LauncherUsers& users) {
  std::vector<std::string> words = {"--user",
                                    std::to_string(users.uid) + ":" + std::to_string(users.gid)};
  for (const LauncherJobUser& user : users.job_users) {
    words.push_back("--job-user");
    words.push_back(std::to_string(user.uid) + ":" + std::to_string(user.gid) + ":" + user.name);
  }
  return words;
}

Status parse_launcher_arguments(const std::vector<std::string_view>& words,
                                std::optional<LauncherUsers>* out) {
  std::optional<LauncherUsers> users;
  std::vector<LauncherJobUser> job_users;
  for (size_t i = 0; i < words.size(); i += 2) {
    const std::string option(words[i]);
    if (i + 1 >= words.size()) return Status::error("no value after " + option);
    const std::string_view value = words[i + 1];
    if (option == "--user") {
      LauncherUsers parsed;
      if (users || !parse_ids(value, &parsed.uid, &parsed.gid, nullptr))
        return Status::error("invalid --user " + std::string(value));
      users = parsed;
    } else if (option == "--job-user") {
      LauncherJobUser user;
      if (!parse_ids(value, &user.uid, &user.gid, &user.name))
        return Status::error("invalid --job-user " + std::string(value));
      job_users.push_back(std::move(user));
    } else {
      return Status::error("unknown option " + option);
    }
  }
  if (!job_users.empty() && !users) return Status::error("--job-user without --user");
  if (users) users->job_users = std::move(job_users);
  *out = std::move(users);
  return Status::ok();
}

}  // namespace deploy
