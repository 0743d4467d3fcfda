#!/usr/bin/python3
"""Failover latency of prs: a SIGKILLed agent, and a SIGKILLed + restarted master.

Runs real prs-master / prs-agent processes on loopback, like tests/integration/test_faults.py,
with the master on a fixed port (--listen 127.0.0.1:PORT --port-file F).

(a) agent death. Two agents (process_count_per_node 1, node_count 2), a job of --files inputs,
    mini_batch_size 1, run() sleeps --sleep s per input and writes the time it started the input
    into the row ("<name> <content> <unix time> <node>"). Agent A (node fo-a) is SIGKILLed while
    it holds leases, once `--kill-remaining` x agent_timeout seconds of single-agent work are
    left (so agent B has drained the queue by the time A is declared lost, and the figure is the
    failover itself, not the wait behind B's queue; --kill-at N kills after N committed rows
    instead). Measured, from the kill:
      lost    the time of the "agent lost ... node=fo-a" event in
              <state>/jobs/<job>/logs/sys/master_role.txt (UTC 'YYYY-mm-dd HH:MM:SS.mmm')
      rerun   the earliest Start Time of a RUN_DONE attempt on node fo-b of a mini-batch with an
              AGENT_LOST attempt of node fo-a, in logs/sys/job_report/processed_mini-batches.csv
      row     the time carried by that mini-batch's output row (when run() started the input)
(b) master restart. Same job and agents; the master is SIGKILLed once --master-kill-at rows are
    committed and started again at once on the same port and --state-dir. Measured:
      ready       kill -> the new master's port file is written (polled every 5 ms)
      first start restart command -> the earliest Start Time of a RUN_DONE attempt in the CSV
                  that is later than the restart command
      first done  restart command -> that attempt's start + Elapsed Seconds
      first row   restart command -> when a row whose carried time is later than the restart
                  first shows up in the output file (polled every 5 ms: the commit)

Each configuration of --configs ("HEARTBEAT/AGENT_TIMEOUT" in seconds, default "2/10 0.5/3";
2/10 are prs-master's defaults) runs (a) and (b) --repeat times (default 3). Every job must
SUCCEED and its output must hold every input exactly once (checked). Prints a table of
median [min-max], and with --json the raw figures.

  /usr/bin/python3 bench/failover.py [--repeat 3] [--files 300] [--sleep 0.05] [--json]
"""

import argparse
import collections
import csv
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")

SCRIPT = """\
import os
import time

SLEEP = float(os.environ.get("BENCH_SLEEP", "0.05"))
NODE = os.environ.get("PRS_NODE_ID", "?")


def run(mini_batch):
    rows = []
    for p in mini_batch:
        started = time.time()
        content = open(p).read().strip()
        time.sleep(SLEEP)
        rows.append("%s %s %.6f %s" % (os.path.basename(p), content, started, NODE))
    return rows
"""


class BenchError(Exception):
    pass


# --- processes ---------------------------------------------------------------------------


