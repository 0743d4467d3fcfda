#!/usr/bin/env bash
# Times `prs run examples/digits/job.yaml` end to end, REPEAT times (default 3),
# each with a fresh output folder and --state-dir under a temp folder, and
# checks each output holds 1,797 lines (one per image, each image once).
#
#   bench/digits.sh [REPEAT]        # PRS=path/to/prs to use another binary
#
# Runs examples/digits/prep.py first if its data or model is missing.
set -euo pipefail

repeat=${1:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
prs=${PRS:-$repo/build/bin/prs}
job=$repo/examples/digits/job.yaml
expected=1797

if [[ ! -f $repo/examples/digits/scripts/model.pkl || ! -d $repo/examples/digits/data/digits ]]; then
  (cd "$repo/examples/digits" && /usr/bin/python3 prep.py)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prs-bench-digits-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "machine: $(nproc) cores, kernel $(uname -r); $(uptime | sed 's/^ *//')"
walls=()
for ((i = 1; i <= repeat; i++)); do
  out=$tmp/out-$i
  t0=$(date +%s.%N)
  "$prs" run "$job" --set "output=$out" --state-dir "$tmp/state-$i" >"$tmp/stdout-$i" 2>"$tmp/stderr-$i" || {
    cat "$tmp/stderr-$i" >&2
    echo "digits: prs run failed (run $i)" >&2
    exit 1
  }
  t1=$(date +%s.%N)
  wall=$(echo "$t1 - $t0" | bc -l)
  rows=$out/parallel_run_step.txt
  lines=$(wc -l <"$rows")
  distinct=$(cut -d: -f1 "$rows" | sort -u | wc -l)
  if [[ $lines -ne $expected || $distinct -ne $expected ]]; then
    echo "digits: run $i: $lines lines, $distinct distinct images; expected $expected" >&2
    exit 1
  fi
  summary=$(grep -E 'run time' "$tmp/stderr-$i" | sed 's/^ *//' || true)
  printf 'run %d: wall %.2f s, %d lines OK (prs says: %s)\n' "$i" "$wall" "$lines" "$summary"
  walls+=("$wall")
done
median=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
printf 'digits: %d images, median wall %.2f s over %d runs (%.0f images/s); command:\n' \
  "$expected" "$median" "$repeat" "$(echo "$expected / $median" | bc -l)"
echo "  $prs run $job --set output=OUT --state-dir STATE"
