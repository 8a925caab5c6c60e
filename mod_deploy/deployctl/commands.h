// The subcommands of deployctl, one function each, behind one entry point.
#pragma once

#include "client.h"
#include "options.h"

namespace deploy::ctl {

// Runs the subcommand of `options` (already checked by parse_options)
// against the server of `client`. Returns the exit status (exit_code.h).
int run_command(const Options& options, Client& client);

}  // namespace deploy::ctl
