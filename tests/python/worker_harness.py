"""Starts the real worker (`python -m prs._worker`) as a child process and talks
to it the way prs-agent does. The wire format is implemented here again,
independently of prs._protocol, so the tests check the documented bytes."""

import os
import socket
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON_DIR = REPO / "python"
# The interpreter that runs the worker: the one running pytest unless overridden.
PYTHON = os.environ.get("PRS_TEST_PYTHON", sys.executable)
TIMEOUT = 30.0  # seconds; a deadline for every socket read and process wait

RUN, SHUTDOWN, READY, INIT_FAILED, RESULT, BYE = 1, 2, 64, 65, 66, 67

RESULT_FIELDS = ("task_id", "status", "succeeded", "row_count", "rows", "error", "traceback",
                 "run_seconds", "cpu_seconds", "items_total", "header")


def encode(msg_type, fields=()):
    body = bytes([msg_type])
    for f in fields:
        if isinstance(f, str):
            f = os.fsencode(f)
        body += struct.pack(">I", len(f)) + f
    return struct.pack(">I", len(body)) + body


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None if not data else data
        data += chunk
    return data


def recv_frame(sock):
    """(type, [bytes]) or None on EOF. Raises socket.timeout past the deadline."""
    head = recv_exact(sock, 4)
    if head is None:
        return None
    assert len(head) == 4, "EOF inside a length prefix"
    (length,) = struct.unpack(">I", head)
    body = recv_exact(sock, length)
    assert body is not None and len(body) == length, "EOF inside a frame"
    msg_type, pos, fields = body[0], 1, []
    while pos < length:
        (n,) = struct.unpack(">I", body[pos:pos + 4])
        pos += 4
        fields.append(body[pos:pos + n])
        pos += n
    assert pos == length, "fields overrun the frame"
    return msg_type, fields


class Result(dict):
    __getattr__ = dict.__getitem__


class WorkerProcess:
    def __init__(self, tmp_path, script, args=("--foo", "bar"), script_name="score.py",
                 env=None, files=None):
        self.tmp = Path(tmp_path)
        self.src = self.tmp / "src"
        self.src.mkdir(parents=True, exist_ok=True)
        self.script = self.src / script_name
        self.script.write_text(textwrap.dedent(script))
        for name, text in (files or {}).items():
            (self.src / name).write_text(textwrap.dedent(text))
        self.stdout_path = self.tmp / "worker.stdout.txt"
        self.stderr_path = self.tmp / "worker.stderr.txt"
        self.log_dir = self.tmp / "logs"
        self.entry_script_log = (self.log_dir / "user" / "entry_script_log" / "127.0.0.1" /
                                 "process003.log.txt")
        self.output_dir = self.tmp / "out"
        self.working_dir = self.tmp / "work" / "process003"

        self.sock, child = socket.socketpair()
        self.sock.settimeout(TIMEOUT)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PRS_")}
        full_env.update({
            "PYTHONPATH": str(PYTHON_DIR),
            "PRS_WORKER_FD": str(child.fileno()),
            "PRS_ENTRY_SCRIPT": str(self.script),
            "PRS_SOURCE_DIR": str(self.src),
            "PRS_NODE_ID": "127.0.0.1",
            "PRS_PROCESS_NAME": "process003",
            "PRS_LOG_DIR": str(self.log_dir),
            "PRS_ENTRY_SCRIPT_LOG": str(self.entry_script_log),
            "PRS_OUTPUT_DIR": str(self.output_dir),
            "PRS_WORKING_DIR": str(self.working_dir),
            "PRS_LOGGING_LEVEL": "INFO",
            "PRS_OUTPUT_ACTION": "append_row",
        })
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "prs._worker", *args], cwd=str(self.src), env=full_env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=(child.fileno(),))
        child.close()

    # -- reading ----------------------------------------------------------

    def stdout(self):
        return self.stdout_path.read_text()

    def stderr(self):
        return self.stderr_path.read_text()

    def recv(self):
        frame = recv_frame(self.sock)
        assert frame is not None, "worker closed the socket; stderr:\n" + self._stderr_now()
        return frame

    def _stderr_now(self):
        try:
            return self.stderr()
        except OSError:
            return ""

    def expect_ready(self):
        msg_type, fields = self.recv()
        assert msg_type == READY, "expected READY, got %d %r; stderr:\n%s" % (
            msg_type, fields, self._stderr_now())
        assert fields == [str(self.proc.pid).encode()]
        return self

    def expect_init_failed(self):
        msg_type, fields = self.recv()
        assert msg_type == INIT_FAILED, "expected INIT_FAILED, got %d %r" % (msg_type, fields)
        assert len(fields) == 3
        self.init_kind = fields[2].decode()
        assert self.init_kind in ("load", "init")
        return fields[0].decode(), fields[1].decode()

    # -- writing ----------------------------------------------------------

    def send(self, msg_type, fields=()):
        self.sock.sendall(encode(msg_type, fields))

    def run(self, task_id, items):
        self.send(RUN, [str(task_id)] + [str(i) for i in items])
        msg_type, fields = self.recv()
        assert msg_type == RESULT, "expected RESULT, got %d %r" % (msg_type, fields)
        assert len(fields) == len(RESULT_FIELDS), fields
        r = Result(zip(RESULT_FIELDS, (f.decode("utf-8", "surrogateescape") for f in fields)))
        r["succeeded"] = int(r["succeeded"])
        r["row_count"] = int(r["row_count"])
        r["run_seconds"] = float(r["run_seconds"])
        r["cpu_seconds"] = float(r["cpu_seconds"])
        return r

    def shutdown(self):
        self.send(SHUTDOWN)
        msg_type, fields = self.recv()
        assert (msg_type, fields) == (BYE, [])
        return self.wait()

    def wait(self):
        return self.proc.wait(timeout=TIMEOUT)

    def close(self):
        try:
            self.sock.close()
        finally:
            if self.proc.poll() is None:
                try:
                    self.proc.wait(timeout=TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
