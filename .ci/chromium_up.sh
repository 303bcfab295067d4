#!/usr/bin/env bash
# Installs Debian's headless Chromium for the browser tests (tests that render the leaderboard and the
# inspector pages) when it is missing. Debian/Ubuntu only. Idempotent; exit status 0 = /usr/bin/chromium runs.
set -euo pipefail
log() { echo "chromium_up: $*"; }
if command -v chromium >/dev/null && chromium --version >/dev/null 2>&1; then
  log "$(chromium --version)"; exit 0
fi
if [ "$(id -u)" != 0 ]; then log "must run as root to apt-get install chromium"; exit 1; fi
command -v apt-get >/dev/null || { log "no apt-get: install chromium by hand"; exit 1; }
log "installing chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
log "$(chromium --version)"
