// What the HTML pages (the dashboard, the job page) share: escaping of text
// from outside, how times and states look, and the headers that keep every
// script but the page's own from running.
#pragma once

#include <httpd.h>

#include <string>
#include <string_view>

#include "clock.h"
#include "job.h"

namespace deploy {

// Text from outside (params, stages, names, users, log lines): valid UTF-8,
// and safe both between tags and inside a double- or single-quoted attribute.
std::string html_escape(std::string_view text);

// "2026-11-21 10:00:05" (UTC), as the scripts show times too; an em dash for 0.
std::string display_time(Micros t);

// Milliseconds as the scripts read them from data-* attributes ("1700000000123").
std::string millis(Micros t);

// "timed out" for timed_out.
std::string state_label(JobState s);
// <span class="badge s-STATE">label</span>
std::string state_badge(JobState s);

// Sets Content-Security-Policy (no script or style without the returned
// nonce, nothing loaded from elsewhere, fetch and EventSource only to this
// origin), X-Content-Type-Options and Referrer-Policy on `r`,
// and returns the nonce: 16 fresh random bytes in base64 for every response.
std::string secure_html_headers(request_rec* r);

}  // namespace deploy
