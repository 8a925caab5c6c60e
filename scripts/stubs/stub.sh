# Shared by the stubs of scripts/stubs (sourced, not run). The stubs stand in
# for govc, ansible-playbook and ssh so that scripts/example-deploy can run
# its whole pipeline on any machine: they print what the real tools print,
# take about as long as DEPLOY_STUB_PACE says, and fail on request.
#
#   DEPLOY_STUB_PACE   factor of every simulated duration (default 1; 0.2 is
#                      five times faster)
#   DEPLOY_STUB_FAIL   the step to fail: create, provision, network, reboot,
#                      boot (the VM never answers), ssh, playbooks, or the file
#                      name of one playbook (app.yml)
#   DEPLOY_STUB_STATE  directory where the simulated VMs live (their SSH port
#                      and pid); example-deploy creates one per job

stub_name=$(basename "$0")

stub_state_dir() {
  local dir=${DEPLOY_STUB_STATE:-${TMPDIR:-/tmp}/deploy-stubs-$(id -u)}
  mkdir -p "$dir" || exit 1
  echo "$dir"
}

# stub_ms MS: MS scaled by DEPLOY_STUB_PACE.
stub_ms() {
  local pace=${DEPLOY_STUB_PACE:-1}
  if ! [[ $pace =~ ^([0-9]{1,3})(\.([0-9]{1,3}))?$ ]]; then
    echo "$stub_name (stub): DEPLOY_STUB_PACE must be a number such as 0.5, not '$pace'" >&2
    exit 2
  fi
  local fraction=${BASH_REMATCH[3]}000
  echo $(($1 * (10#${BASH_REMATCH[1]} * 1000 + 10#${fraction:0:3}) / 1000))
}

# stub_seconds MS: MS scaled by DEPLOY_STUB_PACE, as seconds for sleep.
stub_seconds() {
  local ms
  ms=$(stub_ms "$1") || exit 2
  printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# stub_work MS: simulated work.
stub_work() {
  sleep "$(stub_seconds "$1")"
}

# stub_fails STEP...: true when DEPLOY_STUB_FAIL names one of the steps.
stub_fails() {
  local step
  for step in "$@"; do
    [ "${DEPLOY_STUB_FAIL:-}" = "$step" ] && return 0
  done
  return 1
}

stub_timestamp() {
  printf '[%(%d-%m-%y %H:%M:%S)T]' -1
}
