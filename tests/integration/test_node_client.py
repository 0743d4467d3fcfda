"""The JobService from another language: Node.js with @grpc/grpc-js and @grpc/proto-loader (npm),
loading proto/prs/v1 as it is, submits a job with its own JobSpec and snapshot to a TLS master
with tokens, watches it to the end, and lists it and its logs (tests/node/submit_and_watch.js).

The npm packages are installed once per build folder with `npm ci` from tests/node's lock file
(the npm registry must be reachable; scripts/setup.sh installs node and npm).
"""

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from itest_helpers import BIN_DIR, PYTHON, SOURCE_DIR, make_job
from test_security import cluster  # noqa: F401 (the TLS and tokens master)

ROWS_SCRIPT = """\
import os

def run(mini_batch):
    return [os.path.basename(p) for p in mini_batch]
"""

NODE_DIR = SOURCE_DIR / "tests" / "node"


@pytest.fixture(scope="session")
def node_modules():
    """<build>/node/node_modules, installed by `npm ci` when tests/node's lock file changed."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail("%s is missing: scripts/setup.sh installs nodejs and npm" % tool)
    target = BIN_DIR.parent / "node"
    target.mkdir(parents=True, exist_ok=True)
    lock = (NODE_DIR / "package-lock.json").read_bytes()
    stamp = target / "installed.sha256"
    digest = hashlib.sha256(lock).hexdigest()
    if not (stamp.exists() and stamp.read_text() == digest and (target / "node_modules").is_dir()):
        shutil.copy(NODE_DIR / "package.json", target)
        shutil.copy(NODE_DIR / "package-lock.json", target)
        r = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                           cwd=target, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, "npm ci failed (is the npm registry reachable?):\n" + r.stderr
        stamp.write_text(digest)
    return target / "node_modules"


def node_spec(job, **keys):
    """The JobSpec as a client in another language writes it: every key, absolute paths."""
    spec = {
        "name": "node-job", "entry_script": "score.py", "source_directory": str(job.src_dir),
        "inputs": [{"name": "files", "type": "file", "path": str(job.data_dir)}],
        "output": str(job.output_dir), "output_action": "append_row",
        "append_row_file_name": "parallel_run_step.txt", "mini_batch_size": 4,
        "mini_batch_size_text": "4", "error_threshold": 0, "allowed_failed_count": -1,
        "allowed_failed_percent": 100, "node_count": 1, "process_count_per_node": 2,
        "run_invocation_timeout": 60, "run_max_try": 3, "logging_level": "INFO",
        "resource_monitor_interval": 600, "first_task_creation_timeout": 600,
        "environment": {"python": PYTHON, "variables": {}},
    }
    spec.update(keys)
    return spec


def test_a_node_client_submits_and_watches_a_job_over_tls_with_a_token(cluster, node_modules,
                                                                        tmp_path):
    cluster.agent("n1")
    job = make_job(tmp_path, 22, ROWS_SCRIPT, name="node-job")
    config = {
        "proto_dir": str(SOURCE_DIR / "proto"), "master": cluster.master.address,
        "ca": str(cluster.ca), "token": cluster.tokens["alice"],
        "spec": node_spec(job), "bad_spec": node_spec(job, entry_script="../escape.py"),
    }
    config_file = tmp_path / "node-config.json"
    config_file.write_text(json.dumps(config))
    r = subprocess.run(["node", str(NODE_DIR / "submit_and_watch.js"), str(config_file)],
                       env={"NODE_PATH": str(node_modules),
                            "PATH": "%s:/usr/bin:/bin" % Path(shutil.which("node")).parent},
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # Errors carry the canonical codes and the master's message.
    assert out["refused"]["code"] == "INVALID_ARGUMENT", out["refused"]
    assert "escape.py" in out["refused"]["details"]
    assert out["unknown"]["code"] == "NOT_FOUND" and "no-such-job" in out["unknown"]["details"]
    # The stream ends with the terminal status; the job is alice's.
    assert out["states"][-1] == "SUCCEEDED" and set(out["states"]) <= {"QUEUED", "RUNNING",
                                                                        "SUCCEEDED"}
    final = out["final"]
    assert final["counts"]["items_succeeded"] == 22 and final["counts"]["rows_written"] == 22
    assert final["owner"] == "alice" and final["output_file"] == str(job.output_file)
    assert [out["job_id"], "SUCCEEDED", "alice"] in out["listed"]
    assert "job_progress_overview.txt" in out["log_files"]
    assert sorted(job.output_file.read_text().split()) == sorted(p.name for p in job.inputs)
    assert cluster.status(out["job_id"])["state"] == "SUCCEEDED"
