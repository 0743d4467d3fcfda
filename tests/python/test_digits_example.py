"""The digits example (examples/digits) end to end through the real worker:
prep.py writes images and a model into a temporary folder, the entry script
runs in a worker as prs-agent would start it, and the predictions are checked
against the true labels."""

import csv
import subprocess

import pytest

from worker_harness import PYTHON, REPO, TIMEOUT

EXAMPLE = REPO / "examples" / "digits"


def test_digit_identification_in_a_worker(start_worker, tmp_path):
    for module in ("numpy", "PIL", "sklearn"):
        pytest.importorskip(module)
    data = tmp_path / "data"
    model = tmp_path / "src" / "model.pkl"
    prep = subprocess.run([PYTHON, str(EXAMPLE / "prep.py"), "--out", str(data),
                           "--model", str(model)], capture_output=True, text=True,
                          timeout=5 * TIMEOUT)
    assert prep.returncode == 0, prep.stderr
    images = sorted((data / "digits").glob("digit_*.png"))
    assert len(images) == 1797
    assert model.exists()
    with open(data / "labels.csv", newline="") as f:
        labels = {row["file"]: row["label"] for row in csv.DictReader(f)}

    w = start_worker((EXAMPLE / "scripts" / "digit_identification.py").read_text(),
                     script_name="digit_identification.py", args=("--model_file", "model.pkl"),
                     env={"OMP_NUM_THREADS": "1"})
    w.expect_ready()
    held_out = images[1500:1520]  # prep.py trains on the first 80%
    rows = []
    for task, batch in enumerate((held_out[:10], held_out[10:])):
        r = w.run(task, batch)
        assert (r.status, r.succeeded, r.row_count) == ("ok", 10, 10), r.error + r.traceback
        rows += r.rows.splitlines()
    assert w.shutdown() == 0

    assert [row.split(": ")[0] for row in rows] == [p.name for p in held_out]
    correct = sum(labels[name] == digit for name, digit in (row.split(": ") for row in rows))
    assert correct >= 17, rows
    log = w.entry_script_log.read_text()
    assert "loading model " + str(model) in log and "model loaded: SVC" in log
