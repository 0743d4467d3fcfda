#!/usr/bin/env bash
# Configures and builds prs into ./build (override with BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j "$jobs"

# `import prs.client` from /usr/bin/python3 with no pip and no PYTHONPATH: a
# .pth file in the user's site-packages names the runtime (python/) and the
# stubs the build generated (build/python). PRS_NO_PTH=1 skips it.
if [ -z "${PRS_NO_PTH:-}" ]; then
  site=$(/usr/bin/python3 -c 'import site; print(site.getusersitepackages())')
  root=$(pwd)
  build_abs=$(cd "$build_dir" && pwd)
  if mkdir -p "$site" 2>/dev/null &&
    printf '%s\n%s\n' "$root/python" "$build_abs/python" >"$site/prs.pth" 2>/dev/null; then
    echo "build: /usr/bin/python3 imports prs.client from here ($site/prs.pth)"
  else
    echo "build: cannot write $site/prs.pth; use PYTHONPATH=$root/python:$build_abs/python" >&2
  fi
fi
