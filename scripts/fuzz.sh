#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang, ASan and UBSan into
# ./build-fuzz (override with BUILD_DIR) and runs each for SECONDS (default 60)
# on a scratch copy of its seed corpus, so fuzz/corpus/ is left as it is.
# Prints, per target, the runs, the coverage (cov: edges, ft: features) and any
# crash (the artifact's path); exits 1 if any target crashed.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 300 frame_fuzzer
#
# JOBS sets the build's parallelism (default 2). See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
all_targets=(job_file_fuzzer frame_fuzzer snapshot_fuzzer log_path_fuzzer
             tabular_descriptor_fuzzer)

seconds=${1:-60}
if [[ ! "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS] [TARGET...]; SECONDS is a whole number of seconds per target" >&2
  exit 2
fi
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=("${all_targets[@]}"); fi
for t in "${targets[@]}"; do
  if [[ ! -d fuzz/corpus/$t ]]; then
    echo "unknown target '$t'; the targets are: ${all_targets[*]}" >&2
    exit 2
  fi
done
if ! command -v clang++ >/dev/null; then
  echo "clang++ not found: libFuzzer needs clang (apt-get install clang)" >&2
  exit 2
fi

build_dir=${BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPRS_FUZZ=ON -DPRS_BUILD_TESTS=OFF >/dev/null
cmake --build "$build_dir" -j "${JOBS:-2}" --target "${targets[@]}"

build_dir_abs=$(cd "$build_dir" && pwd)
runs_dir=$build_dir_abs/fuzz-runs
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
crashed=0
summary=()
for t in "${targets[@]}"; do
  work=$runs_dir/$t
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -r "fuzz/corpus/$t/." "$work/corpus/"
  echo "== $t: ${seconds}s, log in $work/log"
  # libFuzzer writes new inputs into the first folder; the scratch folder
  # is that one. -timeout: one input running 30 s is a hang, reported.
  rc=0
  (cd "$work" && "$build_dir_abs/fuzz/$t" -max_total_time="$seconds" -timeout=30 \
      -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1) \
    || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$work/log" | tail -n 1 || true)
  corpus=$(find "$work/corpus" -type f | wc -l)
  artifacts=$(find "$work/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' \
    -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  if [[ $rc -ne 0 || -n "$artifacts" ]]; then
    crashed=1
    result="CRASH (exit $rc) ${artifacts:-no artifact; see the log}"
    grep -m 5 -E 'ERROR: |runtime error|fuzz check failed|Test unit written' "$work/log" || true
  else
    result="no crash"
  fi
  line="$t: ${seconds}s, runs ${runs:-?}, ${cov:-cov: ? ft: ?}, corpus $corpus, $result"
  echo "$line"
  summary+=("$line")
done

echo
echo "== summary ($(date -u +%Y-%m-%dT%H:%MZ), $seconds s per target)"
printf '%s\n' "${summary[@]}"
exit "$crashed"
