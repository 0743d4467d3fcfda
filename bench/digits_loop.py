#!/usr/bin/python3
"""Baseline for bench/digits.sh: the digits entry script in one plain process.

Lists examples/digits/data/digits sorted by name, imports
scripts/digit_identification.py, calls init() once, then run() on mini-batches
of 10 in order, writing the lines to a temp file; checks 1,797 lines and prints
the split (import, init, run). Time the whole process from outside:

    /usr/bin/time -f "wall %e s" /usr/bin/python3 bench/digits_loop.py
"""
import importlib.util
import os
import sys
import tempfile
import time

t0 = time.perf_counter()
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(repo, "python"))  # azureml_user.parallel_run.EntryScript
example = os.path.join(repo, "examples", "digits")
data = os.path.join(example, "data", "digits")
paths = sorted(os.path.join(data, f) for f in os.listdir(data))
spec = importlib.util.spec_from_file_location(
    "digit_identification", os.path.join(example, "scripts", "digit_identification.py"))
entry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(entry)
t1 = time.perf_counter()
entry.init()
t2 = time.perf_counter()
rows = 0
with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
    for i in range(0, len(paths), 10):
        lines = entry.run(paths[i:i + 10])
        rows += len(lines)
        f.write("".join(line + "\n" for line in lines))
t3 = time.perf_counter()
if rows != 1797:
    raise SystemExit("digits_loop: %d rows, expected 1797" % rows)
print("digits loop: %d rows; import %.2f s, init %.2f s, run %.2f s, in-process %.2f s"
      % (rows, t1 - t0, t2 - t1, t3 - t2, t3 - t0))
