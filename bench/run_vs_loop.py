#!/usr/bin/python3
"""prs run versus multiprocessing.Pool and a plain Python loop over the same tiny files.

Creates --files tiny files and a trivial entry script in a temp folder, then
times, --repeat times each:

  prs   `prs run JOB.yaml --state-dir FRESH` with process_count_per_node
        --processes, mini_batch_size --mini-batch-size, output_action
        append_row, environment.python /usr/bin/python3; the output must
        hold one line per input file, each input exactly once.
  loop  a fresh `/usr/bin/python3` process (this file with --loop-child) that
        lists the folder (sorted by name, as prs does), imports the same entry
        script, calls init() once, then run() on the same mini-batches in the
        same order, and writes the returned lines to a file; checked the same
        way. Its wall time includes interpreter start-up, like prs's.
  pool  the same in a fresh process with multiprocessing.Pool(--processes):
        each worker imports the script and calls init() once (the pool's
        initializer), then imap() runs the same mini-batches, in order, one
        per task; the lines are written and checked the same way.
  dask  with --dask: the same in a fresh process with Dask's LocalCluster
        (--processes single-threaded worker processes; Debian's
        python3-distributed): init() once per worker at its first
        mini-batch, client.map() over the same mini-batches, results written
        in order; its wall time includes starting the cluster, as prs's
        includes starting its master.

  cluster with --cluster N: a prs-master and N prs-agents (processes / N
        workers each) started first, untimed; then `prs submit --wait` of
        the same job (node_count N) is timed: the real gRPC path between
        master and agents. Daemons are stopped after each run.

Prints a table with the median of each figure, and the time to the first
row in the output file for prs, Pool and Dask (polled every millisecond; the
Pool and Dask children flush after their first mini-batch). The overhead per mini-batch is
(prs_wall - loop_wall / processes) / mini_batches: what prs adds per
mini-batch over an ideal split of the loop's work across the processes.

    /usr/bin/python3 bench/run_vs_loop.py                  # 20,000 files, 1 repeat
    /usr/bin/python3 bench/run_vs_loop.py --files 2000 --repeat 3
    /usr/bin/python3 bench/run_vs_loop.py --files 20000 --dask   # Dask too
"""

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

ENTRY_SCRIPT = '''\
# Trivial entry script for bench/run_vs_loop.py: one line per file,
# "<basename> <content>".
import os


def init():
    global g_ready
    g_ready = True


def run(mini_batch):
    out = []
    for path in mini_batch:
        with open(path) as f:
            out.append("%s %s" % (os.path.basename(path), f.read().strip()))
    return out
'''

JOB_YAML = '''\
name: bench-run-vs-loop
entry_script: entry.py
source_directory: ./src
inputs:
  - name: files
    type: file
    path: ./data
output: ./out
output_action: append_row
append_row_file_name: rows.txt
mini_batch_size: 10
error_threshold: 0
node_count: 1
process_count_per_node: 2
run_invocation_timeout: 60
run_max_try: 3
environment:
  python: /usr/bin/python3
'''


def make_dataset(root, n):
    data = os.path.join(root, "data")
    src = os.path.join(root, "src")
    os.makedirs(data)
    os.makedirs(src)
    width = max(6, len(str(n - 1)))
    for i in range(n):
        with open(os.path.join(data, "f%0*d.txt" % (width, i)), "w") as f:
            f.write("%d\n" % i)
    with open(os.path.join(src, "entry.py"), "w") as f:
        f.write(ENTRY_SCRIPT)
    with open(os.path.join(root, "job.yaml"), "w") as f:
        f.write(JOB_YAML)
    return data, width


def check_rows(path, n, width):
    """One line per input, each input once, with its content."""
    with open(path) as f:
        lines = f.read().splitlines()
    if len(lines) != n:
        raise SystemExit("%s: %d lines, expected %d" % (path, len(lines), n))
    seen = set()
    for line in lines:
        name, _, content = line.partition(" ")
        seen.add(name)
        if name != "f%0*d.txt" % (width, int(content)):
            raise SystemExit("%s: bad line %r" % (path, line))
    if len(seen) != n:
        raise SystemExit("%s: %d distinct inputs in %d lines" % (path, len(seen), n))


