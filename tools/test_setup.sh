#!/usr/bin/env bash
# Set-up the test suite needs beyond the venv: the independent peers of the interop tests — an OPC UA
# client (node-opcua, from npm) and a Modbus TCP client (mbpoll, from Debian), and the historian's real
# InfluxDB 1.x server (influxd, from Debian; its tests are skipped with the reason when it is missing).
# Idempotent; each step says what it installs and why.
set -euo pipefail
if ! command -v mbpoll >/dev/null 2>&1; then
  mbpoll_skip="tests/hil/test_interop_mbpoll.py (mbpoll as an independent Modbus TCP client) will be skipped"
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test set-up: installing mbpoll (Debian package, apt-get), the independent Modbus TCP client that" \
      "tests/hil/test_interop_mbpoll.py checks the virtual PLC against"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mbpoll >/dev/null; }; then
      echo "test set-up: apt-get could not install mbpoll; $mbpoll_skip" >&2
    fi
  else
    echo "test set-up: mbpoll not found and not root, so not installed; $mbpoll_skip" \
      "(to run it: sudo apt-get install -y mbpoll)" >&2
  fi
fi
if ! command -v influxd >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test set-up: installing influxd (InfluxDB 1.x, Debian package influxdb, apt-get), the real server the" \
      "historian's InfluxDB tests (tests/twin_server/historian/test_historian_influx.py) start on a free port"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb >/dev/null; }; then
      echo "test set-up: apt-get could not install influxdb; the InfluxDB historian tests will be skipped" >&2
    fi
  else
    echo "test set-up: influxd not found; the InfluxDB historian tests will be skipped" \
      "(install it: sudo apt-get install -y influxdb)" >&2
  fi
fi
cd "$(dirname "$0")/node_interop"
stamp=node_modules/.linetwin-installed
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "test set-up: npm not found; install Node.js (Debian: apt-get install -y nodejs npm)" >&2
    exit 1
  fi
  echo "test set-up: installing node-opcua-client and node-opcua-server (npm ci in tools/node_interop), the" \
    "independent OPC UA client and PLC server of the interop tests (tests/**/test_*node_opcua*.py, *node_peer*)"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
