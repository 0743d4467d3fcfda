#!/usr/bin/python3
"""The images-gpu example against a plain loop and multiprocessing.Pool, on one GPU node.

Runs examples/images-gpu/scripts/classify.py (a ResNet-50 in fp16 on the GPU, JPEGs decoded on
the CPU; fp32 on the CPU where there is no GPU) over --count JPEGs (made by the example's prep.py
into --data, kept for later runs), --repeat times each, turns rotated:

  loop    one fresh /usr/bin/python3 process: list, init() once, run() on the mini-batches in order
  pool    multiprocessing.Pool(--pool): init() once per worker, imap over the same mini-batches;
          every worker uses the same GPU
  prs-N   `prs run` of the example's job.yaml with process_count_per_node N (each of --processes),
          gpus_per_process 1: on one GPU all N share it

Every output is checked: one line per image, each image once. Prints images/s (medians) and the
ratios the issue names: prs with 4 processes against Pool(4), prs with 1 against the loop.

    python3 bench/images_gpu.py --count 6400 --repeat 3 --python /opt/torch/.venv/bin/python3
    /usr/bin/python3 bench/images_gpu.py --count 128 --processes 1,2   # a quick CPU check
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
EXAMPLE = os.path.join(REPO, "examples", "images-gpu")


def load_entry():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "classify", os.path.join(EXAMPLE, "scripts", "classify.py"))
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    return entry


def batches(data, n):
    paths = sorted(os.path.join(data, f) for f in os.listdir(data) if f.endswith(".jpg"))
    return [paths[i:i + n] for i in range(0, len(paths), n)]


def check(out, count):
    with open(out) as f:
        names = [line.split(" ", 1)[0] for line in f.read().splitlines()]
    if len(names) != count or len(set(names)) != count:
        raise SystemExit("%s: %d lines, %d distinct, expected %d" % (out, len(names),
                                                                      len(set(names)), count))


_entry = None


def _pool_init():
    global _entry
    _entry = load_entry()
    _entry.init()


def _pool_run(batch):
    return "".join(line + "\n" for line in _entry.run(batch))


def child(args):
    """--loop-child or --pool-child: the work, in this fresh process."""
    work = batches(args.data, args.mini_batch_size)
    with open(args.out, "w") as f:
        if args.loop_child:
            entry = load_entry()
            entry.init()
            for b in work:
                f.write("".join(line + "\n" for line in entry.run(b)))
        else:
            import multiprocessing
            with multiprocessing.get_context("spawn").Pool(args.pool,
                                                           initializer=_pool_init) as pool:
                for text in pool.imap(_pool_run, work):
                    f.write(text)


def timed(cmd, out, count, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit("failed (exit %d): %s" % (p.returncode, " ".join(cmd)))
    check(out, count)
    return wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=6400, help="JPEGs (6400)")
    ap.add_argument("--data", default=None, help="image folder (default: a temp one, kept)")
    ap.add_argument("--mini-batch-size", type=int, default=64)
    ap.add_argument("--processes", default="1,2,4,8", help="prs process counts (1,2,4,8)")
    ap.add_argument("--pool", type=int, default=4, help="Pool size (4)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--prs", default=os.path.join(REPO, "build", "bin", "prs"))
    ap.add_argument("--python", default="/usr/bin/python3",
                    help="the interpreter with torch, torchvision and Pillow, for every side "
                         "(the GPU machine: /opt/torch/.venv/bin/python3)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--loop-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pool-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.loop_child or args.pool_child:
        return child(args)

    tmp = tempfile.mkdtemp(prefix="prs-images-gpu-")
    if args.data is None:
        args.data = os.path.join(tempfile.gettempdir(), "prs-images-gpu-%d" % args.count)
    subprocess.run([args.python, os.path.join(EXAMPLE, "prep.py"), "--count",
                    str(args.count), "--out", args.data], check=True)
    me = os.path.abspath(__file__)
    sides = ["loop", "pool"] + ["prs-%s" % n for n in args.processes.split(",")]
    walls = {s: [] for s in sides}
    try:
        for r in range(args.repeat):
            for side in sides[r % len(sides):] + sides[:r % len(sides)]:
                out = os.path.join(tmp, "%s-%d.txt" % (side, r))
                if side in ("loop", "pool"):
                    cmd = [args.python, me, "--%s-child" % side, "--data", args.data,
                           "--mini-batch-size", str(args.mini_batch_size),
                           "--pool", str(args.pool), "--out", out]
                    # As the job's environment.variables give prs's workers.
                    wall = timed(cmd, out, args.count, env=dict(os.environ, OMP_NUM_THREADS="1"))
                else:
                    n = side.split("-")[1]
                    state = os.path.join(tmp, "state-%s-%d" % (side, r))
                    out_dir = os.path.join(tmp, "out-%s-%d" % (side, r))
                    cmd = [args.prs, "run", os.path.join(EXAMPLE, "job.yaml"),
                           "--set", "inputs.0.path=%s" % args.data,
                           "--set", "process_count_per_node=%s" % n,
                           "--set", "mini_batch_size=%d" % args.mini_batch_size,
                           "--set", "environment.python=%s" % args.python,
                           "--set", "output=%s" % out_dir, "--state-dir", state]
                    wall = timed(cmd, os.path.join(out_dir, "parallel_run_step.txt"), args.count)
                    shutil.rmtree(state, ignore_errors=True)
                walls[side].append(wall)
                sys.stderr.write("run %d %-6s %7.2f s  %7.0f images/s\n"
                                 % (r + 1, side, wall, args.count / wall))
        rate = {s: args.count / statistics.median(w) for s, w in walls.items()}
        print("images-gpu: %d JPEGs, mini_batch_size %d, median of %d"
              % (args.count, args.mini_batch_size, args.repeat))
        for s in sides:
            print("  %-8s %8.2f s  %8.0f images/s" % (s, statistics.median(walls[s]), rate[s]))
        if "prs-4" in rate:
            print("  prs-4 / Pool(%d) throughput: %.2f (goal >= 0.90)"
                  % (args.pool, rate["prs-4"] / rate["pool"]))
        if "prs-1" in rate:
            print("  prs-1 / loop throughput:    %.2f (goal >= 0.90)" % (rate["prs-1"] / rate["loop"]))
        if args.json:
            print(json.dumps({"count": args.count, "walls": walls}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
