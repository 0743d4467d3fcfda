#!/usr/bin/python3
"""Throughput of a tabular prs job against pandas.read_csv, on the same CSV, in one run.

Generates a CSV of --size-mb MB (default 1024) in --dir (default a temp folder, removed at
the end unless --keep): columns id, name, city, amount, score, note, where every 10th note is
a quoted field holding a comma, doubled quotes and a newline. Then, on the warm page cache:

  pandas  `pandas.read_csv(FILE)` in one fresh /usr/bin/python3 process (its wall time
          includes interpreter and pandas start-up, like prs's).
  prs     `prs run JOB.yaml` with a trivial run() (returns the DataFrame, summary_only):
          the master plans the file into --mini-batch-size ranges (a worker scans it once
          for record starts), then --processes workers read the ranges with pandas.
          Checked: every record counted once (items_total == items_succeeded == rows).

Prints MB/s (file bytes / wall seconds) of both, the median of --repeat runs each.

    /usr/bin/python3 bench/tabular.py                      # 1 GB, 1MB mini-batches
    /usr/bin/python3 bench/tabular.py --size-mb 256 --mini-batch-size 16MB --repeat 3
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"

ENTRY_SCRIPT = '''\
def run(df):
    return df
'''

JOB_YAML = '''\
name: bench-tabular
entry_script: entry.py
source_directory: {src}
inputs: [{{name: table, type: tabular, path: {data}}}]
output_action: summary_only
mini_batch_size: {size}
process_count_per_node: {procs}
error_threshold: 0
run_invocation_timeout: 600
environment: {{python: {python}}}
'''

CITIES = ["Oslo", "Lyon", "Porto", "Graz", "Turku", "Cork", "Brno", "Gent"]


def generate(path, size_bytes):
    """Writes the CSV; returns its record count."""
    records = 0
    with open(path, "w", newline="") as f:
        f.write("id,name,city,amount,score,note\n")
        chunk = 20000
        while f.tell() < size_bytes:
            lines = []
            for i in range(records, records + chunk):
                note = ('"call back, ask for ""%s""\nthen close"' % CITIES[i % 8]
                        if i % 10 == 0 else "ok")
                lines.append("%d,user%d,%s,%d.%02d,%.4f,%s\n" % (
                    i, i * 7 % 100003, CITIES[i * 3 % 8], i % 9973, i % 100,
                    (i * 2654435761 % 10007) / 10007.0, note))
            f.write("".join(lines))
            records += chunk
    return records


def time_pandas(path):
    code = "import pandas, sys; df = pandas.read_csv(sys.argv[1]); print(len(df))"
    t0 = time.perf_counter()
    r = subprocess.run([PYTHON, "-c", code, path], capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, int(r.stdout)


def time_prs(prs, job_file, state_dir):
    shutil.rmtree(state_dir, ignore_errors=True)
    t0 = time.perf_counter()
    r = subprocess.run([prs, "run", job_file, "--state-dir", state_dir], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit("prs run failed (%d):\n%s" % (r.returncode, r.stderr[-3000:]))
    m = re.search(r"items: (\d+) succeeded, (\d+) failed of (\d+)", r.stderr + r.stdout)
    if not m:
        sys.exit("no item counts in prs run's output:\n" + r.stderr[-3000:])
    ok, failed, total = map(int, m.groups())
    mb = re.search(r"mini-batches: (\d+) processed", r.stderr + r.stdout)
    return wall, ok, failed, total, int(mb.group(1)) if mb else -1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--mini-batch-size", default="1MB")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dir", help="work folder (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--prs", default=os.path.join(REPO, "build", "bin", "prs"))
    args = ap.parse_args()

    work = args.dir or tempfile.mkdtemp(prefix="prs-bench-tabular-")
    os.makedirs(os.path.join(work, "data"), exist_ok=True)
    os.makedirs(os.path.join(work, "src"), exist_ok=True)
    try:
        path = os.path.join(work, "data", "big.csv")
        if not os.path.exists(path) or os.path.getsize(path) < args.size_mb << 20:
            t0 = time.perf_counter()
            records = generate(path, args.size_mb << 20)
            print("generated %s: %.0f MB, %d records in %.1f s" % (
                path, os.path.getsize(path) / 1e6, records, time.perf_counter() - t0))
        size = os.path.getsize(path)
        with open(os.path.join(work, "src", "entry.py"), "w") as f:
            f.write(ENTRY_SCRIPT)
        job_file = os.path.join(work, "job.yaml")
        with open(job_file, "w") as f:
            f.write(JOB_YAML.format(src=os.path.join(work, "src"), data=os.path.join(work, "data"),
                                    size=args.mini_batch_size, procs=args.processes,
                                    python=PYTHON))
        with open(path, "rb") as f:  # warm the page cache for both
            while f.read(1 << 24):
                pass

        pandas_walls, prs_walls = [], []
        for _ in range(args.repeat):
            wall, n = time_pandas(path)
            pandas_walls.append(wall)
            wall, ok, failed, total, batches = time_prs(args.prs, job_file,
                                                        os.path.join(work, "state"))
            if not (ok == total == n and failed == 0):
                sys.exit("prs counted %d ok / %d failed of %d records; pandas read %d" % (
                    ok, failed, total, n))
            prs_walls.append(wall)
        p, q = statistics.median(pandas_walls), statistics.median(prs_walls)
        print(json.dumps({"file_mb": round(size / 1e6, 1), "records": n,
                          "mini_batch_size": args.mini_batch_size, "mini_batches": batches,
                          "processes": args.processes, "repeat": args.repeat}))
        print("%-34s %8s %8s" % ("", "wall s", "MB/s"))
        print("%-34s %8.2f %8.1f" % ("pandas.read_csv, 1 process", p, size / 1e6 / p))
        print("%-34s %8.2f %8.1f" % ("prs run, %d processes" % args.processes, q,
                                     size / 1e6 / q))
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
