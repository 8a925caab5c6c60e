#include "deploy_html.h"

#include <apr_base64.h>
#include <apr_general.h>
#include <apr_strings.h>

#include <algorithm>
#include <stdexcept>

#include "job_json.h"
#include "text.h"

namespace deploy {

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : valid_utf8(text)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string millis(Micros t) { return std::to_string(t / 1000); }

std::string display_time(Micros t) {
  if (t == 0) return "\xE2\x80\x94";  // an em dash
  std::string iso = format_time(t);
  if (iso.size() < 19) return iso;
  return iso.substr(0, 10) + " " + iso.substr(11, 8);
}

std::string state_label(JobState s) {
  std::string label(state_name(s));
  std::replace(label.begin(), label.end(), '_', ' ');
  return label;
}

std::string state_badge(JobState s) {
  return "<span class=\"badge s-" + std::string(state_name(s)) + "\">" + state_label(s) + "</span>";
}

std::string secure_html_headers(request_rec* r) {
  unsigned char bytes[16];
  if (apr_generate_random_bytes(bytes, sizeof bytes) != APR_SUCCESS)
    throw std::runtime_error("no random bytes for the page's script nonce");
  char* encoded =
      static_cast<char*>(apr_palloc(r->pool, size_t(apr_base64_encode_len(sizeof bytes))));
  apr_base64_encode(encoded, reinterpret_cast<const char*>(bytes), sizeof bytes);
  std::string nonce = encoded;
  std::string policy = "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'nonce-" +
                       nonce +
                       "'; img-src data:; connect-src 'self'; form-action 'self'; "
                       "base-uri 'none'; frame-ancestors 'none'";
  apr_table_set(r->headers_out, "Content-Security-Policy", policy.c_str());
  apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
  apr_table_setn(r->headers_out, "Referrer-Policy", "same-origin");
  return nonce;
}

}  // namespace deploy
