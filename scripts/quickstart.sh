#!/usr/bin/env bash
# Day one: installs the dependencies, builds prs, prepares the digits example and
# runs it with `prs run` (embedded master and agent, no daemon to start).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
/usr/bin/python3 examples/digits/prep.py
./build/bin/prs run examples/digits/job.yaml
