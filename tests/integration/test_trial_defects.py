"""What a new user tripped over (issue 9): each test reproduces one defect of the trial with the
real binaries and checks the behaviour that replaced it."""

import json
import os
import subprocess
from pathlib import Path

import yaml

from itest_helpers import PYTHON


def prs_run(bins, tmp_path, job_file, *args, timeout=180, state="state"):
    """`prs run JOB_FILE ARGS...` with its state dir in tmp_path; returns the CompletedProcess
    (bytes stdout/stderr) with .state_dir set."""
    state_dir = Path(tmp_path) / state
    r = subprocess.run([str(bins.prs), "run", str(job_file), "--state-dir", str(state_dir), *args],
                       env=dict(os.environ, TMPDIR=str(tmp_path)), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    r.state_dir = state_dir
    r.err = r.stderr.decode("utf-8", "replace")
    return r


def write_job(root, script, data_files=None, **keys):
    """A job in `root`: src/score.py = script, data/ with data_files {bytes name: bytes content}
    (None: none), job.yaml from keys over a small default. Returns job.yaml's path."""
    root = Path(root)
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "score.py").write_text(script)
    data = root / "data"
    data.mkdir(exist_ok=True)
    for name, content in (data_files or {}).items():
        path = os.path.join(bytes(data), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
    spec = {"name": "trial", "entry_script": "score.py", "source_directory": "./src",
            "inputs": [{"name": "files", "type": "file", "path": "./data"}], "output": "./out",
            "mini_batch_size": 2, "run_invocation_timeout": 30, "run_max_try": 1,
            "environment": {"python": PYTHON}}
    spec.update(keys)
    spec = {k: v for k, v in spec.items() if v is not None}
    job = root / "job.yaml"
    job.write_text(yaml.safe_dump(spec, sort_keys=False))
    return job


def log_dir(r, job_id="trial-1"):
    return r.state_dir / "jobs" / job_id / "logs"


# --- 1. file names that are not UTF-8 ------------------------------------------------------

NAME_SCRIPT = """
import os
def run(mini_batch):
    out = []
    for p in mini_batch:
        with open(p) as f:
            text = f.read().strip()
        if text == "poison":
            raise ValueError("cannot score " + p)  # the undecodable byte, raw
        out.append("%s:%s" % (os.path.relpath(p, os.environ["DATA"]), text))
    return out
"""


def test_file_names_that_are_not_utf8_are_processed_like_any_other(bins, tmp_path):
    files = {b"caf\xe9.txt": b"latin1", b"ok.txt": b"plain", b"d\xff/x\xfe.txt": b"deep",
             "smörgåsbord.txt".encode(): b"utf8"}
    job = write_job(tmp_path, NAME_SCRIPT, files,
                    environment={"python": PYTHON, "variables": {"DATA": str(tmp_path / "data")}})
    (tmp_path / "src" / "notes-\udce9.txt".encode("utf-8", "surrogateescape").decode(
        "utf-8", "surrogateescape")).write_text("a snapshot file with a Latin-1 name\n")
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 0, r.err[-3000:]
    rows = (tmp_path / "out" / "parallel_run_step.txt").read_bytes().splitlines()
    assert sorted(rows) == sorted([b"caf\xe9.txt:latin1", b"ok.txt:plain", b"d\xff/x\xfe.txt:deep",
                                   "smörgåsbord.txt:utf8".encode()])
    assert "invalid UTF-8" not in r.err


def test_an_error_quoting_a_non_utf8_path_reaches_the_user(bins, tmp_path):
    job = write_job(tmp_path, NAME_SCRIPT, {b"caf\xe9.txt": b"poison", b"ok.txt": b"plain"},
                    error_threshold=0,
                    environment={"python": PYTHON, "variables": {"DATA": str(tmp_path / "data")}})
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 1, r.err[-3000:]
    # The byte that is not UTF-8 is shown as \xe9.
    assert "ValueError: cannot score" in r.err and "/data/caf\\xe9.txt (mini" in r.err, \
        r.err[-3000:]
    result = (log_dir(r) / "job_result.txt").read_text()
    assert "/data/caf\\xe9.txt (mini" in result
    # The traceback file lists the mini-batch's inputs as they are named on disk.
    errors = list((log_dir(r) / "user" / "error").rglob("*.txt"))
    assert errors and b"/data/caf\xe9.txt\n" in errors[0].read_bytes()


# --- 2. a job in which nothing succeeded -----------------------------------------------------


def test_a_job_in_which_nothing_succeeded_fails(bins, tmp_path):
    job = write_job(tmp_path, "def run(mini_batch):\n    pass\n",
                    {("%02d.txt" % i).encode(): b"x" for i in range(6)})
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 1, r.err[-3000:]
    assert "no input succeeded: all 6 items failed, in 3 mini-batches" in r.err, r.err[-3000:]
    assert "run() returned NoneType" in r.err
    result = (log_dir(r) / "job_result.txt").read_text()
    assert result.startswith("FAILED\nReason: no input succeeded"), result
