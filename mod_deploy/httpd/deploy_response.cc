#include "deploy_response.h"

#include <httpd.h>
#include <http_log.h>
#include <http_protocol.h>

#include "deploy_module.h"
#include "job_json.h"

namespace deploy {

RequestError not_found(std::string what) {
  return RequestError{HTTP_NOT_FOUND, "not_found", std::move(what)};
}

int send_body(request_rec* r, int status, const char* type, const std::string& body) {
  r->status = status;
  ap_set_content_type(r, type);
  apr_table_setn(r->headers_out, "Cache-Control", "no-store");
  ap_set_content_length(r, apr_off_t(body.size()));
  if (!r->header_only) ap_rwrite(body.data(), int(body.size()), r);
  return OK;
}

int send_json(request_rec* r, int status, const std::string& json) {
  return send_body(r, status, "application/json", json + "\n");
}

int send_error(request_rec* r, const RequestError& e) {
  ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mod_deploy: %d %s: %s", e.status, e.code.c_str(),
                e.message.c_str());
  // A refused body is not read: tell the client the connection ends.
  if (e.status == HTTP_REQUEST_ENTITY_TOO_LARGE) r->connection->keepalive = AP_CONN_CLOSE;
  return send_json(r, e.status, error_json(e));
}

}  // namespace deploy