class Proc:
    """A daemon started by this script, with its output in a file."""

    def __init__(self, name, argv, log_path):
        self.name = name
        self.argv = argv
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "ab")
        self.started_at = time.time()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        return self.log_path.read_text(errors="replace")

    def kill(self):
        """SIGKILL; returns the time just before the signal was sent."""
        t = time.time()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()
        return t

    def stop(self, grace=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._log.close()


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise BenchError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, args, root, hb, timeout):
        self.args = args
        self.root = root
        self.hb = hb
        self.timeout = timeout
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.state_dir = root / "master-state"
        self.procs = []
        self.masters = []
        self.agents = {}

    def start_master(self, retry_for=0.0):
        """Starts prs-master on the fixed port. Returns (proc, command time, ready time): the time
        of the first start command and the time its port file was first seen (5 ms polling).
        While the port is not free yet the start is retried for up to `retry_for` seconds."""
        n = len(self.masters)
        port_file = self.root / ("master-%d.port" % n)
        argv = [str(self.args.bin_dir / "prs-master"), "--listen", self.address,
                "--port-file", str(port_file), "--state-dir", str(self.state_dir),
                "--heartbeat-interval", repr(self.hb), "--agent-timeout", repr(self.timeout)]
        first_command = None
        deadline = time.monotonic() + max(retry_for, 0.0)
        attempts = 0
        while True:
            attempts += 1
            if port_file.exists():
                port_file.unlink()
            p = Proc("prs-master", argv, self.root / ("master-%d.log" % n))
            if first_command is None:
                first_command = p.started_at
            self.procs.append(p)
            while True:
                text = port_file.read_text().strip() if port_file.exists() else ""
                if text.isdigit():
                    ready = time.time()
                    if int(text) != self.port:
                        raise BenchError("master wrote port %s, not %d" % (text, self.port))
                    p.restart_attempts = attempts
                    self.masters.append(p)
                    return p, first_command, ready
                if not p.alive():
                    break
                if time.time() - p.started_at > 30:
                    raise BenchError("prs-master did not write its port file in 30 s:\n" + p.log())
                time.sleep(0.005)
            if time.monotonic() >= deadline:
                raise BenchError("prs-master exited with %s:\n%s" % (p.proc.returncode, p.log()))
            time.sleep(0.02)

    def start_agent(self, node_id):
        work = self.root / ("agent-" + node_id)
        argv = [str(self.args.bin_dir / "prs-agent"), "--master", self.address,
                "--work-dir", str(work), "--node-id", node_id, "--python", PYTHON]
        a = Proc("prs-agent " + node_id, argv, self.root / ("agent-%s.log" % node_id))
        self.procs.append(a)
        self.agents[node_id] = a

        def registered():
            if not a.alive():
                raise BenchError("agent %s exited:\n%s" % (node_id, a.log()))
            return "registered agent=" in a.log()
        wait_for(registered, 30, what="agent %s to register" % node_id)
        return a

    def prs(self, *args, timeout=60):
        env = dict(os.environ, PRS_MASTER=self.address)
        return subprocess.run([str(self.args.bin_dir / "prs"), *map(str, args)], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def submit(self, job_file):
        r = self.prs("submit", job_file)
        if r.returncode != 0:
            raise BenchError("prs submit failed (%d): %s" % (r.returncode, r.stderr))
        return r.stdout.strip()

    def status(self, job_id):
        try:
            r = self.prs("status", job_id, "--output", "json", timeout=20)
        except subprocess.TimeoutExpired:
            return None
        return json.loads(r.stdout) if r.returncode == 0 else None

    def wait_end(self, job_id, timeout=180):
        def ended():
            st = self.status(job_id)
            return st if st is not None and st["state"] in TERMINAL else None
        st = wait_for(ended, timeout, interval=0.25, what="job %s to end" % job_id)
        if st["state"] != "SUCCEEDED":
            raise BenchError("job %s ended %s: %s" % (job_id, st["state"], st.get("reason")))
        return st

    def close(self):
        for p in reversed(self.procs):
            if p.alive():
                p.stop()


# --- job files and logs ------------------------------------------------------------------


def make_job(root, n_files, sleep):
    data = root / "job" / "data"
    src = root / "job" / "src"
    data.mkdir(parents=True)
    src.mkdir(parents=True)
    for i in range(n_files):
        (data / ("%05d.txt" % i)).write_text("%d\n" % i)
    (src / "score.py").write_text(SCRIPT)
    out = root / "job" / "out"
    spec = {
        "name": "failover",
        "entry_script": "score.py",
        "source_directory": str(src),
        "inputs": [{"name": "files", "type": "file", "path": str(data)}],
        "output": str(out),
        "output_action": "append_row",
        "append_row_file_name": "parallel_run_step.txt",
        "mini_batch_size": 1,
        "error_threshold": 0,
        "node_count": 2,
        "process_count_per_node": 1,
        "run_invocation_timeout": 60,
        "run_max_try": 3,
        "logging_level": "INFO",
        "environment": {"python": PYTHON, "variables": {"BENCH_SLEEP": repr(sleep)}},
    }
    job_file = root / "job" / "job.yaml"
    job_file.write_text(json.dumps(spec, indent=1))  # JSON is YAML
    return job_file, out / "parallel_run_step.txt"


def parse_utc(text):
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()


def read_rows(output_file):
    """name -> (content, time, node) for each row; raises if malformed."""
    rows = []
    text = output_file.read_text() if output_file.exists() else ""
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) != 4:
            raise BenchError("malformed row %r in %s" % (line, output_file))
        rows.append((parts[0], parts[1], float(parts[2]), parts[3]))
    return rows