def output_path(proc, expected):
    """The rows file: prs run's last stdout line, else the summary's "output:" line.

    (Builds before commit 8d616db printed nothing on stdout: RunLocal asked
    the master for the output file after shutting it down.)
    """
    lines = proc.stdout.strip().splitlines()
    if lines:
        return lines[-1]
    for line in proc.stderr.splitlines():
        line = line.strip()
        if line.startswith("output: "):
            return line[len("output: "):].rsplit(" (", 1)[0]
    return expected


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def seconds(value):
    return "n/a" if value is None else "%.2f" % value


class FirstRow:
    """Times when `path` first holds a byte, polling every millisecond from start()."""

    def __init__(self, path):
        self.path = path
        self.seconds = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self):
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            try:
                if os.stat(self.path).st_size > 0:
                    self.seconds = time.perf_counter() - self._t0
                    return
            except OSError:
                pass
            time.sleep(0.001)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.seconds


def run_timed(cmd, first_row_file, what, env=None):
    """Runs `cmd`; returns its wall time, when `first_row_file` first held a byte (or None) and
    its stdout. Exits naming `what` when it fails."""
    first = FirstRow(first_row_file).start()
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - t0
    first_row = first.stop()
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit("%s failed (exit %d): %s" % (what, p.returncode, " ".join(cmd)))
    return wall, first_row, p


def time_prs(args, root, run_no, width):
    state = os.path.join(root, "state-%d" % run_no)
    out = os.path.join(root, "out-prs-%d" % run_no)
    for old in (state, out):  # left by a --keep run of a --reuse'd folder
        shutil.rmtree(old, ignore_errors=True)
    cmd = [args.prs, "run", os.path.join(root, "job.yaml"),
           "--set", "process_count_per_node=%d" % args.processes,
           "--set", "mini_batch_size=%d" % args.mini_batch_size,
           "--set", "environment.python=/usr/bin/python3",
           "--set", "output_action=append_row",
           "--set", "output=%s" % out,
           "--state-dir", state]
    if args.durability:
        cmd += ["--durability", args.durability]
    wall, first_row, p = run_timed(cmd, os.path.join(out, "rows.txt"), "prs run")
    rows = output_path(p, os.path.join(out, "rows.txt"))
    check_rows(rows, args.files, width)
    if not args.keep:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    return wall, first_row, cmd


