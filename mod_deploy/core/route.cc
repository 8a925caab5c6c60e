#include "route.h"

#include <array>

#include "names.h"
#include "text.h"

namespace deploy {

namespace {

// A job id as it appears in a path: positive decimal, no leading zero.
std::optional<uint64_t> parse_job_id(std::string_view text) {
  if (text.empty() || text[0] == '0') return std::nullopt;
  return parse_decimal(text);
}

// application/x-www-form-urlencoded decoding of one name or value.
std::optional<std::string> decode_form_component(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = hex_digit_value(text[i + 1]);
      const int low = hex_digit_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

RequestError bad_query(std::string message) {
  return RequestError{400, "bad_request", std::move(message)};
}

}  // namespace

std::optional<Route> parse_route(std::string_view path) {
  if (path.empty() || path == "/") return Route{};
  if (path[0] != '/') return std::nullopt;
  if (path.back() == '/') path.remove_suffix(1);

  // At most three segments: jobs/ID/log. A fourth one makes no route.
  std::array<std::string_view, 3> segments;
  size_t count = 0;
  std::string_view rest = path.substr(1);
  while (true) {
    if (count == segments.size()) return std::nullopt;
    const size_t slash = rest.find('/');
    segments[count++] = rest.substr(0, slash);
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }

  Route route;
  if (count == 1) {
    if (segments[0] == "targets") {
      route.kind = Route::Kind::targets;
    } else if (segments[0] == "jobs") {
      route.kind = Route::Kind::jobs;
    } else if (segments[0] == "events") {
      route.kind = Route::Kind::events;
    } else if (segments[0] == "metrics") {
      route.kind = Route::Kind::metrics;
    } else {
      return std::nullopt;
    }
    return route;
  }

  if (count == 2 && segments[0] == "targets") {
    if (!is_valid_target_name(segments[1])) return std::nullopt;
    route.kind = Route::Kind::target;
    route.target = std::string(segments[1]);
    return route;
  }

  if (segments[0] != "jobs") return std::nullopt;
  const auto id = parse_job_id(segments[1]);
  if (!id) return std::nullopt;
  route.job_id = *id;
  if (count == 2) {
    route.kind = Route::Kind::job;
  } else if (segments[2] == "log") {
    route.kind = Route::Kind::job_log;
  } else if (segments[2] == "events") {
    route.kind = Route::Kind::job_events;
  } else if (segments[2] == "cancel") {
    route.kind = Route::Kind::job_cancel;
  } else {
    return std::nullopt;
  }
  return route;
}

std::string_view allowed_methods(Route::Kind kind) {
  switch (kind) {
    case Route::Kind::target:
    case Route::Kind::job_cancel:
      return "POST";
    case Route::Kind::dashboard:
    case Route::Kind::targets:
    case Route::Kind::jobs:
    case Route::Kind::job:
    case Route::Kind::job_log:
    case Route::Kind::job_events:
    case Route::Kind::events:
    case Route::Kind::metrics:
      break;
  }
  return "GET, HEAD";
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(
    std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2"
    const size_t equals = pair.find('=');
    auto name = decode_form_component(pair.substr(0, equals));
    auto value = decode_form_component(equals == std::string_view::npos ? std::string_view()
                                                                        : pair.substr(equals + 1));
    if (!name || !value) return std::nullopt;
    pairs.emplace_back(std::move(*name), std::move(*value));
  }
  return pairs;
}

std::variant<JobsQuery, RequestError> parse_jobs_query(std::string_view query) {
  const auto pairs = parse_query(query);
  if (!pairs) return bad_query("the query string has a malformed percent-encoding");
  JobsQuery result;
  // An empty value means "any", as an HTML form sends for an unset filter.
  // Keys this route does not know are ignored, so that cache busters work.
  for (const auto& [name, value] : *pairs) {
    if (value.empty()) continue;
    if (name == "target") {
      if (!is_valid_target_name(value))
        return bad_query("query parameter 'target' is not a target name");
      result.target = value;
    } else if (name == "state") {
      result.state = state_from_name(value);
      if (!result.state) return bad_query("query parameter 'state' is not a job state");
    } else if (name == "limit") {
      const auto limit = parse_decimal(value);
      if (!limit || *limit < 1 || *limit > 1000) {
        return bad_query("query parameter 'limit' must be a number from 1 to 1000");
      }
      result.limit = static_cast<uint32_t>(*limit);
    } else if (name == "before") {
      const auto before = parse_job_id(value);
      if (!before) return bad_query("query parameter 'before' must be a job id");
      result.before = *before;
    }
  }
  return result;
}

std::variant<uint64_t, RequestError> parse_log_offset(std::string_view query) {
  const auto pairs = parse_query(query);
  if (!pairs) return bad_query("the query string has a malformed percent-encoding");
  uint64_t offset = 0;
  for (const auto& [name, value] : *pairs) {
    if (name != "offset" || value.empty()) continue;
    const auto parsed = parse_decimal(value);
    if (!parsed) return bad_query("query parameter 'offset' must be a number of bytes");
    offset = *parsed;
  }
  return offset;
}

namespace {

// The q of one media range's parameters, in thousandths: 1000 when absent, 0
// when malformed (RFC 9110: "0" or "1" with up to three decimals).
int quality_of(std::string_view params) {
  int q = 1000;
  while (!params.empty()) {
    size_t semi = params.find(';');
    std::string_view param = trim_whitespace(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
    if (param.size() < 2 || lower_ascii(param[0]) != 'q' || param[1] != '=') continue;
    std::string_view v = param.substr(2);
    if (v.empty() || (v[0] != '0' && v[0] != '1')) return 0;
    int value = (v[0] - '0') * 1000;
    if (v.size() > 1) {
      if (v[1] != '.' || v.size() > 5) return 0;
      int scale = 100;
      for (char c : v.substr(2)) {
        if (!is_ascii_digit(c)) return 0;
        value += (c - '0') * scale;
        scale /= 10;
      }
    }
    q = value > 1000 ? 0 : value;
  }
  return q;
}

}  // namespace

bool prefers_html(std::string_view accept) {
  // For each type: the specificity of the range that set its q (0: none
  // matched, 1: */*, 2: TYPE/*, 3: the type itself) and that q.
  struct Match {
    int specificity = 0;
    int q = 0;
  };
  Match html, json;
  auto consider = [](Match& m, int specificity, int q) {
    if (specificity > m.specificity || (specificity == m.specificity && q > m.q))
      m = {specificity, q};
  };
  for (int ranges = 0; !accept.empty() && ranges < 64; ++ranges) {
    size_t comma = accept.find(',');
    std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    size_t semi = range.find(';');
    std::string_view type = trim_whitespace(range.substr(0, semi));
    int q =
        quality_of(semi == std::string_view::npos ? std::string_view{} : range.substr(semi + 1));
    if (type == "*/*") {
      consider(html, 1, q);
      consider(json, 1, q);
    } else if (equals_ignoring_case(type, "text/*")) {
      consider(html, 2, q);
    } else if (equals_ignoring_case(type, "application/*")) {
      consider(json, 2, q);
    } else if (equals_ignoring_case(type, "text/html")) {
      consider(html, 3, q);
    } else if (equals_ignoring_case(type, "application/json")) {
      consider(json, 3, q);
    }
  }
  return html.q > 0 && html.q > json.q;
}

}  // namespace deploy
