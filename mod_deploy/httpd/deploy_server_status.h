// mod_deploy's section of mod_status' /server-status, added through its
// optional status hook as mod_md adds its certificates: the jobs waiting,
// queued and running (each running job with its target, progress and stage)
// on the HTML page, and DeployWaiting, DeployQueued, DeployRunning,
// DeployAccepted, DeploySucceeded, DeployFailed lines to ?auto. Without
// mod_status loaded the hook is never called.
#pragma once

namespace deploy {

// In register_hooks.
void register_server_status_hook();

}  // namespace deploy
