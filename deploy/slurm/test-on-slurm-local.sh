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
# Everything runs with TLS and bearer tokens: the test makes a CA, the master's certificate (named
# node1..N, this host and the controller's address) and a client certificate with
# deploy/make-certs.sh, and the tokens (agent, submit, read) with deploy/make-token.sh, in its work
# folder.
#
# What it checks, on 200 small inputs, mini_batch_size 5, process_count_per_node 2:
#   1. the batch job (master on node 1 on 0.0.0.0 with TLS and tokens, files found under
#      PRS_CONFIG_DIR) exits 0; the output has 200 lines, each input exactly once, written by
#      more than one node (the entry script returns "<input> <PRS_NODE_ID>");
#   2. the same again with the same PRS_STATE (a stale master.port must not be used), the files
#      named one by one (PRS_MASTER_TLS_CERT, ..., PRS_TOKEN_FILE);
#   3. with a prs-agent that cannot start, the batch job fails (exit 1) instead of hanging;
#   4. with a master certificate that does not name the nodes, or no tokens, the batch job stops
#      at once (exit 2) saying so;
#   5. a long-lived master as the systemd unit runs it, on the controller's non-loopback address
#      with mutual TLS: agents on every node (a Slurm job of agents only) with the agent token and
#      a client certificate; the CLI on this host with a submit token: the job succeeds with each
#      row once. Refused: no token, a wrong token, the agent token for a submit, no client
#      certificate, no CA; another submitter cannot see the job, a reader can; a token removed
#      from the file stops working after SIGHUP, and a new one works.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SLURM_LOCAL=${SLURM_LOCAL:-/work/shared/tools/slurm-local}
export SLURMTEST_DIR=${SLURMTEST_DIR:-/tmp/slurmtest}
export SLURM_CONF=$SLURMTEST_DIR/etc/slurm.conf
PRS_BIN=${PRS_BIN:-$REPO/build/bin}
NODES=${NODES:-3}
DEADLINE=${DEADLINE:-120}
SBATCH=$REPO/deploy/slurm/prs-job.sbatch
MAKE_CERTS=$REPO/deploy/make-certs.sh
MAKE_TOKEN=$REPO/deploy/make-token.sh
# Only what this test sets may reach the programs.
unset PRS_MASTER PRS_TLS_CA PRS_TLS_CERT PRS_TLS_KEY PRS_TOKEN PRS_TOKEN_FILE PRS_CONFIG_DIR \
  PRS_MASTER_TLS_CERT PRS_MASTER_TLS_KEY PRS_TOKENS PRS_AGENT_TOKEN_FILE PRS_INSECURE

log() { echo "[test-on-slurm-local] $*"; }
fail() { echo "[test-on-slurm-local] FAIL: $*" >&2; exit 1; }
for b in prs prs-master prs-agent; do [ -x "$PRS_BIN/$b" ] || fail "no $PRS_BIN/$b; build first"; done

