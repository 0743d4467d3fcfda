#!/bin/bash
# test-on-slurm-local.sh -- runs deploy/slurm/prs-job.sbatch for real on the single-machine
# Slurm cluster of slurm-local (start-slurm.sh / stop-slurm.sh), and checks the result.
# Not run by CI: it needs root, network namespaces and Slurm's Debian packages.
#
#   deploy/slurm/test-on-slurm-local.sh            # as root, binaries in build/bin
#
# Env: SLURM_LOCAL (/work/shared/tools/slurm-local), SLURMTEST_DIR (/tmp/slurmtest, the folder
#      the "nodes" share), PRS_BIN (<repo>/build/bin), NODES (3), DEADLINE (120 s per Slurm job).
# If no cluster answers, it starts one (`start-slurm.sh netns $NODES`: each node has its own
# network namespace, so 127.0.0.1 does not reach the master) and stops it at the end; a cluster
# already running is used and left running.
#
# What it checks, on 200 small inputs, mini_batch_size 5, process_count_per_node 2:
#   1. the batch job exits 0; the output has 200 lines, each input exactly once, written by
#      more than one node (the entry script returns "<input> <PRS_NODE_ID>");
#   2. the same again with the same PRS_STATE (a stale master.port must not be used);
#   3. with a prs-agent that cannot start, the batch job fails (exit 1) instead of hanging.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SLURM_LOCAL=${SLURM_LOCAL:-/work/shared/tools/slurm-local}
export SLURMTEST_DIR=${SLURMTEST_DIR:-/tmp/slurmtest}
export SLURM_CONF=$SLURMTEST_DIR/etc/slurm.conf
PRS_BIN=${PRS_BIN:-$REPO/build/bin}
NODES=${NODES:-3}
DEADLINE=${DEADLINE:-120}
SBATCH=$REPO/deploy/slurm/prs-job.sbatch

log() { echo "[test-on-slurm-local] $*"; }
fail() { echo "[test-on-slurm-local] FAIL: $*" >&2; exit 1; }
for b in prs prs-master prs-agent; do [ -x "$PRS_BIN/$b" ] || fail "no $PRS_BIN/$b; build first"; done

STARTED=0
cleanup() {
  if [ "$STARTED" = 1 ]; then log "stopping the cluster"; "$SLURM_LOCAL/stop-slurm.sh" || true; fi
}
trap cleanup EXIT
if [ -f "$SLURM_CONF" ] && scontrol ping 2>/dev/null | grep -q UP; then
  log "using the running cluster ($SLURM_CONF)"
else
  [ "$(id -u)" = 0 ] || fail "no cluster running, and starting one needs root"
  STARTED=1
  "$SLURM_LOCAL/start-slurm.sh" netns "$NODES"
fi

# ---------------------------------------------------------------- the job (on the shared folder)
T=$(mktemp -d "$SLURMTEST_DIR/prs-test.XXXX")
mkdir -p "$T/data" "$T/src" "$T/badbin"
for i in $(seq -w 1 200); do echo "item $i" > "$T/data/in_$i.txt"; done
cat > "$T/src/entry.py" <<'EOF'
import os
import time

def init():
    pass

def run(mini_batch):
    time.sleep(0.2)   # long enough for every node to get some mini-batches
    node = os.environ.get("PRS_NODE_ID")
    return [f"{os.path.basename(p)} {node}" for p in mini_batch]
EOF
cat > "$T/job.yaml" <<'EOF'
name: slurm-local-test
entry_script: entry.py
source_directory: ./src
inputs:
  - name: data
    type: file
    path: ./data
output: ./out
output_action: append_row
append_row_file_name: rows.txt
mini_batch_size: 5
process_count_per_node: 2
run_max_try: 1
environment: {python: /usr/bin/python3}
EOF
ln -s "$PRS_BIN/prs" "$PRS_BIN/prs-master" "$T/badbin/"
printf '#!/bin/sh\necho "prs-agent: deliberately failing" >&2\nexit 1\n' > "$T/badbin/prs-agent"
chmod +x "$T/badbin/prs-agent"

# run_job BIN STATE -> sets JID and RC (the batch script's exit code)
run_job() {
  JID=$(cd "$T" && PRS_BIN=$1 PRS_STATE=$2 sbatch --parsable --nodes="$NODES" \
        --time=00:05:00 "$SBATCH" "$T/job.yaml")
  local end=$((SECONDS + DEADLINE))
  while [ -n "$(squeue -h -j "$JID" 2>/dev/null)" ]; do
    if [ "$SECONDS" -ge "$end" ]; then
      scancel "$JID"; cat "$T/prs-$JID.out" 2>/dev/null || true
      fail "Slurm job $JID still running after ${DEADLINE}s"
    fi
    sleep 0.5
  done
  RC=$(scontrol show job "$JID" | sed -n 's/.* ExitCode=\([0-9]*\):.*/\1/p')
  log "Slurm job $JID: $(scontrol show job "$JID" | grep -o 'JobState=[A-Z]*') exit $RC"
  [ -n "$RC" ] || fail "no exit code for Slurm job $JID"
}

check_output() {
  local out=$T/out/rows.txt
  cat "$T/prs-$JID.out"
  [ "$RC" = 0 ] || fail "the batch script exited $RC"
  [ -f "$out" ] || fail "no output $out"
  local lines uniq nodes
  lines=$(wc -l < "$out")
  uniq=$(awk '{print $1}' "$out" | sort -u | wc -l)
  nodes=$(awk '{print $2}' "$out" | sort -u | wc -l)
  [ "$lines" = 200 ] || fail "$lines output lines, want 200"
  [ "$uniq" = 200 ] || fail "$uniq distinct inputs in the output, want 200"
  diff <(awk '{print $1}' "$out" | sort) <(cd "$T/data" && ls | sort) >/dev/null \
    || fail "the output's inputs are not the input files"
  [ "$nodes" -gt 1 ] || fail "all lines came from one node: $(awk '{print $2}' "$out" | sort -u)"
  log "output OK: 200 lines, each input once, rows per node: $(awk '{print $2}' "$out" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')"
}

log "1. a job on $NODES nodes"
run_job "$PRS_BIN" "$T/state"; check_output
log "2. again, same PRS_STATE"
rm -rf "$T/out"
run_job "$PRS_BIN" "$T/state"; check_output
log "3. agents that cannot start"
run_job "$T/badbin" "$T/state-bad"
cat "$T/prs-$JID.out"
[ "$RC" != 0 ] || fail "the batch script exited 0 without agents"
grep -q "agents' step ended" "$T/prs-$JID.out" || fail "no message about the agents' step"
log "PASS (work folder $T)"
