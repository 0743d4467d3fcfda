#!/usr/bin/env bash
# One device session's measurements, in one go (docs/benchmarks.md; issues 13 and 14): run on
# the GPU machine from the repository root with the binaries packed by
# ../shared/tools/device-kit/pack.sh build/bin .device/prs and carried as .device:
#
#   PATH=$PWD/.device/prs/bin:$PATH bash bench/device_session.sh
#
# Writes every figure to $OUT (default ./device-out) as it goes, so a run cut short still
# leaves what it measured. SMALL=1 runs tiny sizes (a check on a machine without a GPU).
set -uo pipefail
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
TORCH_PY=${TORCH_PY:-/opt/torch/.venv/bin/python3}
[ -x "$TORCH_PY" ] || TORCH_PY=/usr/bin/python3
PRS=$(command -v prs)
BIN=$(dirname "$PRS")
if [ "${SMALL:-0}" = 1 ]; then
  IMAGES=64 FILES=2000 BIG=20000 REPEAT=1 PROCS=2
else
  IMAGES=6400 FILES=200000 BIG=1000000 REPEAT=3 PROCS=$(nproc)
fi
run() {  # name, command...: output to $OUT/name.txt, with the time it took
  local name=$1; shift
  echo "== $name: $*" | tee -a "$OUT/summary.txt"
  local t0=$SECONDS
  "$@" >"$OUT/$name.txt" 2>&1
  echo "   rc=$? in $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
  tail -12 "$OUT/$name.txt" >>"$OUT/summary.txt"
}
{ nproc; nvidia-smi -L; "$TORCH_PY" -c "import torch; print(torch.__version__, torch.cuda.is_available())"; } \
  >"$OUT/machine.txt" 2>&1
# Issue 14: the GPU example against a loop and Pool(4), 1/2/4/8 processes on one GPU.
run images_gpu "$TORCH_PY" bench/images_gpu.py --count "$IMAGES" --repeat "$REPEAT" \
  --python "$TORCH_PY" --prs "$PRS"
# Issue 13: prs run against Pool(N) on every core, and the master alone.
run run_vs_loop_200k /usr/bin/python3 bench/run_vs_loop.py --files "$FILES" --processes "$PROCS" \
  --repeat "$REPEAT" --prs "$PRS" --cluster 4
run run_vs_loop_1m /usr/bin/python3 bench/run_vs_loop.py --files "$BIG" --mini-batch-size 100 \
  --processes "$PROCS" --repeat "$REPEAT" --prs "$PRS" --cluster 4
run master_bench "$BIN/prs_master_bench" --files "$FILES" --agents 8 --pull 16 --repeat "$REPEAT"
echo "done; figures in $OUT" | tee -a "$OUT/summary.txt"