STARTED=0 MASTER_PID='' AGENTS_JID=''
cleanup() {
  [ -z "$AGENTS_JID" ] || scancel "$AGENTS_JID" 2>/dev/null || true
  [ -z "$MASTER_PID" ] || kill "$MASTER_PID" 2>/dev/null || true
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

# ---------------------------------------------------------------- certificates and tokens
# The controller's address: a non-loopback address every node reaches (netns: the bridge's).
if grep -q '^mode netns' "$SLURMTEST_DIR/run/mode" 2>/dev/null; then
  CTL_ADDR=10.77.0.254
else
  CTL_ADDR=$(hostname -I | awk '{print $1}')
fi
SEC=$T/sec   # the default layout under PRS_CONFIG_DIR: tls/, tokens, agent.token, submit.token
mkdir -p "$SEC"
names=()
for i in $(seq 1 "$NODES"); do names+=(--master-name "node$i"); done
"$MAKE_CERTS" "$SEC/tls" "${names[@]}" --master-name "$(hostname)" --master-name "$CTL_ADDR" \
  --client agents --client tester
"$MAKE_TOKEN" node-agents agent "$SEC/tokens" "$SEC/agent.token"
"$MAKE_TOKEN" tester submit "$SEC/tokens" "$SEC/submit.token"
"$MAKE_TOKEN" other submit "$SEC/tokens" "$SEC/other.token"
"$MAKE_TOKEN" reader read "$SEC/tokens" "$SEC/reader.token"
for f in "$SEC/tls/master.key" "$SEC/tls/ca.key" "$SEC/tokens" "$SEC/agent.token"; do
  [ "$(stat -c %a "$f")" = 600 ] || fail "$f is $(stat -c %a "$f"), want 600"
done
"$MAKE_CERTS" "$T/sec-other" --master-name elsewhere.invalid > /dev/null   # names no node

# run_job BIN STATE [VAR=VALUE ...] -> sets JID and RC (the batch script's exit code); the
# VAR=VALUE go to the batch script's environment.
run_job() {
  local bin=$1 state=$2; shift 2
  JID=$(cd "$T" && env PRS_BIN="$bin" PRS_STATE="$state" "$@" sbatch --parsable \
        --nodes="$NODES" --time=00:05:00 "$SBATCH" "$T/job.yaml")
  wait_job "$JID"
}

# wait_job JID -> sets RC once the Slurm job has ended
wait_job() {
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
  cat "$T/prs-$JID.out"
  [ "$RC" = 0 ] || fail "the batch script exited $RC"
  check_rows
}

# check_rows: $T/out/rows.txt holds each input once, from more than one node
check_rows() {
  local out=$T/out/rows.txt
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

# check_identities MASTER_LOG: the job's owner is the submit token's principal, and every agent
# registered with the agent token (not the CLI's PRS_TOKEN_FILE, which reaches it too).
check_identities() {
  grep -q "job submitted .* owner=tester" "$1" || fail "no job owned by tester in $1"
  local n
  n=$(grep -c "agent registered .* identity=node-agents" "$1" || true)
  [ "$n" -ge "$NODES" ] || fail "$n agents registered as node-agents in $1, want $NODES"
  log "owner=tester, $n agents registered as node-agents"
}

log "1. a job on $NODES nodes, TLS and tokens from PRS_CONFIG_DIR"
run_job "$PRS_BIN" "$T/state" PRS_CONFIG_DIR="$SEC"; check_output
check_identities "$T/state/master.log"
log "2. again, same PRS_STATE, each file named"
rm -rf "$T/out"
run_job "$PRS_BIN" "$T/state" PRS_CONFIG_DIR="$T/nothing-here" \
  PRS_MASTER_TLS_CERT="$SEC/tls/master.pem" PRS_MASTER_TLS_KEY="$SEC/tls/master.key" \
  PRS_TOKENS="$SEC/tokens" PRS_TLS_CA="$SEC/tls/ca.pem" \
  PRS_AGENT_TOKEN_FILE="$SEC/agent.token" PRS_TOKEN_FILE="$SEC/submit.token"
check_output
log "3. agents that cannot start"
run_job "$T/badbin" "$T/state-bad" PRS_CONFIG_DIR="$SEC"
cat "$T/prs-$JID.out"
[ "$RC" != 0 ] || fail "the batch script exited 0 without agents"
grep -q "agents' step ended" "$T/prs-$JID.out" || fail "no message about the agents' step"
log "4. a master certificate without the nodes' names; no tokens file"
run_job "$PRS_BIN" "$T/state-bad" PRS_CONFIG_DIR="$SEC" \
  PRS_MASTER_TLS_CERT="$T/sec-other/master.pem" PRS_MASTER_TLS_KEY="$T/sec-other/master.key"
cat "$T/prs-$JID.out"
[ "$RC" = 2 ] || fail "exit $RC with a certificate that names no node, want 2"
grep -q "does not name this node" "$T/prs-$JID.out" || fail "no message about the certificate's names"
run_job "$PRS_BIN" "$T/state-bad" PRS_CONFIG_DIR="$SEC" PRS_TOKENS="$T/no-such-tokens"
cat "$T/prs-$JID.out"
[ "$RC" = 2 ] || fail "exit $RC without a tokens file, want 2"
grep -q "cannot read $T/no-such-tokens" "$T/prs-$JID.out" || fail "no message about the tokens file"

log "5. a long-lived master on $CTL_ADDR (mutual TLS, tokens), agents on every node"
rm -rf "$T/out"
"$PRS_BIN/prs-master" --listen "$CTL_ADDR:0" --port-file "$T/ctl.port" --state-dir "$T/ctl-state" \
  --tls-cert "$SEC/tls/master.pem" --tls-key "$SEC/tls/master.key" --tls-ca "$SEC/tls/ca.pem" \
  --tokens "$SEC/tokens" > "$T/ctl-master.log" 2>&1 &
MASTER_PID=$!
for _ in $(seq 100); do
  [ -s "$T/ctl.port" ] && break
  kill -0 "$MASTER_PID" 2>/dev/null || break
  sleep 0.1
done
[ -s "$T/ctl.port" ] || { cat "$T/ctl-master.log"; fail "the master on $CTL_ADDR did not start"; }
ADDR=$CTL_ADDR:$(cat "$T/ctl.port")
AGENTS_JID=$(cd "$T" && sbatch --parsable --nodes="$NODES" --time=00:05:00 \
  --output="$T/agents-%j.out" --wrap "srun --overlap --nodes=$NODES --ntasks-per-node=1 bash -c \
  '$PRS_BIN/prs-agent --master $ADDR --work-dir $T/ctl-agent-\$SLURMD_NODENAME \
     --node-id \$SLURMD_NODENAME --tls-ca $SEC/tls/ca.pem --token-file $SEC/agent.token \
     --tls-cert $SEC/tls/agents.pem --tls-key $SEC/tls/agents.key \
     > $T/ctl-agent-\$SLURMD_NODENAME.log 2>&1'")
# prs_as TOKEN_NAME ARGS...: the CLI as the tester (client certificate), with that token
prs_as() {
  local token=$1; shift
  PRS_TLS_CA=$SEC/tls/ca.pem PRS_TLS_CERT=$SEC/tls/tester.pem PRS_TLS_KEY=$SEC/tls/tester.key \
    PRS_TOKEN_FILE=${token:+$SEC/$token.token} "$PRS_BIN/prs" --master "$ADDR" "$@"
}
# refused WHY CMD...: CMD must fail; its message is shown
refused() {
  local why=$1 out; shift
  if out=$("$@" 2>&1); then fail "$why: succeeded: $out"; fi
  log "refused as it should be ($why): $(echo "$out" | head -2 | tr '\n' ' ')"
}
# Every agent registered before the job, so that each node gets some of it.
end=$((SECONDS + 30))
until [ "$(prs_as reader nodes 2>/dev/null | grep -c '^node')" = "$NODES" ]; do
  [ "$SECONDS" -lt "$end" ] || { prs_as reader nodes || true; tail -n 5 "$T"/ctl-agent-*.log
                                 fail "not all $NODES agents registered with $ADDR in 30 s"; }
  sleep 0.5
done
log "$NODES agents registered: $(prs_as reader nodes | awk 'NR > 1 {printf "%s ", $1}')"
t0=$SECONDS
prs_as submit submit "$T/job.yaml" --set node_count="$NODES" --wait > "$T/ctl-submit.out" 2> "$T/ctl-submit.err" \
  || { cat "$T/ctl-submit.out" "$T/ctl-submit.err" "$T/ctl-master.log"; tail -n 5 "$T"/ctl-agent-*.log
       fail "the job on $ADDR failed"; }
cat "$T/ctl-submit.out" "$T/ctl-submit.err"
log "job on $ADDR done in $((SECONDS - t0)) s"
check_rows
check_identities "$T/ctl-master.log"
CTL_JOB=$(head -n 1 "$T/ctl-submit.out")
[ -n "$CTL_JOB" ] || fail "prs submit printed no job id"
prs_as submit list | grep -q "^$CTL_JOB " || fail "prs list does not show the tester job $CTL_JOB"
prs_as submit status "$CTL_JOB" > /dev/null || fail "the tester cannot see its own job $CTL_JOB"
prs_as reader status "$CTL_JOB" > /dev/null || fail "a reader cannot see job $CTL_JOB"
refused "another submitter's view of the job" prs_as other status "$CTL_JOB"
if prs_as other list | grep -q "^$CTL_JOB "; then fail "another submitter's prs list shows $CTL_JOB"; fi
refused "no token" prs_as "" list
refused "a made-up token" env PRS_TOKEN="$(openssl rand -hex 32)" PRS_TLS_CA="$SEC/tls/ca.pem" \
  PRS_TLS_CERT="$SEC/tls/tester.pem" PRS_TLS_KEY="$SEC/tls/tester.key" "$PRS_BIN/prs" --master "$ADDR" list
refused "the agent token submits" prs_as agent submit "$T/job.yaml"
refused "no client certificate" env PRS_TLS_CA="$SEC/tls/ca.pem" PRS_TOKEN_FILE="$SEC/submit.token" \
  "$PRS_BIN/prs" --master "$ADDR" list
refused "no CA (plaintext to a TLS port)" env PRS_TOKEN_FILE="$SEC/submit.token" \
  "$PRS_BIN/prs" --master "$ADDR" list
refused "a CA that did not sign the master" env PRS_TLS_CA="$T/sec-other/ca.pem" \
  PRS_TLS_CERT="$SEC/tls/tester.pem" PRS_TLS_KEY="$SEC/tls/tester.key" \
  PRS_TOKEN_FILE="$SEC/submit.token" "$PRS_BIN/prs" --master "$ADDR" list
if getent hosts slurmtest-ctl > /dev/null; then   # netns mode: $CTL_ADDR's name, not in the certificate
  refused "a name the certificate does not hold" env PRS_TLS_CA="$SEC/tls/ca.pem" \
    PRS_TLS_CERT="$SEC/tls/tester.pem" PRS_TLS_KEY="$SEC/tls/tester.key" \
    PRS_TOKEN_FILE="$SEC/submit.token" "$PRS_BIN/prs" --master "slurmtest-ctl:${ADDR##*:}" list
fi
log "reload: the reader's line removed, a new token added, SIGHUP"
grep -v '  reader  ' "$SEC/tokens" > "$SEC/tokens.new" && cat "$SEC/tokens.new" > "$SEC/tokens"
"$MAKE_TOKEN" late read "$SEC/tokens" "$SEC/late.token"
refused "a new token before the reload" prs_as late list
kill -HUP "$MASTER_PID"
sleep 1
kill -0 "$MASTER_PID" 2>/dev/null || { cat "$T/ctl-master.log"; fail "the master died of SIGHUP"; }
prs_as late list > /dev/null || { cat "$T/ctl-master.log"; fail "the new token does not work after SIGHUP"; }
refused "a removed token after the reload" prs_as reader list
scancel "$AGENTS_JID"; AGENTS_JID=''
kill "$MASTER_PID"; wait "$MASTER_PID" || true; MASTER_PID=''
log "PASS (work folder $T)"
