"""`prs run`: the embedded master and agent run the digits example end to end."""

import csv
import os
import re
import subprocess

import pytest

from itest_helpers import make_job, wait_for, workers_under


def test_prs_run_digits_example(bins, tmp_path):
    example = bins.source_dir / "examples" / "digits"
    prep = subprocess.run([bins.python, str(example / "prep.py")], capture_output=True, text=True,
                          timeout=300)
    assert prep.returncode == 0, prep.stderr

    out_dir = tmp_path / "out"
    r = subprocess.run([str(bins.prs), "run", str(example / "job.yaml"),
                        "--state-dir", str(tmp_path / "state"), "--set", "output=%s" % out_dir],
                       env=dict(os.environ, TMPDIR=str(tmp_path)), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "prs run: rc=%d\n%s" % (r.returncode, r.stderr[-4000:])

    # prs run leaves no worker behind.
    wait_for(lambda: not workers_under(tmp_path / "state"), 10,
             message="the workers of prs run to exit")

    output_file = out_dir / "parallel_run_step.txt"
    assert output_file.is_file(), "no output file %s" % output_file
    rows = open(output_file, encoding="utf-8").read().splitlines()
    assert len(rows) == 1797, len(rows)
    pattern = re.compile(r"^digit_(\d{5})\.png: (\d)$")
    bad = [row for row in rows if not pattern.match(row)]
    assert not bad, "rows not of the form 'digit_NNNNN.png: D': %r" % bad[:5]
    predicted = {m.group(1): int(m.group(2)) for m in map(pattern.match, rows)}
    assert sorted(predicted) == ["%05d" % i for i in range(1797)], "each image exactly once"

    # The model is good: most predictions match the labels.
    with open(example / "data" / "labels.csv", newline="") as f:
        labels = {row["file"]: int(row["label"]) for row in csv.DictReader(f)}
    right = sum(labels["digit_%s.png" % k] == v for k, v in predicted.items())
    assert right / 1797 > 0.9, "only %d of 1797 predictions match the labels" % right

    # The last line on stdout is the output file's path (for scripts: `out=$(prs run ...)`).
    lines = r.stdout.strip().splitlines()
    assert lines and lines[-1] == str(output_file), \
        "the last stdout line must be the output file path %s; stdout was %r" % (output_file,
                                                                               r.stdout)


def test_durability_machine_runs_each_row_once_and_a_bad_value_is_refused(bins, tmp_path):
    """`prs run --durability machine` syncs each commit to the disk; the rows are the same."""
    script = "import os\n\ndef run(b):\n    return [os.path.basename(p) for p in b]\n"
    job = make_job(tmp_path, 30, script, mini_batch_size=4)
    r = subprocess.run([str(bins.prs), "run", str(job.job_file), "--durability", "machine",
                        "--state-dir", str(tmp_path / "state")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    rows = job.output_file.read_text().splitlines()
    assert sorted(rows) == sorted(p.name for p in job.inputs), rows
    r = subprocess.run([str(bins.prs), "run", str(job.job_file), "--durability", "disk"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "give process" in r.stderr and "machine" in r.stderr, r.stderr


def _has_torch(python):
    return subprocess.run([python, "-c", "import torch, torchvision"],
                          capture_output=True).returncode == 0


@pytest.mark.skipif(not _has_torch("/usr/bin/python3"),
                    reason="the images-gpu example needs PyTorch and torchvision in "
                           "/usr/bin/python3 (Debian: python3-torch python3-torchvision)")
def test_prs_run_images_gpu_example_on_the_cpu(bins, tmp_path):
    """The GPU example where there is no GPU: fp32 on the CPU, each image once."""
    example = bins.source_dir / "examples" / "images-gpu"
    data = tmp_path / "images"
    prep = subprocess.run([bins.python, str(example / "prep.py"), "--count", "24", "--out",
                           str(data)], capture_output=True, text=True, timeout=120)
    assert prep.returncode == 0, prep.stderr
    out_dir = tmp_path / "out"
    r = subprocess.run([str(bins.prs), "run", str(example / "job.yaml"), "--state-dir",
                        str(tmp_path / "state"), "--set", "output=%s" % out_dir,
                        "--set", "inputs.0.path=%s" % data, "--set", "mini_batch_size=8",
                        "--set", "process_count_per_node=2"],
                       env=dict(os.environ, TMPDIR=str(tmp_path)), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "prs run: rc=%d\n%s" % (r.returncode, r.stderr[-4000:])
    rows = (out_dir / "parallel_run_step.txt").read_text().splitlines()
    pattern = re.compile(r"^img_(\d{5})\.jpg (\d+) (0\.\d{4}|1\.0000)$")
    assert all(pattern.match(row) for row in rows), rows[:5]
    assert sorted(pattern.match(row).group(1) for row in rows) == ["%05d" % i for i in range(24)]
    assert all(0 <= int(pattern.match(row).group(2)) < 1000 for row in rows)