def check_output(output_file, n_files):
    """Every input exactly once with its content, nothing else. Returns name -> (time, node)."""
    rows = read_rows(output_file)
    counts = collections.Counter(r[0] for r in rows)
    expected = {"%05d.txt" % i for i in range(n_files)}
    dups = sorted(n for n, c in counts.items() if c > 1)
    missing = sorted(expected - set(counts))
    extra = sorted(set(counts) - expected)
    bad = [r for r in rows if r[0] in expected and int(r[0][:5]) != int(r[1])]
    if dups or missing or extra or bad or len(rows) != n_files:
        raise BenchError("%s: %d rows for %d inputs; duplicated %r; missing %r; unexpected %r; "
                         "bad content %r" % (output_file, len(rows), n_files, dups[:10],
                                             missing[:10], extra[:10], bad[:5]))
    return {r[0]: (r[2], r[3]) for r in rows}


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return 0


def read_report(state_dir, job_id):
    path = state_dir / "jobs" / job_id / "logs" / "sys" / "job_report" / "processed_mini-batches.csv"
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            out.append({"id": int(r["Mini-batch Id"]), "try": int(r["Try"]), "node": r["Node"],
                        "status": r["Status"],
                        "start": parse_utc(r["Start Time"]) if r["Start Time"] else None,
                        "elapsed": float(r["Elapsed Seconds"] or 0)})
    return out


def role_events(state_dir, job_id):
    path = state_dir / "jobs" / job_id / "logs" / "sys" / "master_role.txt"
    events = []
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split("|", 4)
        if len(parts) == 5:
            events.append((parse_utc(parts[0]), parts[1], parts[4]))
    return events


def check_ids_match_rows(report, rows):
    """Mini-batch id i is input i (sorted listing, ids from 0): the node of every RUN_DONE
    attempt must be the node written in input i's row."""
    for a in report:
        if a["status"] == "RUN_DONE":
            t, node = rows["%05d.txt" % a["id"]]
            if node != a["node"]:
                raise BenchError("mini-batch %d ran on %s by the CSV but its row says %s" %
                                 (a["id"], a["node"], node))


# --- the two measurements ----------------------------------------------------------------


def measure_agent_kill(args, hb, timeout, run_dir):
    c = Cluster(args, run_dir, hb, timeout)
    try:
        job_file, output = make_job(run_dir, args.files, args.sleep)
        c.start_master()
        a = c.start_agent("fo-a")
        c.start_agent("fo-b")
        job_id = c.submit(job_file)
        if args.kill_at is not None:
            kill_at = args.kill_at
        else:
            # Leave about kill_remaining x agent_timeout of work for B alone.
            kill_at = args.files - int(args.kill_remaining * timeout / args.sleep)
        kill_at = max(10, min(kill_at, args.files - 10))
        wait_for(lambda: count_lines(output) >= kill_at, 120, interval=0.01,
                 what="%d committed rows" % kill_at)
        if not a.alive():
            raise BenchError("agent fo-a died by itself")
        rows_at_kill = count_lines(output)
        t_kill = a.kill()
        st = c.wait_end(job_id)
        rows = check_output(output, args.files)
        report = read_report(c.state_dir, job_id)
        check_ids_match_rows(report, rows)
        lost_events = [t for t, level, msg in role_events(c.state_dir, job_id)
                       if msg.startswith("agent lost") and "node=fo-a" in msg and t >= t_kill - 1]
        if not lost_events:
            raise BenchError("no 'agent lost' event of fo-a in master_role.txt")
        t_lost = lost_events[0]
        lost_ids = {x["id"] for x in report if x["status"] == "AGENT_LOST" and x["node"] == "fo-a"}
        if not lost_ids:
            raise BenchError("agent fo-a held no lease when it was killed (no AGENT_LOST attempt)")
        reruns = sorted((x for x in report if x["id"] in lost_ids and x["node"] == "fo-b"
                         and x["status"] == "RUN_DONE"), key=lambda x: x["start"])
        if len(reruns) != len(lost_ids):
            raise BenchError("lost mini-batches %r, re-run on fo-b: %r" % (sorted(lost_ids), reruns))
        first = reruns[0]
        row_time = rows["%05d.txt" % first["id"]][0]
        # Was B still busy with other work when A was declared lost? (then 'rerun' includes the
        # wait behind the queue: a lost mini-batch goes to the back of the queue)
        b_other_end = max((x["start"] + x["elapsed"] for x in report
                           if x["node"] == "fo-b" and x["status"] == "RUN_DONE"
                           and x["id"] not in lost_ids), default=0.0)
        return {
            "kill_at_rows": rows_at_kill,
            "lost_ids": sorted(lost_ids),
            "kill_to_lost": t_lost - t_kill,
            "kill_to_rerun_start": first["start"] - t_kill,
            "kill_to_rerun_row": row_time - t_kill,
            "lost_to_rerun_start": first["start"] - t_lost,
            "b_busy_after_lost": b_other_end > t_lost,
            "retries": st["counts"].get("retries"),
        }
    finally:
        c.close()


