#include "deploy_response.h"

#include <httpd.h>
#include <http_log.h>
#include <apr_tables.h>
#include <http_protocol.h>

#include "deploy_module.h"
#include "job_json.h"
#include "job_store.h"

namespace deploy {

RequestError not_found(std::string what) {
  return RequestError{HTTP_NOT_FOUND, "not_found", std::move(what)};
}

RequestError table_busy(request_rec* r, const Status& why) {
  ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "mod_deploy: %s", why.message().c_str());
  apr_table_setn(r->headers_out, "Retry-After", "5");
  if (why.code() == kStoreUnavailable)
    return RequestError{HTTP_SERVICE_UNAVAILABLE, kStoreUnavailable,
                        "the job store cannot be reached; try again later"};
  return RequestError{HTTP_SERVICE_UNAVAILABLE, "busy", "the job table is busy; try again later"};
}

namespace {

void set_body_headers(request_rec* r, int status, const char* type, size_t size) {
  r->status = status;
  ap_set_content_type(r, type);
  apr_table_setn(r->headers_out, "Cache-Control", "no-store");
  ap_set_content_length(r, apr_off_t(size));
}

}  // namespace

int send_body(request_rec* r, int status, const char* type, const std::string& body) {
  set_body_headers(r, status, type, body.size());
  if (!r->header_only) ap_rwrite(body.data(), int(body.size()), r);
  return OK;
}

int send_body(request_rec* r, int status, const char* type, const ChunkedText& body) {
  set_body_headers(r, status, type, body.size());
  if (r->header_only) return OK;
  // One brigade of all the pieces: the core output filter writes them with
  // one writev, where a write per piece would make a send per piece.
  apr_bucket_alloc_t* alloc = r->connection->bucket_alloc;
  apr_bucket_brigade* bb = apr_brigade_create(r->pool, alloc);
  for (const std::string& piece : body.pieces())
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(piece.data(), piece.size(), alloc));
  APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(alloc));
  ap_pass_brigade(r->output_filters, bb);
  return OK;
}

int send_json(request_rec* r, int status, const std::string& json) {
  return send_body(r, status, "application/json", json + "\n");
}

int send_json(request_rec* r, int status, ChunkedText json) {
  json += "\n";
  return send_body(r, status, "application/json", json);
}

int send_error(request_rec* r, const RequestError& e) {
  ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "mod_deploy: %d %s: %s", e.status, e.code.c_str(),
                e.message.c_str());
  // A refused body is not read: tell the client the connection ends.
  if (e.status == HTTP_REQUEST_ENTITY_TOO_LARGE) r->connection->keepalive = AP_CONN_CLOSE;
  // Every 503 is passing (a full queue, a busy table, too many streams):
  // say when to come back, unless the route said it already.
  if (e.status == HTTP_SERVICE_UNAVAILABLE && !apr_table_get(r->headers_out, "Retry-After"))
    apr_table_setn(r->headers_out, "Retry-After", "5");
  return send_json(r, e.status, error_json(e));
}

}  // namespace deploy