def wait_for(what, predicate, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise SystemExit("timed out waiting for " + what)


def time_cluster(args, root, run_no, width):
    """prs-master and --cluster prs-agents started (not timed), then `prs submit --wait` timed."""
    base = os.path.join(root, "cluster-%d" % run_no)
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    bins = os.path.dirname(args.prs)
    procs = []
    try:
        port_file = os.path.join(base, "master.port")
        procs.append(subprocess.Popen(
            [os.path.join(bins, "prs-master"), "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--state-dir", os.path.join(base, "master-state"), "--log-level", "warn"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(base, "master.log"), "w")))
        wait_for("the master's port", lambda: os.path.exists(port_file)
                 and open(port_file).read().strip().isdigit())
        address = "127.0.0.1:" + open(port_file).read().strip()
        logs = []
        for i in range(args.cluster):
            log = os.path.join(base, "agent-%d.log" % i)
            logs.append(log)
            procs.append(subprocess.Popen(
                [os.path.join(bins, "prs-agent"), "--master", address, "--work-dir",
                 os.path.join(base, "agent-%d" % i), "--node-id", "node-%d" % i],
                stdout=subprocess.DEVNULL, stderr=open(log, "w")))
        wait_for("the agents to register",
                 lambda: all("registered agent=" in open(log).read() for log in logs))
        out = os.path.join(base, "out")
        cmd = [args.prs, "submit", os.path.join(root, "job.yaml"), "--wait",
               "--set", "node_count=%d" % args.cluster,
               "--set", "process_count_per_node=%d" % max(1, args.processes // args.cluster),
               "--set", "mini_batch_size=%d" % args.mini_batch_size,
               "--set", "environment.python=/usr/bin/python3",
               "--set", "output_action=append_row", "--set", "output=%s" % out]
        wall, first_row, _ = run_timed(cmd, os.path.join(out, "rows.txt"), "prs submit --wait",
                                       env=dict(os.environ, PRS_MASTER=address))
        check_rows(os.path.join(out, "rows.txt"), args.files, width)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return wall, first_row


def time_loop(args, root, run_no, width):
    out = os.path.join(root, "out-loop-%d.txt" % run_no)
    cmd = ["/usr/bin/python3", os.path.abspath(__file__), "--loop-child",
           "--mini-batch-size", str(args.mini_batch_size), "--root", root, "--out", out]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit("loop failed (exit %d)" % p.returncode)
    inner = json.loads(p.stdout)
    check_rows(out, args.files, width)
    if not args.keep:
        os.remove(out)
    return wall, inner


def time_child(args, root, run_no, width, side):
    """Pool or Dask in a fresh process (this file with --pool-child or --dask-child)."""
    out = os.path.join(root, "out-%s-%d.txt" % (side, run_no))
    cmd = ["/usr/bin/python3", os.path.abspath(__file__), "--%s-child" % side,
           "--mini-batch-size", str(args.mini_batch_size), "--processes", str(args.processes),
           "--root", root, "--out", out]
    if os.path.exists(out):  # left by a --keep run of a --reuse'd folder
        os.remove(out)
    wall, first_row, _ = run_timed(cmd, out, side)
    check_rows(out, args.files, width)
    if not args.keep:
        os.remove(out)
    return wall, first_row


def _dask_run(batch, root):
    """One mini-batch on a Dask worker; the entry script is loaded and init() called once per
    worker process, at its first mini-batch."""
    entry = sys.modules.get("prs_bench_entry")
    if entry is None:
        spec = importlib.util.spec_from_file_location("prs_bench_entry",
                                                      os.path.join(root, "src", "entry.py"))
        entry = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(entry)
        sys.modules["prs_bench_entry"] = entry
        entry.init()
    return "".join(line + "\n" for line in entry.run(batch))


def dask_child(args):
    """Dask's LocalCluster (one single-threaded worker process per --processes), the same
    mini-batches mapped in order, results written in order."""
    from dask.distributed import Client, LocalCluster
    data = os.path.join(args.root, "data")
    with os.scandir(data) as it:
        paths = sorted(e.path for e in it if e.is_file())
    n = args.mini_batch_size
    batches = [paths[i:i + n] for i in range(0, len(paths), n)]
    with LocalCluster(n_workers=args.processes, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client, \
            open(args.out, "w") as f:
        futures = client.map(_dask_run, batches, root=args.root, pure=False)
        for i, fut in enumerate(futures):
            f.write(fut.result())
            if i == 0:
                f.flush()  # the first row is timed


def load_entry(root):
    spec = importlib.util.spec_from_file_location("entry", os.path.join(root, "src", "entry.py"))
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    return entry


_pool_entry = None


def _pool_init(root):
    global _pool_entry
    _pool_entry = load_entry(root)
    _pool_entry.init()


def _pool_run(batch):
    return "".join(line + "\n" for line in _pool_entry.run(batch))


def pool_child(args):
    """multiprocessing.Pool over the same mini-batches: init once per worker, imap in order."""
    import multiprocessing
    data = os.path.join(args.root, "data")
    with os.scandir(data) as it:
        paths = sorted(e.path for e in it if e.is_file())
    n = args.mini_batch_size
    batches = [paths[i:i + n] for i in range(0, len(paths), n)]
    with multiprocessing.Pool(args.processes, initializer=_pool_init,
                              initargs=(args.root,)) as pool, open(args.out, "w") as f:
        for i, text in enumerate(pool.imap(_pool_run, batches)):
            f.write(text)
            if i == 0:
                f.flush()  # the first row is timed


def loop_child(args):
    """The baseline, in its own process: list, import, init once, run per batch."""
    t0 = time.perf_counter()
    data = os.path.join(args.root, "data")
    with os.scandir(data) as it:
        paths = sorted(e.path for e in it if e.is_file())
    spec = importlib.util.spec_from_file_location("entry", os.path.join(args.root, "src", "entry.py"))
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    entry.init()
    n = args.mini_batch_size
    batches = 0
    with open(args.out, "w") as f:
        for i in range(0, len(paths), n):
            f.write("".join(line + "\n" for line in entry.run(paths[i:i + n])))
            batches += 1
    json.dump({"in_process_s": time.perf_counter() - t0, "mini_batches": batches}, sys.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20000, help="number of input files (20000)")
    ap.add_argument("--mini-batch-size", type=int, default=10, help="files per mini-batch (10)")
    ap.add_argument("--processes", type=int, default=2, help="process_count_per_node (2)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; medians are shown (1)")
    ap.add_argument("--prs", default=os.path.join(REPO, "build", "bin", "prs"), help="prs binary")
    ap.add_argument("--durability", choices=("process", "machine"), default=None,
                    help="prs run --durability (default: prs's own default, process)")
    ap.add_argument("--tmp", default=None, help="parent of the temp folder (default $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder and outputs")
    ap.add_argument("--reuse", default=None,
                    help="a folder an earlier --keep run made with the same --files: its data "
                         "is used as it is (a million files take minutes to make)")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    ap.add_argument("--loop-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pool-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dask-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dask", action="store_true",
                    help="also time Dask's LocalCluster (Debian python3-distributed)")
    ap.add_argument("--cluster", type=int, default=0,
                    help="also time `prs submit --wait` on a prs-master with this many "
                         "prs-agents of processes/N workers each (daemons started untimed)")
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.loop_child:
        return loop_child(args)
    if args.pool_child:
        return pool_child(args)
    if args.dask_child:
        return dask_child(args)

    if args.reuse:
        root = os.path.abspath(args.reuse)
        width = max(6, len(str(args.files - 1)))
        if not os.path.isfile(os.path.join(root, "data", "f%0*d.txt" % (width, args.files - 1))):
            raise SystemExit("--reuse %s: no data/ of %d files there" % (root, args.files))
    else:
        root = tempfile.mkdtemp(prefix="prs-bench-", dir=args.tmp)
    try:
        t0 = time.perf_counter()
        if not args.reuse:
            _, width = make_dataset(root, args.files)
            sys.stderr.write("made %d files in %s (%.1f s)\n"
                             % (args.files, root, time.perf_counter() - t0))
        mini_batches = -(-args.files // args.mini_batch_size)
        prs_walls, loop_walls, loop_inner, pool_walls = [], [], [], []
        prs_firsts, pool_firsts = [], []
        dask_walls, dask_firsts = [], []
        cluster_walls, cluster_firsts = [], []
        sides = (("prs", "pool", "loop") + (("dask",) if args.dask else ())
                 + (("cluster",) if args.cluster else ()))
        for r in range(args.repeat):
            # rotate the order so no side always runs on a warm cache
            order = sides[r % len(sides):] + sides[:r % len(sides)]
            for which in order:
                if which == "prs":
                    wall, first_row, cmd = time_prs(args, root, r, width)
                    prs_walls.append(wall)
                    prs_firsts.append(first_row)
                elif which == "cluster":
                    wall, first_row = time_cluster(args, root, r, width)
                    cluster_walls.append(wall)
                    cluster_firsts.append(first_row)
                elif which == "dask":
                    wall, first_row = time_child(args, root, r, width, "dask")
                    dask_walls.append(wall)
                    dask_firsts.append(first_row)
                elif which == "pool":
                    wall, first_row = time_child(args, root, r, width, "pool")
                    pool_walls.append(wall)
                    pool_firsts.append(first_row)
                else:
                    wall, inner = time_loop(args, root, r, width)
                    loop_walls.append(wall)
                    loop_inner.append(inner["in_process_s"])
                    assert inner["mini_batches"] == mini_batches
                sys.stderr.write("run %d %-4s %8.2f s\n" % (r + 1, which, wall))
        prs = statistics.median(prs_walls)
        loop = statistics.median(loop_walls)
        inner = statistics.median(loop_inner)
        pool = statistics.median(pool_walls)
        overhead_ms = (prs - loop / args.processes) / mini_batches * 1000.0
        rows = [
            ("files", "%d" % args.files),
            ("mini-batch size", "%d" % args.mini_batch_size),
            ("mini-batches", "%d" % mini_batches),
            ("prs processes", "%d" % args.processes),
            ("repeats (median)", "%d" % args.repeat),
            ("prs wall s", "%.2f" % prs),
            ("loop wall s", "%.2f" % loop),
            ("loop in-process s", "%.2f" % inner),
            ("Pool(%d) wall s" % args.processes, "%.2f" % pool),
            ("prs / loop", "%.1fx" % (prs / loop)),
            ("prs / Pool(%d)" % args.processes, "%.2fx" % (prs / pool)),
            ("prs first row s", seconds(median_or_none(prs_firsts))),
            ("Pool(%d) first row s" % args.processes, seconds(median_or_none(pool_firsts))),
            ("prs items/s", "%.0f" % (args.files / prs)),
            ("loop items/s", "%.0f" % (args.files / loop)),
            ("prs overhead ms/mini-batch", "%.2f" % overhead_ms),
        ]
        if args.dask:
            dask = statistics.median(dask_walls)
            rows += [
                ("Dask wall s", "%.2f" % dask),
                ("Dask first row s", seconds(median_or_none(dask_firsts))),
                ("Dask / prs", "%.1fx" % (dask / prs)),
            ]
        if args.cluster:
            cl = statistics.median(cluster_walls)
            rows += [
                ("cluster (%d agents) wall s" % args.cluster, "%.2f" % cl),
                ("cluster first row s", seconds(median_or_none(cluster_firsts))),
                ("cluster / Pool(%d)" % args.processes, "%.2fx" % (cl / pool)),
            ]
        w = max(len(k) for k, _ in rows)
        print("prs run vs multiprocessing.Pool vs plain loop  (%s)" % " ".join(cmd))
        for k, v in rows:
            print("  %-*s  %s" % (w, k, v))
        if args.repeat > 1:
            print("  prs walls:  " + ", ".join("%.2f" % x for x in prs_walls))
            print("  loop walls: " + ", ".join("%.2f" % x for x in loop_walls))
            print("  pool walls: " + ", ".join("%.2f" % x for x in pool_walls))
            if args.dask:
                print("  dask walls: " + ", ".join("%.2f" % x for x in dask_walls))
            if args.cluster:
                print("  cluster walls: " + ", ".join("%.2f" % x for x in cluster_walls))
        if args.json:
            print(json.dumps({"files": args.files, "mini_batch_size": args.mini_batch_size,
                              "mini_batches": mini_batches, "processes": args.processes,
                              "prs_walls": prs_walls, "loop_walls": loop_walls,
                              "loop_in_process": loop_inner, "pool_walls": pool_walls,
                              "pool_median": pool, "prs_median": prs,
                              "loop_median": loop, "overhead_ms_per_mini_batch": overhead_ms,
                              "prs_first_rows": prs_firsts, "pool_first_rows": pool_firsts,
                              "dask_walls": dask_walls, "dask_first_rows": dask_firsts,
                              "cluster_walls": cluster_walls,
                              "cluster_first_rows": cluster_firsts}))
    finally:
        if args.keep or args.reuse:  # never delete what was reused
            sys.stderr.write("kept %s\n" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
