#!/usr/bin/env bash
# Installs the Debian 12 packages prs needs to build and run the examples;
# with --tests also what only the tests need (Prometheus, Chromium and its
# WebDriver, Node.js and npm). Safe to run again: apt-get skips what is
# already installed.
set -euo pipefail
tests=false
[ "${1:-}" = "--tests" ] && tests=true

packages=(
  build-essential cmake ccache pkg-config git clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libyaml-cpp-dev catch2 libsqlite3-dev libcli11-dev libssl-dev
  python3 python3-numpy python3-pandas python3-pytest python3-sklearn python3-pil python3-yaml
  python3-grpcio python3-venv
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# What only the tests use: Prometheus, which scrapes the master's /metrics
# (test_metrics.py), and Chromium with its WebDriver for the dashboard
# (test_dashboard.py).
if $tests; then
  for p in prometheus chromium chromium-driver python3-selenium; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
# Node.js and npm for the test of the API from another language
# (tests/integration/test_node_client.py): Debian's, unless a node and npm
# are there already (e.g. from NodeSource, whose nodejs holds npm).
if $tests && { ! command -v node >/dev/null || ! command -v npm >/dev/null; }; then
  for p in nodejs npm; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
