"""Only its own users and agents (docs/security.md): TLS, tokens, roles, job ownership, sessions.

A master with TLS (certificates from deploy/make-certs.sh) and a tokens file; the CLI and agents
are the real binaries; the attacks on the AgentService are made with a raw gRPC client
(python3-grpcio) whose messages protoc compiles from proto/ at test time. Each refused call must
get the right code and change nothing.
"""

import hashlib
import json
import os
import secrets
import signal
import subprocess
from types import SimpleNamespace

import grpc
import pytest

from conftest import start_master
from itest_helpers import CLI_TIMEOUT, SOURCE_DIR, Daemon, load_protos, make_job, wait_for

ROWS_SCRIPT = """\
import os

def run(mini_batch):
    return [os.path.basename(p) for p in mini_batch]
"""

PRINCIPALS = {  # name: roles
    "alice": "submit",
    "bob": "submit",
    "auditor": "read",
    "root": "admin",
    "agents": "agent",
    "rogue": "agent",
}


# --- the secure cluster --------------------------------------------------------------------


def write_tokens(path, principals):
    """The tokens file (hashes only) and {name: token}."""
    tokens = {name: secrets.token_hex(32) for name in principals}
    lines = ["# prs tokens: sha256 of the token, principal, roles"]
    for name, roles in principals.items():
        lines.append("sha256:%s %s %s" % (hashlib.sha256(tokens[name].encode()).hexdigest(),
                                          name, roles))
    path.write_text("\n".join(lines) + "\n")
    return tokens


@pytest.fixture
def cluster(bins, daemons, tmp_path):
    """A TLS master with tokens on 127.0.0.1, and helpers to run the CLI and agents against it."""
    tls = tmp_path / "tls"
    subprocess.run([str(SOURCE_DIR / "deploy" / "make-certs.sh"), str(tls), "--master-name",
                    "127.0.0.1"], check=True, capture_output=True, timeout=60)
    tokens_file = tmp_path / "tokens"
    tokens = write_tokens(tokens_file, PRINCIPALS)
    master = start_master(bins, daemons, tmp_path, extra=[
        "--tls-cert", str(tls / "master.pem"), "--tls-key", str(tls / "master.key"),
        "--tokens", str(tokens_file)])
    c = SimpleNamespace(master=master, tls=tls, tokens=tokens, tokens_file=tokens_file,
                        ca=tls / "ca.pem")

    def prs(*args, token=None, tls_ca=True, timeout=CLI_TIMEOUT):
        env = dict(os.environ, PRS_MASTER=master.address)
        for k in ("PRS_TOKEN", "PRS_TOKEN_FILE", "PRS_TLS_CA"):
            env.pop(k, None)
        if tls_ca:
            env["PRS_TLS_CA"] = str(c.ca)
        if token is not None:
            env["PRS_TOKEN"] = tokens.get(token, token)
        return subprocess.run([str(bins.prs), *map(str, args)], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def agent(node_id, principal="agents"):
        token_file = tmp_path / ("%s.token" % node_id)
        token_file.write_text(tokens[principal] + "\n")
        token_file.chmod(0o600)
        argv = [str(bins.agent), "--master", master.address, "--work-dir",
                str(tmp_path / ("agent-" + node_id)), "--node-id", node_id,
                "--tls-ca", str(c.ca), "--token-file", str(token_file)]
        d = Daemon("prs-agent " + node_id, argv, tmp_path / ("agent-%s.log" % node_id))
        daemons.append(d)
        wait_for(lambda: "registered agent=" in d.log(), 20,
                 message="agent %s to register over TLS with its token" % node_id)
        return d

    def status(job_id, token="root"):
        r = prs("status", job_id, "--output", "json", token=token)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    c.prs, c.agent, c.status = prs, agent, status
    return c


def submit_as(cluster, tmp_path, token, n_files=6, name="sec-job"):
    job = make_job(tmp_path, n_files, ROWS_SCRIPT, job_dir_name=name, name=name)
    r = cluster.prs("submit", job.job_file, token=token)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip(), job


# --- a raw gRPC client for the attacks ------------------------------------------------------


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    return load_protos(tmp_path_factory.mktemp("pb"))


class Raw:
    """Calls one RPC by name over TLS, with an optional bearer token; returns (code, reply)."""

    def __init__(self, cluster, pb):
        self.pb = pb
        creds = grpc.ssl_channel_credentials(root_certificates=cluster.ca.read_bytes())
        self.channel = grpc.secure_channel(cluster.master.address, creds)
        self.tokens = cluster.tokens

    def call(self, service, method, request, reply_type, token=None, stream=False):
        path = "/prs.v1.%s/%s" % (service, method)
        kind = self.channel.unary_stream if stream else self.channel.unary_unary
        rpc = kind(path, request_serializer=lambda m: m.SerializeToString(),
                   response_deserializer=reply_type.FromString)
        metadata = [] if token is None else [
            ("authorization", "Bearer " + self.tokens.get(token, token))]
        try:
            reply = rpc(request, metadata=metadata, timeout=20)
            if stream:
                reply = next(iter(reply))
            return grpc.StatusCode.OK, reply
        except grpc.RpcError as e:
            return e.code(), e.details()


def job_calls(pb, job_id):
    """Every JobService RPC, on `job_id`: (method, request, reply type, stream)."""
    j = pb.j
    return [
        ("SubmitJob", j.SubmitJobRequest(), j.SubmitJobResponse, False),
        ("GetJob", j.GetJobRequest(job_id=job_id), pb.job.JobStatus, False),
        ("ListJobs", j.ListJobsRequest(), j.ListJobsResponse, False),
        ("CancelJob", j.CancelJobRequest(job_id=job_id), pb.job.JobStatus, False),
        ("ResumeJob", j.ResumeJobRequest(job_id=job_id), pb.job.JobStatus, False),
        ("ListAgents", j.ListAgentsRequest(), j.ListAgentsResponse, False),
        ("ListLogs", j.ListLogsRequest(job_id=job_id), j.ListLogsResponse, False),
        ("ReadLog", j.ReadLogRequest(job_id=job_id, path="job_result.txt"), j.ReadLogResponse,
         False),
        ("WatchJob", j.WatchJobRequest(job_id=job_id), pb.job.JobStatus, True),
    ]


def agent_calls(pb, session="n#00000000.0123456789abcdef0123456789abcdef", job_id="x"):
    a = pb.a
    return [
        ("RegisterAgent", a.RegisterAgentRequest(node_id="rogue-node", hostname="h", pid=1),
         a.RegisterAgentResponse),
        ("UnregisterAgent", a.UnregisterAgentRequest(agent_id=session), a.UnregisterAgentResponse),
        ("Heartbeat", a.HeartbeatRequest(agent_id=session), a.HeartbeatResponse),
        ("PullTasks", a.PullTasksRequest(agent_id=session, max_tasks=1), a.PullTasksResponse),
        ("ReportResults", a.ReportResultsRequest(agent_id=session), a.ReportResultsResponse),
        ("GetJobBundle", a.GetJobBundleRequest(agent_id=session, job_id=job_id),
         a.GetJobBundleResponse),
        ("ShipLogs", a.ShipLogsRequest(agent_id=session, job_id=job_id), a.ShipLogsResponse),
    ]


def unary(raw, service, calls, token):
    """{method: code} of each call made with `token`."""
    codes = {}
    for method, request, reply, *stream in calls:
        codes[method] = raw.call(service, method, request, reply, token=token,
                                 stream=bool(stream and stream[0]))[0]
    return codes


# --- the tests -----------------------------------------------------------------------------


def test_every_rpc_without_a_known_token_is_unauthenticated_and_changes_nothing(
        cluster, pb, tmp_path):
    job_id, job = submit_as(cluster, tmp_path, "alice")
    raw = Raw(cluster, pb)
    calls = job_calls(pb, job_id)
    for token in (None, "not-a-token-" + secrets.token_hex(8)):
        codes = unary(raw, "JobService", calls, token)
        assert set(codes.values()) == {grpc.StatusCode.UNAUTHENTICATED}, (token, codes)
        codes = unary(raw, "AgentService", agent_calls(pb, job_id=job_id), token)
        assert set(codes.values()) == {grpc.StatusCode.UNAUTHENTICATED}, (token, codes)
    # The CLI without a token says what to do.
    r = cluster.prs("status", job_id)
    assert r.returncode == 2 and "needs a token" in r.stderr and "PRS_TOKEN" in r.stderr, r.stderr
    st = cluster.status(job_id)
    assert st["state"] == "QUEUED" and st["owner"] == "alice", st
    listed = json.loads(cluster.prs("list", "--output", "json", token="root").stdout)
    assert [j["job_id"] for j in listed] == [job_id], listed


def test_the_wrong_role_is_permission_denied_and_changes_nothing(cluster, pb, tmp_path):
    job_id, job = submit_as(cluster, tmp_path, "alice")
    raw = Raw(cluster, pb)
    # A reader cannot submit, cancel or resume; an agent token cannot use the JobService.
    r = cluster.prs("submit", job.job_file, token="auditor")
    assert r.returncode == 2 and "PERMISSION_DENIED" not in r.stderr, r.stderr
    assert "may not call SubmitJob" in r.stderr and "submit or admin" in r.stderr, r.stderr
    r = cluster.prs("cancel", job_id, token="auditor")
    assert r.returncode == 2 and "may not call CancelJob" in r.stderr, r.stderr
    codes = unary(raw, "JobService", job_calls(pb, job_id), "agents")
    assert set(codes.values()) == {grpc.StatusCode.PERMISSION_DENIED}, codes
    # A client token cannot act as an agent, not even an admin's.
    for token in ("alice", "auditor", "root"):
        codes = unary(raw, "AgentService", agent_calls(pb, job_id=job_id), token)
        assert set(codes.values()) == {grpc.StatusCode.PERMISSION_DENIED}, (token, codes)
    # A submitter does not see the agents.
    r = cluster.prs("nodes", token="alice")
    assert r.returncode == 2 and "may not call ListAgents" in r.stderr, r.stderr
    assert cluster.status(job_id)["state"] == "QUEUED"
    listed = json.loads(cluster.prs("list", "--output", "json", token="root").stdout)
    assert [j["job_id"] for j in listed] == [job_id], listed


def test_a_job_is_its_owners_readers_see_it_admins_manage_it(cluster, tmp_path):
    job_id, job = submit_as(cluster, tmp_path, "alice")
    st = cluster.status(job_id, token="alice")
    assert st["owner"] == "alice", st
    assert "owner: alice" in cluster.prs("status", job_id, token="alice").stdout
    # bob: not his job.
    for args in (("status", job_id), ("cancel", job_id), ("resume", job_id), ("logs", job_id),
                 ("logs", job_id, "sys/master_role.txt"), ("watch", job_id)):
        r = cluster.prs(*args, token="bob", timeout=60)
        assert r.returncode != 0, (args, r.returncode, r.stderr)
        assert "belongs to 'alice'" in r.stderr, (args, r.stderr)
    r = cluster.prs("list", "--output", "json", token="bob")
    assert r.returncode == 0 and json.loads(r.stdout) == [], r.stdout
    # The auditor reads everything and changes nothing.
    assert cluster.status(job_id, token="auditor")["state"] == "QUEUED"
    r = wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(
        cluster.prs("logs", job_id, "sys/master_role.txt", token="auditor")), 10,
        message="the auditor to read master_role.txt")
    assert "owner=alice" in r.stdout, r.stdout
    r = cluster.prs("list", token="auditor")
    assert r.returncode == 0 and job_id in r.stdout and "alice" in r.stdout, r.stdout
    assert cluster.status(job_id)["state"] == "QUEUED"
    # The owner cancels; an admin resumes; job_result.txt names the owner.
    r = cluster.prs("cancel", job_id, token="alice")
    assert r.returncode == 0, r.stderr
    assert cluster.status(job_id)["state"] == "CANCELLED"
    result = (cluster.master.state_dir / "jobs" / job_id / "logs" / "job_result.txt").read_text()
    assert "Owner: alice" in result, result
    r = cluster.prs("resume", job_id, token="bob")
    assert r.returncode == 2 and "belongs to 'alice'" in r.stderr, r.stderr
    assert cluster.status(job_id)["state"] == "CANCELLED"
    r = cluster.prs("resume", job_id, token="root")
    assert r.returncode == 0, r.stderr
    assert cluster.status(job_id)["state"] == "QUEUED"


def test_sessions_and_leases_cannot_be_forged(cluster, pb, tmp_path):
    """A rogue agent identity cannot use a live session, guess a lease, fetch code of a job
    it was never given, or write the master's files or another node's."""
    raw = Raw(cluster, pb)
    a = pb.a
    # The victim: a real session of `agents`, holding a lease of alice's job.
    code, victim = raw.call("AgentService", "RegisterAgent",
                            a.RegisterAgentRequest(node_id="victim", hostname="v", pid=7),
                            a.RegisterAgentResponse, token="agents")
    assert code == grpc.StatusCode.OK, victim
    session = victim.agent_id
    assert len(session.rsplit(".", 1)[1]) == 32, session  # 128 random bits
    job_id, job = submit_as(cluster, tmp_path, "alice", n_files=4)
    got = wait_for(lambda: raw.call("AgentService", "PullTasks",
                                    a.PullTasksRequest(agent_id=session, max_tasks=1),
                                    a.PullTasksResponse, token="agents")[1].tasks, 20,
                   message="the victim session to lease a mini-batch")
    task = got[0]
    assert len(task.lease_id) == 32, task.lease_id
    # Session ids are in no listing and no log a client can read.
    nodes = cluster.prs("nodes", "--output", "json", token="root").stdout
    assert session not in nodes and "agent_id" not in nodes, nodes
    logs = cluster.master.state_dir / "jobs" / job_id / "logs"
    wait_for(lambda: (logs / "sys" / "master_role.txt").exists(), 10)
    assert session.rsplit(".", 1)[1] not in (logs / "sys" / "master_role.txt").read_text()

    # Another agent identity with the victim's session id: refused, nothing changes.
    forged = {
        "Heartbeat": (a.HeartbeatRequest(agent_id=session), a.HeartbeatResponse),
        "PullTasks": (a.PullTasksRequest(agent_id=session, max_tasks=5), a.PullTasksResponse),
        "ReportResults": (a.ReportResultsRequest(agent_id=session, results=[a.TaskResult(
            job_id=job_id, task_id=task.task_id, lease_id=task.lease_id, status=a.RUN_DONE,
            rows=b"forged\n", row_count=1, items_succeeded=1, items_total=1)]),
            a.ReportResultsResponse),
        "GetJobBundle": (a.GetJobBundleRequest(agent_id=session, job_id=job_id),
                         a.GetJobBundleResponse),
        "ShipLogs": (a.ShipLogsRequest(agent_id=session, job_id=job_id, chunks=[a.LogChunk(
            path="sys/node/victim/agent.txt", data=b"forged\n")]), a.ShipLogsResponse),
        "UnregisterAgent": (a.UnregisterAgentRequest(agent_id=session), a.UnregisterAgentResponse),
    }
    def keep_alive():  # the victim heartbeats, holding its lease (agent timeout: 3 s)
        code, reply = raw.call("AgentService", "Heartbeat", a.HeartbeatRequest(
            agent_id=session, job_id=job_id, held_lease_ids=[task.lease_id]),
            a.HeartbeatResponse, token="agents")
        assert code == grpc.StatusCode.OK, reply

    keep_alive()
    for method, (request, reply) in forged.items():
        code, details = raw.call("AgentService", method, request, reply, token="rogue")
        assert code == grpc.StatusCode.PERMISSION_DENIED, (method, code, details)
    keep_alive()
    # The rogue's own session: a guessed lease is not accepted, another job's code is not
    # given, and neither the master's files nor another node's can be written.
    code, rogue = raw.call("AgentService", "RegisterAgent",
                           a.RegisterAgentRequest(node_id="rogue-node", hostname="r", pid=9),
                           a.RegisterAgentResponse, token="rogue")
    assert code == grpc.StatusCode.OK, rogue
    code, rogue_victim = raw.call("AgentService", "RegisterAgent",
                                  a.RegisterAgentRequest(node_id="victim", hostname="v", pid=7),
                                  a.RegisterAgentResponse, token="rogue")
    assert code == grpc.StatusCode.PERMISSION_DENIED, rogue_victim
    guess = a.ReportResultsRequest(agent_id=rogue.agent_id, results=[a.TaskResult(
        job_id=job_id, task_id=task.task_id, lease_id=secrets.token_hex(16), status=a.RUN_DONE,
        rows=b"forged\n", row_count=1, items_succeeded=1, items_total=1)])
    code, reply = raw.call("AgentService", "ReportResults", guess, a.ReportResultsResponse,
                           token="rogue")
    assert code == grpc.StatusCode.OK and list(reply.accepted) == [False], reply
    code, details = raw.call("AgentService", "GetJobBundle",
                             a.GetJobBundleRequest(agent_id=rogue.agent_id, job_id=job_id),
                             a.GetJobBundleResponse, token="rogue")
    assert code == grpc.StatusCode.PERMISSION_DENIED, details
    # The victim's own shipment may not touch the master's files or another node's.
    for path in ("user/error.txt", "job_result.txt", "sys/node/rogue-node/agent.txt",
                 "user/stdout/other/process000.stdout.txt"):
        code, details = raw.call("AgentService", "ShipLogs", a.ShipLogsRequest(
            agent_id=session, job_id=job_id, chunks=[a.LogChunk(path=path, data=b"x")]),
            a.ShipLogsResponse, token="agents")
        assert code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT), \
            (path, code, details)
    keep_alive()
    # The real lease is still the victim's: its report is accepted, once.
    done = a.ReportResultsRequest(agent_id=session, results=[a.TaskResult(
        job_id=job_id, task_id=task.task_id, lease_id=task.lease_id, status=a.RUN_DONE,
        rows="".join(os.path.basename(i.decode()) + "\n" for i in task.items).encode(),
        row_count=len(task.items), items_succeeded=len(task.items),
        items_total=len(task.items))])
    code, reply = raw.call("AgentService", "ReportResults", done, a.ReportResultsResponse,
                           token="agents")
    assert code == grpc.StatusCode.OK and list(reply.accepted) == [True], reply
    out = job.output_file.read_text()
    assert "forged" not in out and out.count("\n") == len(task.items), out
    st = cluster.status(job_id)
    assert st["counts"]["mini_batches_processed"] == 1 and st["counts"]["retries"] == 0, st


def test_plaintext_and_wrong_ca_clients_fail_cleanly(cluster, bins, tmp_path):
    r = cluster.prs("list", token="root", tls_ca=False, timeout=60)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "--tls-ca" in r.stderr and "PRS_TLS_CA" in r.stderr, r.stderr
    other = tmp_path / "other-ca"
    subprocess.run([str(SOURCE_DIR / "deploy" / "make-certs.sh"), str(other), "--master-name",
                    "127.0.0.1"], check=True, capture_output=True, timeout=60)
    env = dict(os.environ, PRS_MASTER=cluster.master.address, PRS_TOKEN=cluster.tokens["root"],
               PRS_TLS_CA=str(other / "ca.pem"))
    r = subprocess.run([str(bins.prs), "list"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and "is not signed by the CA in --tls-ca ($PRS_TLS_CA)" in r.stderr, \
        r.stderr
    r = cluster.prs("list", token="root", tls_ca=True)
    assert r.returncode == 0, r.stderr


def test_a_master_reachable_from_other_hosts_needs_tls_and_tokens(bins, daemons, tmp_path):
    argv = [str(bins.master), "--listen", "0.0.0.0:0", "--state-dir", str(tmp_path / "s")]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stderr
    assert "needs TLS (--tls-cert, --tls-key) and tokens (--tokens)" in r.stderr, r.stderr
    assert "--insecure" in r.stderr, r.stderr
    insecure = start_master(bins, daemons, tmp_path, listen="0.0.0.0:0", extra=["--insecure"])
    assert "INSECURE" in insecure.log(), insecure.log()


def test_the_tokens_file_is_reloaded_on_sighup(cluster, tmp_path):
    assert cluster.prs("list", token="alice").returncode == 0
    carol = secrets.token_hex(32)
    good = cluster.tokens_file.read_text()
    lines = [l for l in good.splitlines() if not l.endswith(" alice submit")]
    lines.append("sha256:%s carol submit" % hashlib.sha256(carol.encode()).hexdigest())
    cluster.tokens_file.write_text("\n".join(lines) + "\n")
    cluster.master.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: cluster.prs("list", token=carol).returncode == 0, 10,
             message="carol's new token to be accepted after SIGHUP")
    r = cluster.prs("list", token="alice")
    assert r.returncode == 2 and "not known" in r.stderr, r.stderr
    # A broken file leaves the tokens as they were, and says so in the master's log.
    cluster.tokens_file.write_text("sha256:nothex carol submit\n")
    cluster.master.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "tokens not reloaded" in cluster.master.log(), 10)
    assert cluster.prs("list", token=carol).returncode == 0


def test_the_tour_with_tls_and_tokens(cluster, tmp_path):
    """Master, two agents, submit --wait, as the README's tour shows it with TLS and tokens."""
    cluster.agent("node-a")
    cluster.agent("node-b")
    job = make_job(tmp_path, 40, ROWS_SCRIPT, job_dir_name="tour", name="tour", node_count=2,
                   mini_batch_size=5)
    r = cluster.prs("submit", job.job_file, "--wait", token="alice", timeout=120)
    assert r.returncode == 0, r.stderr
    rows = job.output_file.read_text().splitlines()
    assert sorted(rows) == sorted(p.name for p in job.inputs), rows
    job_id = r.stdout.splitlines()[0]
    st = cluster.status(job_id, token="alice")
    assert st["state"] == "SUCCEEDED" and st["owner"] == "alice", st
    nodes = cluster.prs("nodes", token="auditor")
    assert nodes.returncode == 0 and "node-a" in nodes.stdout and "node-b" in nodes.stdout


def test_a_submitter_cannot_read_the_masters_files_through_a_list_file(cluster, pb, tmp_path):
    """The master reads list files with its own rights: a list naming its TLS key must not come
    back in the refusal, nor may an output overwrite the master's state."""
    job = make_job(tmp_path, 1, ROWS_SCRIPT, job_dir_name="leak", name="leak")
    key = cluster.tls / "master.key"
    secret_lines = [l for l in key.read_text().splitlines() if l and not l.startswith("-----")]
    spec = pb.job.JobSpec(
        name="leak", entry_script="score.py", source_directory=str(job.src_dir),
        inputs=[pb.job.Input(name="files", type="file", list_file=str(key))],
        output=str(job.output_dir), output_action="append_row",
        append_row_file_name="rows.txt", mini_batch_size=1, mini_batch_size_text="1",
        error_threshold=-1, allowed_failed_count=-1, allowed_failed_percent=100, node_count=1,
        process_count_per_node=1, run_invocation_timeout=60, run_max_try=1,
        logging_level="INFO")
    request = pb.j.SubmitJobRequest(spec=spec)
    request.snapshot.files.add(path=b"score.py", content=ROWS_SCRIPT.encode(), mode=0o644)
    raw = Raw(cluster, pb)
    code, details = raw.call("JobService", "SubmitJob", request, pb.j.SubmitJobResponse,
                             token="alice")
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    # The key is not readable by everyone: the master does not read it as a list at all.
    assert "is not readable by everyone" in details, details
    assert not any(line in details for line in secret_lines), details
    # A list anyone may read is checked, its missing lines given by number only.
    public = tmp_path / "public.txt"
    public.write_text("-----BEGIN NOT A PATH-----\nnot-a-path-either\n")
    public.chmod(0o644)
    request.spec.inputs[0].list_file = str(public)
    code, details = raw.call("JobService", "SubmitJob", request, pb.j.SubmitJobResponse,
                             token="alice")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "line 2" in details, details
    assert "not-a-path-either" not in details and "NOT A PATH" not in details, details
    # Nor may a job write into the master's state folder.
    spec = request.spec  # the request holds a copy
    spec.inputs[0].ClearField("list_file")
    spec.inputs[0].path = str(job.data_dir)
    spec.output = str(cluster.master.state_dir)
    spec.append_row_file_name = "state.db"
    code, details = raw.call("JobService", "SubmitJob", request, pb.j.SubmitJobResponse,
                             token="alice")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "state folder" in details, details
    listed = json.loads(cluster.prs("list", "--output", "json", token="root").stdout)
    assert listed == [], listed
