// The directives' table: for each directive its name, where it may be given,
// the kind of value it takes, its default and its range. One row a
// directive, read by the directive setters (range and context checks,
// httpd/deploy_config.cc), by the merge (unset -> default), by the core
// policies (scheduler.h) and checked against docs/directives.md by
// tests/unit/test_directive_specs.cc. Adding a directive: see
// docs/architecture.md, "Adding a directive".
#pragma once

#include <cstdint>
#include <iterator>
#include <limits>
#include <string_view>

namespace deploy {

// Where a directive may be given (docs/directives.md's "Context:").
enum class DirectiveContext {
  server,            // "server config": the main server, outside <DeployTarget>
  server_or_target,  // "server config, <DeployTarget>": a server-level value is every target's
                     // default
  target_section,    // "<DeployTarget>" only
};

// The kind of value, which decides how it is parsed and what configtest says.
enum class DirectiveUnit {
  count,     // a whole number
  duration,  // parse_duration (duration.h); the value in microseconds
  size,      // parse_size (duration.h); the value in bytes
  flag,      // On or Off; the value 1 or 0
  text,      // anything else (a path, a name, a list): checked by its setter
};

// What an unset directive means.
enum class DirectiveDefault {
  value,    // `value` (or `word`): docs say "`Name VALUE`"
  decided,  // decided at start-up (the host name, a quarter of MaxRequestWorkers); docs say how
  none,     // nothing: the feature is off or the list empty; docs say "none…"
};

inline constexpr int64_t kUnbounded = std::numeric_limits<int64_t>::max();

struct DirectiveSpec {
  std::string_view name;  // as in httpd's command table ("<DeployTarget" for the section)
  DirectiveContext context;
  DirectiveUnit unit;
  DirectiveDefault default_kind = DirectiveDefault::none;
  int64_t value = 0;           // the default of a count, duration, size or flag
  const char* word = nullptr;  // the default of a text directive, as written
  int64_t min = 0;             // a value below is refused
  int64_t max = kUnbounded;    // a value above is refused (kUnbounded: only the unit's own limit)
};

// The table's words, short so that a row reads as one line.
namespace directive_table {
inline constexpr auto server = DirectiveContext::server;
inline constexpr auto target = DirectiveContext::server_or_target;
inline constexpr auto section = DirectiveContext::target_section;
inline constexpr auto count = DirectiveUnit::count;
inline constexpr auto duration = DirectiveUnit::duration;
inline constexpr auto size = DirectiveUnit::size;
inline constexpr auto flag = DirectiveUnit::flag;
inline constexpr auto text = DirectiveUnit::text;
inline constexpr auto value = DirectiveDefault::value;
inline constexpr auto decided = DirectiveDefault::decided;
inline constexpr int64_t second = 1'000'000, minute = 60 * second, hour = 60 * minute;
inline constexpr int64_t kib = 1024, mib = 1024 * kib;
inline constexpr int64_t max_count = 1'000'000;

// name, context, unit, default kind, default value, default word, min, max
inline constexpr DirectiveSpec rows[] = {
    // --- server-wide ---
    {"DeployStateDir", server, text, value, 0, "deploy"},  // relative to ServerRoot
    {"DeployHistory", server, count, value, 1000, nullptr, 1, max_count},
    {"DeployMaxRunning", server, count, value, 4, nullptr, 1, max_count},
    {"DeployQueueLimit", server, count, value, 100, nullptr, 1, max_count},
    {"DeployMaxBody", server, size, value, 64 * kib, nullptr, 1, 64 * mib},
    {"DeployEventsTimeout", server, duration, value, 60 * second},
    // Unset (0): a quarter of MaxRequestWorkers, decided in post_config.
    {"DeployEventsMaxStreams", server, count, decided, 0, nullptr, 1, max_count},
    {"DeployEventsMaxPerClient", server, count, value, 8, nullptr, 1, max_count},
    {"DeploySync", server, flag, value, 1},
    {"DeployStore", server, text, value, 0, "file"},
    {"DeployNodeName", server, text, decided},  // the host name
    {"DeployLease", server, duration, value, 15 * second, nullptr, second, hour},
    {"DeployNotifyCAFile", server, text},  // none: the system's certificate store
    // --- per target: at server level, the default of every target ---
    {"<DeployTarget", server, text},
    {"DeployCommand", target, text},
    {"DeployParam", target, text},
    {"DeployTimeout", target, duration, value, 300 * second},
    {"DeployKillGrace", target, duration, value, 10 * second},
    {"DeployQueueTimeout", target, duration, value, 600 * second},
    {"DeployWaitChangeNotification", target, duration, value, 0},
    {"DeployMaxWaitChangeNotification", target, duration, value, 0},
    {"DeployConcurrency", target, count, value, 1, nullptr, 0, max_count},
    {"DeployGroupBy", target, text},
    {"DeployEnv", target, text},
    {"DeployWorkingDirectory", target, text, decided},  // the state dir, or DeployUser's home
    {"DeploySecret", target, text},
    {"DeploySecretEnv", target, text},
    {"DeployParamFrom", section, text},
    {"DeployFilter", section, text},
    {"DeployToken", target, text},
    {"DeployUnsignedUsers", target, flag, value, 0},
    {"DeployUser", target, text},
    {"DeploySupersede", target, text, value, 0, "off"},
    {"DeployIdempotencyHeader", target, text},  // none: Idempotency-Key alone
    {"DeployNotify", target, text},
    {"DeployNotifySecret", target, text},  // none: not signed
};
}  // namespace directive_table

inline constexpr const auto& kDirectiveSpecs = directive_table::rows;

// Where the row of `name` is in kDirectiveSpecs; kNoDirective when the
// table has none. (An index, not a pointer: address comparisons are not
// constant expressions under the sanitizers.)
constexpr size_t kNoDirective = ~size_t(0);
constexpr size_t find_directive_index(std::string_view name) {
  for (size_t i = 0; i < std::size(kDirectiveSpecs); ++i)
    if (kDirectiveSpecs[i].name == name) return i;
  return kNoDirective;
}

// The row of `name`; nullptr when the table has none.
constexpr const DirectiveSpec* find_directive_spec(std::string_view name) {
  const size_t i = find_directive_index(name);
  return i == kNoDirective ? nullptr : &kDirectiveSpecs[i];
}

// The row of `name`, a copy. In a constant expression (directive_default,
// static_assert), a name the table lacks does not compile.
constexpr DirectiveSpec directive_spec(std::string_view name) {
  const size_t i = find_directive_index(name);
  if (i == kNoDirective) throw "no such directive in kDirectiveSpecs";
  return kDirectiveSpecs[i];
}

// The default of a count, duration, size or flag directive, as T.
template <typename T>
consteval T directive_default(std::string_view name) {
  const DirectiveSpec spec = directive_spec(name);
  if (spec.unit == DirectiveUnit::text || spec.default_kind == DirectiveDefault::none)
    throw "the directive has no numeric default";
  if (spec.value < int64_t(std::numeric_limits<T>::min()) ||
      uint64_t(spec.value) > uint64_t(std::numeric_limits<T>::max()))
    throw "the default does not fit the type";
  return T(spec.value);
}

}  // namespace deploy
