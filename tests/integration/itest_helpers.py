"""Helpers of the integration tests (processes, polling, job files); fixtures are in conftest.py.

PRS_BIN_DIR (default /work/main/build/bin) holds prs, prs-master and prs-agent; PRS_SOURCE_DIR
(default /work/main) is the source tree, for examples/.
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import yaml

BIN_DIR = Path(os.environ.get("PRS_BIN_DIR") or "/work/main/build/bin")
SOURCE_DIR = Path(os.environ.get("PRS_SOURCE_DIR") or "/work/main")
PYTHON = "/usr/bin/python3"

# Seconds a daemon gets after SIGTERM before SIGKILL.
STOP_GRACE = 15
# Default timeout of a `prs ...` command.
CLI_TIMEOUT = 120


# --- helpers -------------------------------------------------------------------------------


def wait_for(predicate, timeout, interval=0.1, message=None):
    """Polls predicate() until it returns a true value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def read_environ(pid):
    """The environment of process `pid` as a list of bytes entries, or None if unreadable."""
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return None


def process_state(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:].split()[0].decode()
    except (OSError, ValueError, IndexError):
        return None


def find_processes(env_match):
    """Pids of live (non-zombie) processes with an environment entry for which
    env_match(entry: bytes) is true."""
    me = os.getpid()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == me:
            continue
        env = read_environ(pid)
        if not env or not any(env_match(e) for e in env):
            continue
        if process_state(pid) in (None, "Z", "X"):
            continue
        pids.append(pid)
    return pids


def job_worker_pids(job_id):
    """Worker processes of a job: their environment has PRS_JOB_ID=<job_id>."""
    entry = b"PRS_JOB_ID=" + job_id.encode()
    return find_processes(lambda e: e == entry)


def workers_under(work_dir):
    """Worker processes whose log folder is inside `work_dir` (an agent's --work-dir)."""
    prefix = b"PRS_LOG_DIR=" + str(work_dir).encode().rstrip(b"/") + b"/"
    return find_processes(lambda e: e.startswith(prefix))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    return "\n".join(data[-lines:])


class Daemon:
    """A prs-master or prs-agent process with its output in a file."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = argv
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self, grace=STOP_GRACE):
        """SIGTERM, then SIGKILL after `grace` seconds. Returns True if it exited on SIGTERM."""
        clean = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                clean = False
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._log.close()
        return clean

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()


def status_of(prs, job_id):
    """`prs status JOB --output json`, parsed."""
    r = prs("status", job_id, "--output", "json")
    assert r.returncode == 0, "prs status %s failed (%d): %s" % (job_id, r.returncode, r.stderr)
    return json.loads(r.stdout)


def wait_state(prs, job_id, states, timeout):
    """Polls `prs status` until the job is in one of `states`; returns that status."""
    if isinstance(states, str):
        states = (states,)
    last = {}

    def reached():
        last["st"] = status_of(prs, job_id)
        return last["st"] if last["st"]["state"] in states else None

    try:
        return wait_for(reached, timeout, interval=0.25,
                        message="job %s to reach %s" % (job_id, "/".join(states)))
    except AssertionError as e:
        raise AssertionError("%s; last status: %s" % (e, json.dumps(last.get("st"))))


def submit(prs, job_file, *extra):
    """`prs submit JOB_FILE`; asserts it worked and that stdout is only the job id."""
    r = prs("submit", job_file, *extra)
    assert r.returncode == 0, "prs submit failed (%d): %s" % (r.returncode, r.stderr)
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].strip() == lines[0] and lines[0], \
        "prs submit must print only the job id, got %r" % r.stdout
    return lines[0]


DEFAULT_JOB = {
    "name": "itest-job",
    "entry_script": "score.py",
    "source_directory": "./src",
    "inputs": [{"name": "files", "type": "file", "path": "./data"}],
    "output": "./out",
    "output_action": "append_row",
    "append_row_file_name": "parallel_run_step.txt",
    "mini_batch_size": 10,
    "error_threshold": 0,
    "node_count": 1,
    "process_count_per_node": 1,
    "run_invocation_timeout": 30,
    "run_max_try": 3,
    "logging_level": "INFO",
    "environment": {"python": PYTHON},
}


def make_job(tmp_path, n_files, script_text, job_dir_name="job", **keys):
    """Writes a job under tmp_path/job_dir_name: data/NNNNN.txt (content = the index),
    src/score.py (script_text, unless entry_script points elsewhere) and job.yaml.

    keys override the defaults of DEFAULT_JOB; a key set to None is left out. Returns paths."""
    root = Path(tmp_path) / job_dir_name
    data = root / "data"
    src = root / "src"
    data.mkdir(parents=True, exist_ok=True)
    src.mkdir(parents=True, exist_ok=True)
    inputs = []
    for i in range(n_files):
        p = data / ("%05d.txt" % i)
        p.write_text("%d\n" % i)
        inputs.append(p)
    (src / "score.py").write_text(script_text)
    spec = dict(DEFAULT_JOB)
    spec.update(keys)
    spec = {k: v for k, v in spec.items() if v is not None}
    job_file = root / "job.yaml"
    job_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = root / "out"
    return SimpleNamespace(root=root, job_file=job_file, data_dir=data, src_dir=src,
                           script=src / "score.py", output_dir=out,
                           output_file=out / spec.get("append_row_file_name",
                                                      "parallel_run_step.txt"),
                           inputs=inputs, n_files=n_files, spec=spec)


def load_protos(out_dir):
    """The prs.v1 messages, compiled by protoc from proto/ into `out_dir` (no gRPC stubs are
    needed: tests call methods by name). Returns a namespace of agent_service_pb2 (a),
    job_service_pb2 (j) and job_pb2 (job)."""
    import importlib
    import sys
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(SOURCE_DIR / "proto"))
                    for p in (SOURCE_DIR / "proto" / "prs" / "v1").glob("*.proto"))
    subprocess.run(["protoc", "-I", str(SOURCE_DIR / "proto"), "--python_out", str(out), *protos],
                   check=True, capture_output=True)
    for d in (out / "prs", out / "prs" / "v1"):
        (d / "__init__.py").touch()
    # The runtime's own `prs` package must not shadow these modules.
    for k in [k for k in sys.modules if k == "prs" or k.startswith("prs.")]:
        del sys.modules[k]
    sys.path.insert(0, str(out))
    try:
        mods = [importlib.import_module("prs.v1." + m)
                for m in ("agent_service_pb2", "job_service_pb2", "job_pb2")]
    finally:
        sys.path.remove(str(out))
    return SimpleNamespace(a=mods[0], j=mods[1], job=mods[2])
