// How every route answers: JSON bodies, SPEC's error objects, plain text.
#pragma once

#include <httpd.h>

#include <string>

#include "chunked_text.h"
#include "request_error.h"
#include "status.h"

namespace deploy {

int send_body(request_rec* r, int status, const char* type, const std::string& body);
int send_body(request_rec* r, int status, const char* type, const ChunkedText& body);
// JSON answers end with a newline.
int send_json(request_rec* r, int status, const std::string& json);
int send_json(request_rec* r, int status, ChunkedText json);
int send_error(request_rec* r, const RequestError& error);
RequestError not_found(std::string what);
// The job table lock could not be had in time, or (kStoreUnavailable) the
// store's database cannot be reached (`why`, which the error log gets at
// level warning): 503 busy or store_unavailable, and a Retry-After header
// set on `r`.
RequestError table_busy(request_rec* r, const Status& why);

}  // namespace deploy
