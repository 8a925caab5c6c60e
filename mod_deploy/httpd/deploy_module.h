// What every httpd-side file of mod_deploy shares: the module record (for
// ap_get_module_config) and module-scoped logging, so that
// `LogLevel deploy:debug` works.
#pragma once

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

extern "C" {
extern module AP_MODULE_DECLARE_DATA deploy_module;
}

APLOG_USE_MODULE(deploy);
