// The HTTP side: every route of SetHandler deploy.
#pragma once

#include <httpd.h>

namespace deploy {

int handle_request(request_rec* r);

}  // namespace deploy