def measure_master_restart(args, hb, timeout, run_dir):
    c = Cluster(args, run_dir, hb, timeout)
    try:
        job_file, output = make_job(run_dir, args.files, args.sleep)
        c.start_master()
        c.start_agent("fo-a")
        c.start_agent("fo-b")
        job_id = c.submit(job_file)
        wait_for(lambda: count_lines(output) >= args.master_kill_at, 120, interval=0.01,
                 what="%d committed rows" % args.master_kill_at)
        rows_at_kill = count_lines(output)
        t_kill = c.masters[-1].kill()
        m, t_restart, t_ready = c.start_master(retry_for=30)

        def new_row_seen():
            try:
                rows = read_rows(output)
            except BenchError:
                return None  # a partial line being appended
            return any(r[2] > t_restart for r in rows)
        wait_for(new_row_seen, 120, interval=0.005, what="a row run after the restart")
        t_first_row_seen = time.time()
        st = c.wait_end(job_id)
        rows = check_output(output, args.files)
        report = read_report(c.state_dir, job_id)
        check_ids_match_rows(report, rows)
        after = sorted((x for x in report if x["status"] == "RUN_DONE" and x["start"] is not None
                        and x["start"] > t_restart), key=lambda x: x["start"])
        if not after:
            raise BenchError("no RUN_DONE attempt started after the restart in the CSV")
        first = after[0]
        first_done = min(x["start"] + x["elapsed"] for x in after)
        joined = {}
        for t, level, msg in role_events(c.state_dir, job_id):
            mm = re.match(r"agent joined: .* node=(\S+)", msg)
            if mm and t > t_restart:
                joined.setdefault(mm.group(1), t)
        if sorted(joined) != ["fo-a", "fo-b"]:
            raise BenchError("agents that joined the restarted master: %r" % joined)
        return {
            "kill_at_rows": rows_at_kill,
            "kill_to_restart_cmd": t_restart - t_kill,
            "restart_attempts": m.restart_attempts,
            "kill_to_ready": t_ready - t_kill,
            "restart_to_ready": t_ready - t_restart,
            "restart_to_first_start": first["start"] - t_restart,
            "restart_to_first_done": first_done - t_restart,
            "restart_to_first_row_seen": t_first_row_seen - t_restart,
            "restart_to_first_agent_joined": min(joined.values()) - t_restart,
            "restart_to_all_agents_joined": max(joined.values()) - t_restart,
            "retries": st["counts"].get("retries"),
        }
    finally:
        c.close()


# --- main --------------------------------------------------------------------------------


def summary(values):
    v = sorted(values)
    return statistics.median(v), v[0], v[-1]


