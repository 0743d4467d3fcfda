#!/usr/bin/env bash
# Installs the dependencies, builds prs and runs every test: Catch2 unit tests,
# the in-process tier (the master on port 0 inside a test binary), pytest for
# the Python runtime, and integration tests with real processes.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --tests
./scripts/build.sh
/usr/bin/python3 examples/digits/prep.py
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure
