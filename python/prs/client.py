"""prs.client: submit, follow and inspect jobs on a prs-master from Python.

    from prs.client import Client

    client = Client()                                   # $PRS_MASTER, else 127.0.0.1:7600
    job = client.submit("examples/digits/job.yaml", overrides={"mini_batch_size": 50})
    status = client.wait(job.job_id)
    print(status.state, status.output_file)

A job is checked and its source_directory packed by the `prs` binary itself
(`prs prepare`), exactly as `prs submit` does: one implementation of the job
file, its checks and its snapshot, not two. Everything else is plain gRPC with
the stubs generated from proto/prs/v1 at build time (prs.v1).

Results are dataclasses (Job, JobCounts, SubmittedJob, LogFile, Node); every
failure is a PrsError (or one of its subclasses) carrying the server's
message and the gRPC code.
"""

import dataclasses
import json
import os
import random
import shutil
import subprocess
import time
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import grpc

try:
    from prs.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
except ImportError as e:  # pragma: no cover: a source tree that was never built
    raise ImportError(
        "prs.client needs the gRPC stubs that the build generates into <build>/python/prs/v1: "
        "run scripts/build.sh (it makes them importable from /usr/bin/python3), or add "
        "<build>/python to PYTHONPATH next to the source tree's python/ folder (%s)" % e) from e

__all__ = [
    "Client", "Tls", "Job", "JobCounts", "SubmittedJob", "LogFile", "Node", "FirstError",
    "PrsError",
    "InvalidJobError", "JobNotFoundError", "FailedPreconditionError", "PermissionDeniedError",
    "MasterUnavailableError", "WaitTimeoutError", "LogFileNotFoundError", "ConfigurationError",
    "TERMINAL_STATES",
]

DEFAULT_MASTER = "127.0.0.1:7600"
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})

# As common/grpc_defaults and common/message_limits: a submit carries up to a
# 64 MiB snapshot; a reply (a job list, a log chunk) stays under 512 MiB.
_MAX_SEND_BYTES = 1 << 30
_MAX_RECEIVE_BYTES = 512 << 20
_LOG_CHUNK_BYTES = 1 << 20


# --- errors ------------------------------------------------------------------------------------


class PrsError(Exception):
    """A call failed. `code` is the gRPC status code's name ("NOT_FOUND", ...) and `message`
    what the server (or the `prs` binary) said, which names the problem and the fix."""

    def __init__(self, message: str, code: str = "UNKNOWN"):
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidJobError(PrsError):
    """The job (its file, a key, an input, the snapshot) or an argument was refused."""


class JobNotFoundError(PrsError):
    """No job with this id on the master."""


class FailedPreconditionError(PrsError):
    """The job's state forbids the operation (e.g. resuming a running job)."""


class PermissionDeniedError(PrsError):
    """The token is missing, unknown, or its role does not allow the call."""


class MasterUnavailableError(PrsError):
    """The master cannot be reached."""


class LogFileNotFoundError(PrsError):
    """The job's log tree has no such file (yet)."""


class ConfigurationError(PrsError):
    """The client's own settings are wrong: a TLS or token file, the `prs` binary."""


class WaitTimeoutError(PrsError, TimeoutError):
    """wait() ran out of time; `status` is the job's last status (None when none came)."""

    def __init__(self, message: str, status: Optional["Job"]):
        super().__init__(message, "DEADLINE_EXCEEDED")
        self.status = status


_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidJobError,
    grpc.StatusCode.NOT_FOUND: JobNotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: PermissionDeniedError,
    grpc.StatusCode.UNAVAILABLE: MasterUnavailableError,
}


# --- results -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class JobCounts:
    """A job's progress counters (proto JobCounts)."""
    mini_batches_created: int = 0
    mini_batches_processed: int = 0
    mini_batches_failed: int = 0
    items_total: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    rows_written: int = 0
    listing_done: bool = False
    retries: int = 0
    plans: int = 0


@dataclasses.dataclass(frozen=True)
class Job:
    """A job as the master sees it (proto JobStatus). `state` is the JobState's name; times are
    Unix milliseconds, 0 when not reached."""
    job_id: str
    name: str
    state: str
    counts: JobCounts
    reason: str = ""
    owner: str = ""
    output_file: str = ""
    output_dir: str = ""
    log_dir: str = ""
    submit_time_ms: int = 0
    start_time_ms: int = 0
    end_time_ms: int = 0
    active_agents: int = 0
    items_per_second: float = 0.0
    first_error: str = ""
    first_error_log: str = ""
    notes: Tuple[str, ...] = ()
    reused_from: str = ""

    @property
    def done(self) -> bool:
        """True once the job is SUCCEEDED, FAILED or CANCELLED."""
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCEEDED"


@dataclasses.dataclass(frozen=True)
class SubmittedJob:
    """What submit() returns: the new job's id, its log folder on the master, and what the
    master wants you to know (e.g. that an earlier output file was moved aside)."""
    job_id: str
    log_dir: str
    warnings: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class FirstError:
    """A job's first error (JobStatus.first_error), the file of its log tree that holds it
    (user/error/<node>/<process>.txt), and that record: the traceback and the inputs."""
    error: str
    log: str
    traceback: str


@dataclasses.dataclass(frozen=True)
class LogFile:
    """One file of a job's log tree: its path relative to logs/, and its size in bytes."""
    path: str
    size: int


@dataclasses.dataclass(frozen=True)
class Node:
    """An agent the master knows (proto AgentInfo)."""
    node_id: str
    hostname: str
    ip: str
    pid: int
    last_seen_ms_ago: int
    job_id: str
    leases: int
    busy_workers: int
    gpus: Tuple[str, ...]


def _job(msg) -> Job:
    c = msg.counts
    counts = JobCounts(**{f.name: getattr(c, f.name) for f in dataclasses.fields(JobCounts)})
    values = {}
    for f in dataclasses.fields(Job):
        if f.name == "counts":
            values[f.name] = counts
        elif f.name == "state":
            values[f.name] = job_pb2.JobState.Name(msg.state)
        elif f.name == "notes":
            values[f.name] = tuple(msg.notes)
        else:
            values[f.name] = getattr(msg, f.name)
    return Job(**values)


def _node(msg) -> Node:
    return Node(node_id=msg.node_id, hostname=msg.hostname, ip=msg.ip, pid=msg.pid,
                last_seen_ms_ago=msg.last_seen_ms_ago, job_id=msg.job_id, leases=msg.leases,
                busy_workers=msg.busy_workers, gpus=tuple(msg.gpus))


# --- connection --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Tls:
    """TLS to the master: the CA that signed its certificate and, when the master requires
    one, a client certificate and key (paths). As the CLI's --tls-ca, --tls-cert, --tls-key."""
    ca: str
    cert: Optional[str] = None
    key: Optional[str] = None

    @staticmethod
    def from_environment() -> Optional["Tls"]:
        """$PRS_TLS_CA, $PRS_TLS_CERT, $PRS_TLS_KEY; None when $PRS_TLS_CA is unset."""
        ca = os.environ.get("PRS_TLS_CA", "")
        cert = os.environ.get("PRS_TLS_CERT") or None
        key = os.environ.get("PRS_TLS_KEY") or None
        if not ca:
            if cert or key:
                raise ConfigurationError(
                    "$PRS_TLS_CERT and $PRS_TLS_KEY need $PRS_TLS_CA, the CA that signed the "
                    "master's certificate", "INVALID_ARGUMENT")
            return None
        for name, path in (("$PRS_TLS_CA", ca), ("$PRS_TLS_CERT", cert), ("$PRS_TLS_KEY", key)):
            if path and not os.access(path, os.R_OK):
                raise ConfigurationError("%s: cannot read %s" % (name, path), "INVALID_ARGUMENT")
        return Tls(ca, cert, key)


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigurationError("%s: cannot read %s: %s" % (what, path, e.strerror),
                                 "INVALID_ARGUMENT") from None


def _read_pem(path: str, what: str) -> bytes:
    data = _read(path, what)
    if b"-----BEGIN " not in data:
        raise ConfigurationError("%s: %s is not a PEM file" % (what, path), "INVALID_ARGUMENT")
    return data


def _token_from_environment() -> str:
    """As the CLI: the first line of $PRS_TOKEN_FILE, else $PRS_TOKEN, else none."""
    token_file = os.environ.get("PRS_TOKEN_FILE", "")
    if not token_file:
        return os.environ.get("PRS_TOKEN", "").strip()
    line = _read(token_file, "$PRS_TOKEN_FILE").decode("utf-8", "replace").split("\n")[0].strip()
    if not line:
        raise ConfigurationError("$PRS_TOKEN_FILE: %s is empty" % token_file, "INVALID_ARGUMENT")
    return line


def _is_loopback(address: str) -> bool:
    """As common/credentials IsLoopbackAddress: 127/8, ::1 or localhost."""
    host = address
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return False
        host = host[1:end]
    elif ":" in host:
        host = host[:host.rfind(":")]
    if host in ("localhost", "::1"):
        return True
    parts = host.split(".")
    return (len(parts) == 4 and parts[0] == "127"
            and all(p.isdigit() and int(p) < 256 for p in parts))


def _find_prs(explicit: Optional[str]) -> str:
    if explicit:
        return explicit
    try:
        from prs import _paths  # written by the build (or install) next to the stubs
        candidate = os.path.join(_paths.BIN_DIR, "prs")
        if os.access(candidate, os.X_OK):
            return candidate
    except ImportError:
        pass
    found = shutil.which("prs")
    if found:
        return found
    raise ConfigurationError("cannot find the `prs` binary, which checks and packs a job before "
                             "it is submitted: build prs (scripts/build.sh), put its bin/ folder "
                             "on PATH, or pass Client(prs_binary=...)", "FAILED_PRECONDITION")


def _json(value, what: str) -> str:
    """JSON (which the job file's YAML parser reads as the same value): paths as strings, any
    character as itself (yaml-cpp refuses the surrogate pairs of \\u escapes)."""
    def encode(o):
        if isinstance(o, os.PathLike):
            return os.fspath(o)
        raise TypeError("%s is not a job file's value" % type(o).__name__)
    try:
        return json.dumps(value, ensure_ascii=False, default=encode)
    except (TypeError, ValueError) as e:
        raise InvalidJobError("%s: %s" % (what, e), "INVALID_ARGUMENT") from None


def _override_args(overrides) -> List[str]:
    """{"mini_batch_size": 5} or ["mini_batch_size=5"] -> --set arguments. A dict's values are
    written as JSON, which the job file's YAML parser reads as the same value; None unsets."""
    if not overrides:
        return []
    if isinstance(overrides, Mapping):
        pairs = ["%s=%s" % (k, "" if v is None else _json(v, "overrides[%r]" % k))
                 for k, v in overrides.items()]
    elif isinstance(overrides, (str, bytes)):
        raise TypeError("overrides: give a dict {key: value} or a list of 'key=value' strings")
    else:
        pairs = [str(o) for o in overrides]
    args = []
    for p in pairs:
        args += ["--set", p]
    return args


# --- the client --------------------------------------------------------------------------------


class _Logs:
    """client.logs: a job's log tree on the master (list, read, follow)."""

    def __init__(self, client: "Client"):
        self._client = client

    def list(self, job_id: str) -> List[LogFile]:
        """The files of the job's log tree, sorted by path."""
        resp = self._client._call("ListLogs", job_service_pb2.ListLogsRequest(job_id=job_id), 30)
        return [LogFile(f.path, f.size) for f in resp.files]

    def read(self, job_id: str, path: str, offset: int = 0,
             max_bytes: Optional[int] = None) -> bytes:
        """The file's bytes from `offset` (to its end, or at most `max_bytes`)."""
        data = bytearray()
        while max_bytes is None or len(data) < max_bytes:
            want = _LOG_CHUNK_BYTES if max_bytes is None else min(_LOG_CHUNK_BYTES,
                                                                  max_bytes - len(data))
            try:
                chunk = self._client._call("ReadLog", job_service_pb2.ReadLogRequest(
                    job_id=job_id, path=path, offset=offset + len(data), max_bytes=want), 30)
            except JobNotFoundError as e:
                self._client.get(job_id)  # raises JobNotFoundError when the job is the one missing
                raise LogFileNotFoundError(e.message, e.code) from None
            data += chunk.data
            if not chunk.data or offset + len(data) >= chunk.size:
                break
        return bytes(data)

    def follow(self, job_id: str, path: str, offset: int = 0,
               poll_seconds: float = 0.5) -> Iterator[bytes]:
        """Yields what is appended to the file from `offset` until the job has ended and the
        file has been read to its end (as `prs logs --follow`); waits for a file not written
        yet, and raises LogFileNotFoundError when the job ended without writing it."""
        while True:
            # The state first: once the job has ended, one more read gets the last bytes.
            ended = self._client.get(job_id).done
            try:
                data = self.read(job_id, path, offset, max_bytes=4 * _LOG_CHUNK_BYTES)
            except LogFileNotFoundError as e:
                if ended:
                    raise LogFileNotFoundError(
                        "job %s ended without writing %s; client.logs.list(%r) lists its files"
                        % (job_id, path, job_id), e.code) from None
                data = b""  # not written yet
            if data:
                offset += len(data)
                yield data
                continue  # more may be there already: read on before sleeping
            if ended:
                return
            time.sleep(poll_seconds)  # polling the master for new bytes


class Client:
    """A connection to one prs-master.

    master: "host:port"; default $PRS_MASTER, else 127.0.0.1:7600 (as the CLI).
    token: the bearer token; default the first line of $PRS_TOKEN_FILE, else $PRS_TOKEN.
    tls: a Tls, or the path of the CA that signed the master's certificate; default (None) from
         $PRS_TLS_CA / $PRS_TLS_CERT / $PRS_TLS_KEY; False for plaintext whatever the
         environment says. A token is sent in clear text only to a loopback address.
    prs_binary: the `prs` binary that checks and packs a job; default the one built next to
         these stubs, else `prs` on PATH.
    """

    def __init__(self, master: Optional[str] = None, token: Optional[str] = None,
                 tls: Union[Tls, str, bool, None] = None, prs_binary: Optional[str] = None):
        self.master = master or os.environ.get("PRS_MASTER") or DEFAULT_MASTER
        host, _, port = self.master.rpartition(":")
        if "://" in self.master or not host or not port.isdigit():
            raise ConfigurationError(
                "master (or $PRS_MASTER) %r is not host:port: give the master's address and gRPC "
                "port, e.g. 127.0.0.1:7600 (no scheme; TLS is tls=)" % self.master,
                "INVALID_ARGUMENT")
        self._token = _token_from_environment() if token is None else token.strip()
        if isinstance(tls, str):
            tls = Tls(tls)
        if tls is True:
            raise TypeError("tls: give a Tls, the CA's path, None (the environment) or False")
        self._tls = (Tls.from_environment() if tls is None else None if tls is False else tls)
        if self._tls is not None and bool(self._tls.cert) != bool(self._tls.key):
            raise ConfigurationError("tls: give both cert and key (a client certificate and its "
                                     "key), or neither", "INVALID_ARGUMENT")
        self._prs_binary = prs_binary
        if self._token and self._tls is None and not _is_loopback(self.master):
            raise FailedPreconditionError(
                "refusing to send your token in clear text to %s: give tls= ($PRS_TLS_CA), the CA "
                "that signed the master's certificate" % self.master, "FAILED_PRECONDITION")
        options = [("grpc.max_send_message_length", _MAX_SEND_BYTES),
                   ("grpc.max_receive_message_length", _MAX_RECEIVE_BYTES),
                   ("grpc.max_reconnect_backoff_ms", 2000),
                   # Straight to the master: never a proxy from the environment.
                   ("grpc.enable_http_proxy", 0)]
        if self._tls is None:
            self._channel = grpc.insecure_channel(self.master, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_pem(self._tls.ca, "tls.ca"),
                private_key=_read_pem(self._tls.key, "tls.key") if self._tls.key else None,
                certificate_chain=_read_pem(self._tls.cert, "tls.cert") if self._tls.cert else None)
            self._channel = grpc.secure_channel(self.master, credentials, options=options)
        self._stub = job_service_pb2_grpc.JobServiceStub(self._channel)
        self._metadata = (("authorization", "Bearer " + self._token),) if self._token else ()
        self.logs = _Logs(self)

    # -- plumbing --

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _error(self, e: grpc.RpcError) -> PrsError:
        code = e.code()
        message = e.details() or str(code)
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            # What the transport said that points at one fix.
            if "ALPN" in message:
                return MasterUnavailableError(
                    "prs-master at %s does not speak gRPC there (%s); is it the master's "
                    "--http-listen port? give its --listen port" % (self.master, message),
                    code.name)
            if self._tls is not None and "certificate verify failed" in message:
                return MasterUnavailableError(
                    "the certificate of prs-master at %s is not signed by the CA in %s: give the "
                    "ca.pem that deploy/make-certs.sh made with the master's certificate"
                    % (self.master, self._tls.ca), code.name)
            message = ("cannot reach prs-master at %s (%s); start it with `prs-master --listen %s`"
                       ", or point Client(master=...) / $PRS_MASTER at it" %
                       (self.master, message, self.master))
            if self._tls is None:
                message += ("; if it serves TLS, give tls= ($PRS_TLS_CA), the CA that signed its "
                            "certificate")
            return MasterUnavailableError(message, code.name)
        return _ERRORS.get(code, PrsError)(message, code.name)

    def _call(self, method: str, request, timeout_seconds: float):
        try:
            return getattr(self._stub, method)(request, timeout=timeout_seconds,
                                               metadata=self._metadata)
        except grpc.RpcError as e:
            raise self._error(e) from None

    # -- jobs --

    def prepare(self, job: Union[str, os.PathLike, Mapping],
                overrides: Union[Mapping, Sequence[str], None] = None):
        """The SubmitJobRequest for `job` (a job file's path, or a dict of its keys), checked and
        with its source_directory packed by `prs prepare`, as `prs submit` would send it.
        Relative paths in a dict are relative to the current directory."""
        if isinstance(job, Mapping):
            path = "-"
            stdin = _json(dict(job), "job").encode()  # JSON is YAML
        elif isinstance(job, (str, os.PathLike)):
            path = os.fspath(job)
            stdin = b""
        else:
            raise TypeError("job: give the path of a job file or a dict of its keys, not %s" %
                            type(job).__name__)
        # "--": a path that starts with '-' is still the job file.
        argv = [_find_prs(self._prs_binary), "prepare", *_override_args(overrides), "--", path]
        proc = subprocess.run(argv, input=stdin, capture_output=True)
        if proc.returncode != 0:
            text = proc.stderr.decode("utf-8", "replace").strip()
            message = "\n".join(line[len("prs: error: "):] if line.startswith("prs: error: ")
                                else line for line in text.splitlines())
            missing = message.startswith("job file '") and message.endswith("' does not exist")
            raise InvalidJobError(message or "prs prepare exited with %d" % proc.returncode,
                                  "NOT_FOUND" if missing else "INVALID_ARGUMENT")
        return job_service_pb2.SubmitJobRequest.FromString(proc.stdout)

    def submit(self, job: Union[str, os.PathLike, Mapping],
               overrides: Union[Mapping, Sequence[str], None] = None) -> SubmittedJob:
        """Submits a job: the path of a job file, or a dict of its keys; `overrides` as
        `prs submit --set` ({"mini_batch_size": 50} or ["mini_batch_size=50"]). The job is
        checked and packed as the CLI does (InvalidJobError names what to fix)."""
        request = self.prepare(job, overrides)
        # The master checks every path of a list_file at submit: give it time.
        resp = self._call("SubmitJob", request, 600)
        return SubmittedJob(resp.job_id, resp.log_dir, tuple(resp.warnings))

    def get(self, job_id: str) -> Job:
        """One job's status."""
        return _job(self._call("GetJob", job_service_pb2.GetJobRequest(job_id=job_id), 10))

    def list(self, limit: int = 100) -> List[Job]:
        """Jobs, newest first."""
        resp = self._call("ListJobs", job_service_pb2.ListJobsRequest(limit=limit), 10)
        return [_job(j) for j in resp.jobs]

    def cancel(self, job_id: str, wait: bool = True, timeout: float = 60) -> Job:
        """Cancels a queued or running job. As `prs cancel`, waits (`timeout` seconds at most)
        until the end is published, once the agents have stopped its workers and shipped their
        last logs, and returns that status; with wait=False, returns at once (still RUNNING)."""
        status = _job(self._call("CancelJob", job_service_pb2.CancelJobRequest(job_id=job_id),
                                 30))
        if not wait or status.done:
            return status
        try:
            return self.wait(job_id, timeout=timeout)
        except WaitTimeoutError as e:
            return e.status or status  # its workers are still stopping

    def resume(self, job_id: str) -> Job:
        """Runs a FAILED or CANCELLED job's failed and unprocessed mini-batches again, appending
        to the same output file."""
        return _job(self._call("ResumeJob", job_service_pb2.ResumeJobRequest(job_id=job_id), 60))

    def nodes(self) -> List[Node]:
        """The agents the master knows."""
        resp = self._call("ListAgents", job_service_pb2.ListAgentsRequest(), 10)
        return [_node(a) for a in resp.agents]

    def watch(self, job_id: str, timeout: Optional[float] = None) -> Iterator[Job]:
        """Yields the job's status on every change (a few per second at most) until it ends; the
        last one is terminal. A broken stream (the master restarting) is reopened. Raises
        WaitTimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        last = None
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                if last is None:
                    raise WaitTimeoutError("no status of job %s came within %gs (is prs-master at "
                                           "%s up?)" % (job_id, timeout, self.master), None)
                raise WaitTimeoutError("job %s is still %s after %gs" %
                                       (job_id, last.state, timeout), last)
            got = False
            call = self._stub.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id),
                                       timeout=left, metadata=self._metadata)
            try:
                for msg in call:
                    got = True
                    failures = 0
                    last = _job(msg)
                    yield last
                    if last.done:
                        return
            except grpc.RpcError as e:
                code = e.code()
                if code == grpc.StatusCode.DEADLINE_EXCEEDED and deadline is not None:
                    continue  # the loop's check raises WaitTimeoutError
                if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                            grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                    raise self._error(e) from None
                failures += 1
                if not got and failures > 60:
                    raise self._error(e) from None
            finally:
                call.cancel()  # a consumer that stopped early leaves no stream open
            # Reconnect with jittered backoff, as the CLI does, within the deadline.
            pause = random.uniform(0.1, 0.5 + 0.1 * min(failures, 15))
            if deadline is not None:
                pause = max(0.0, min(pause, deadline - time.monotonic()))
            time.sleep(pause)

    def wait(self, job_id: str, timeout: Optional[float] = None) -> Job:
        """Blocks until the job ends; returns its terminal status. WaitTimeoutError (a
        TimeoutError, with .status) after `timeout` seconds."""
        last = None
        for last in self.watch(job_id, timeout=timeout):
            pass
        return last

    def first_error(self, job_id: str) -> Optional[FirstError]:
        """The job's first error, the file of the log tree that has it, and its traceback (with
        the failing mini-batch's inputs), or None when nothing failed."""
        status = self.get(job_id)
        if not status.first_error:
            return None
        text = ""
        if status.first_error_log:
            # The file has every failure of that worker: the first record, up to its blank
            # line, as `prs logs --errors` prints it.
            data = self.logs.read(job_id, status.first_error_log, max_bytes=64 << 10)
            text = data.decode("utf-8", "replace")
            end = text.find("\n\n")
            if end >= 0:
                text = text[:end + 1]
        return FirstError(status.first_error, status.first_error_log, text)