def fmt(values):
    med, lo, hi = summary(values)
    return "%.2f s [%.2f-%.2f]" % (med, lo, hi)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="2/10 0.5/3",
                    help="space-separated HEARTBEAT/AGENT_TIMEOUT pairs in seconds")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--sleep", type=float, default=0.05, help="run() seconds per input")
    ap.add_argument("--kill-remaining", type=float, default=0.5,
                    help="kill agent A when about this many agent_timeouts of single-agent work "
                         "are left (default 0.5)")
    ap.add_argument("--kill-at", type=int, default=None,
                    help="kill agent A after this many committed rows instead")
    ap.add_argument("--master-kill-at", type=int, default=100,
                    help="kill the master after this many committed rows (default 100)")
    ap.add_argument("--bin-dir", type=Path, default=SOURCE_DIR / "build" / "bin")
    ap.add_argument("--tmp", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    ap.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    ap.add_argument("--only", choices=("agent", "master"), default=None)
    args = ap.parse_args()

    configs = []
    for c in args.configs.split():
        hb, to = c.split("/")
        configs.append((float(hb), float(to)))
    tmp = Path(tempfile.mkdtemp(prefix="prs-failover-", dir=args.tmp))
    print("temp folder %s; %d files, %.0f ms per file, mini_batch_size 1, 2 agents x 1 process"
          % (tmp, args.files, args.sleep * 1000), flush=True)
    print("load average at start: %.2f %.2f %.2f" % os.getloadavg(), flush=True)
    results = {}
    try:
        for hb, to in configs:
            key = "%g/%g" % (hb, to)
            res = results[key] = {"agent": [], "master": []}
            for i in range(args.repeat):
                if args.only in (None, "agent"):
                    r = measure_agent_kill(args, hb, to, tmp / ("agent-%s-%d" % (key.replace("/", "_"), i)))
                    res["agent"].append(r)
                    print("[hb %g, timeout %g] agent kill %d: after %d rows, lost %s; kill->lost "
                          "%.3f s, kill->rerun %.3f s (row %.3f s), lost->rerun %.3f s%s" % (
                              hb, to, i + 1, r["kill_at_rows"], r["lost_ids"], r["kill_to_lost"],
                              r["kill_to_rerun_start"], r["kill_to_rerun_row"],
                              r["lost_to_rerun_start"],
                              " (B WAS STILL BUSY: includes queue wait)" if r["b_busy_after_lost"]
                              else ""), flush=True)
                if args.only in (None, "master"):
                    r = measure_master_restart(args, hb, to, tmp / ("master-%s-%d" % (key.replace("/", "_"), i)))
                    res["master"].append(r)
                    print("[hb %g, timeout %g] master restart %d: after %d rows; kill->ready %.3f s "
                          "(restart cmd +%.3f s, %d start(s)), restart->first start %.3f s, "
                          "->first done %.3f s, ->first row seen %.3f s" % (
                              hb, to, i + 1, r["kill_at_rows"], r["kill_to_ready"],
                              r["kill_to_restart_cmd"], r["restart_attempts"],
                              r["restart_to_first_start"], r["restart_to_first_done"],
                              r["restart_to_first_row_seen"]), flush=True)
                    print("    agents re-registered %.3f s and %.3f s after the restart command" % (
                        r["restart_to_first_agent_joined"], r["restart_to_all_agents_joined"]),
                        flush=True)
    finally:
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print("load average at end: %.2f %.2f %.2f" % os.getloadavg())
    print()
    print("All outputs: every input exactly once; all jobs SUCCEEDED.")
    print("median [min-max] over %d runs" % args.repeat)
    header = ["figure"] + ["hb %s s / timeout %s s" % tuple(k.split("/")) for k in results]
    lines = []
    figs = [("agent", "kill_to_lost", "(a) agent SIGKILL -> 'agent lost' logged"),
            ("agent", "kill_to_rerun_start", "(a) agent SIGKILL -> lost mini-batch starts on B"),
            ("agent", "kill_to_rerun_row", "(a) agent SIGKILL -> time in that row"),
            ("agent", "lost_to_rerun_start", "(a) 'agent lost' -> lost mini-batch starts on B"),
            ("master", "kill_to_ready", "(b) master SIGKILL -> restarted master ready"),
            ("master", "restart_to_first_start", "(b) restart cmd -> first new RUN_DONE starts"),
            ("master", "restart_to_first_done", "(b) restart cmd -> first new RUN_DONE ends"),
            ("master", "restart_to_first_row_seen", "(b) restart cmd -> its row in the output"),
            ("master", "restart_to_first_agent_joined", "(b) restart cmd -> first agent re-registered"),
            ("master", "restart_to_all_agents_joined", "(b) restart cmd -> both agents re-registered")]
    for kind, name, label in figs:
        cells = [label]
        for k in results:
            vals = [r[name] for r in results[k][kind]]
            cells.append(fmt(vals) if vals else "-")
        lines.append(cells)
    widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]
    for r in [header] + lines:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("failover.py: %s" % e, file=sys.stderr)
        sys.exit(1)
