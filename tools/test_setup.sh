#!/usr/bin/env bash
# Set-up the test suite needs beyond the venv: the independent OPC UA client (node-opcua, from npm) for
# the interop test. Idempotent; reinstalls only when package.json changes.
set -euo pipefail
cd "$(dirname "$0")/node_interop"
stamp=node_modules/.linetwin-installed
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "test set-up: npm not found; install Node.js (Debian: apt-get install -y nodejs npm)" >&2
    exit 1
  fi
  echo "test set-up: installing node-opcua-client for the interop test (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
