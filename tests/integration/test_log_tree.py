"""The troubleshooting log tree: every file reaches the master from agents that share no
filesystem with it (separate --work-dir folders), and holds what logs/readme.txt says."""

import csv
import json
import os

import grpc

from itest_helpers import load_protos, submit, wait_for, wait_state

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")

SCRIPT = r'''
import os, sys, time
from azureml_user.parallel_run import EntryScript

def init():
    EntryScript().logger.info("init on %s", EntryScript().node_id)

def run(mini_batch):
    log = EntryScript().logger
    out = []
    for path in mini_batch:
        name = os.path.basename(path)
        n = int(open(path).read())
        print("printed %s" % name)
        log.debug("debug line %s", name)
        log.info("info line %s", name)
        log.warning("warning line %s", name)
        if n % 10 == 3:
            raise ValueError("bad input %s" % name)
        out.append("%s %s" % (name, os.environ.get("CUDA_VISIBLE_DEVICES", "unset")))
        time.sleep(0.02)
    return out
'''


def read_tree(log_dir, rel):
    return (log_dir / rel).read_text()


def test_log_tree_from_two_agents(master, start_agent, prs, make_job, tmp_path):
    for node in ("node-a", "node-b"):
        start_agent(node)
    r = prs("nodes", "--output", "json")
    assert r.returncode == 0, r.stderr
    nodes = json.loads(r.stdout)
    assert [n["node_id"] for n in nodes] == ["node-a", "node-b"], nodes
    assert all(n["pid"] > 0 and n["last_seen_ms_ago"] >= 0 and n["job_id"] == "" for n in nodes)
    r = prs("nodes")
    assert r.returncode == 0 and "node-a" in r.stdout and "NODE" in r.stdout, r
    job = make_job(tmp_path, 40, SCRIPT, name="log-tree", mini_batch_size=1, node_count=2,
                   process_count_per_node=2, run_max_try=2, error_threshold=-1,
                   logging_level="DEBUG", resource_monitor_interval=1)
    job_id = submit(prs, job.job_file)
    st = wait_state(prs, job_id, TERMINAL, 120)
    assert st["state"] == "SUCCEEDED", st
    assert st["counts"]["items_failed"] == 4 and st["counts"]["items_succeeded"] == 36, st

    logs = master.state_dir / "jobs" / job_id / "logs"
    readme = read_tree(logs, "readme.txt")
    for named in ("job_result.txt", "user/error.txt", "user/error/<node>/<process>.txt",
                  "sys/node/<node>/<process>.txt", "perf/"):
        assert named in readme, named

    # The agents' files arrive by shipping (each agent has its own --work-dir).
    def shipped():
        nodes = {p.name for p in (logs / "user" / "stdout").iterdir()} \
            if (logs / "user" / "stdout").is_dir() else set()
        return nodes == {"node-a", "node-b"} and (logs / "user" / "error.txt").exists()
    wait_for(shipped, 20, message="both agents' logs on the master")

    # What the script printed, in the stdout files of both nodes, every input once.
    printed = []
    for f in (logs / "user" / "stdout").rglob("*.stdout.txt"):
        printed += [l for l in f.read_text().splitlines() if l.startswith("printed ")]
    wait_for(lambda: len({l for f in (logs / "user" / "stdout").rglob("*.stdout.txt")
                          for l in f.read_text().splitlines() if l.startswith("printed ")}) == 40,
             20, message="all printed lines shipped")

    # EntryScript().logger at DEBUG: every level is in the entry_script_log files.
    def logged():
        text = "".join(f.read_text() for f in (logs / "user" / "entry_script_log").rglob("*.log.txt"))
        return all(s in text for s in ("|DEBUG|", "|INFO|", "|WARNING|", "debug line 00001.txt",
                                       "init on node-"))
    wait_for(logged, 20, message="entry script log lines at every level")

    # Tracebacks in user/error/<node>/<process>.txt, naming the failing input.
    def tracebacks():
        text = "".join(f.read_text() for f in (logs / "user" / "error").rglob("*.txt"))
        return ("Traceback (most recent call last)" in text and "ValueError: bad input 00003.txt" in text
                and "/00003.txt" in text)
    wait_for(tracebacks, 20, message="tracebacks on the master")

    # user/error.txt: the distinct errors with counts (4 inputs x 2 tries each).
    summary = read_tree(logs, "user/error.txt")
    for n in (3, 13, 23, 33):
        assert "2 x ValueError: bad input %05d.txt" % n in summary, summary
    assert "first:" in summary and "traceback in user/error/" in summary

    # Per-process records: picked and completed lines with their counts.
    def records():
        text = "".join(f.read_text() for f in (logs / "sys" / "node").rglob("process*.txt"))
        return (text.count(" completed: ") == 44 and text.count(" picked: ") == 44
                and "items_total=1 items_succeeded=0 items_failed=1" in text
                and "items_total=1 items_succeeded=1 items_failed=0" in text and "ip=" in text)
    wait_for(records, 20, message="per-process records of 44 attempts (36 + 4 inputs x 2 tries)")
    wait_for(lambda: all(s in read_tree(logs, "sys/node/node-a/agent.txt") for s in (
        "worker process000 started pid=", " ended: exit code 0", "stopped on this node")),
        20, message="agent.txt with the workers' starts and exits")

    # Resource monitor: headers and at least one row each.
    for node in ("node-a", "node-b"):
        perf = logs / "perf" / node
        wait_for(lambda: all((perf / f).exists() for f in (
            "node_resource_usage.csv", "processes_resource_usage.csv", "node_disk_usage.csv")),
            20, message="perf files of %s" % node)
        with open(perf / "node_resource_usage.csv") as f:
            rows = list(csv.reader(f))
        assert rows[0][:3] == ["Utc Time", "Cpu Percent", "Memory Total (MB)"], rows[0]
        assert "# of TCP Connections" in rows[0] and len(rows) >= 2
        assert len(rows[1]) == len(rows[0]) and float(rows[1][2]) > 0
        with open(perf / "processes_resource_usage.csv") as f:
            rows = list(csv.reader(f))
        assert rows[0][:3] == ["Utc Time", "Pid", "Process Name"] and len(rows) >= 2, rows
        assert rows[1][2].startswith("process")
        with open(perf / "node_disk_usage.csv") as f:
            rows = list(csv.reader(f))
        assert "Mount Point" in rows[0] and len(rows) >= 2
        listings = list((perf / "os").rglob("processes_*"))
        assert listings and "PID" in listings[0].read_text().splitlines()[0]

    # prs logs: the tree, one file, and --errors.
    r = prs("logs", job_id)
    assert r.returncode == 0 and "user/error.txt" in r.stdout and "readme.txt" in r.stdout, r
    r = prs("logs", job_id, "user/error.txt")
    assert r.returncode == 0 and r.stdout == summary
    r = prs("logs", job_id, "--errors")
    assert r.returncode == 0 and "2 x ValueError" in r.stdout and "Traceback" in r.stdout, r.stdout
    r = prs("logs", job_id, "sys/master_role.txt", "--follow", timeout=30)
    assert r.returncode == 0 and "job SUCCEEDED" in r.stdout, r  # ends once the job has ended
    r = prs("logs", job_id, "../../state.db")
    assert r.returncode != 0 and "leaves the job's log tree" in r.stderr, r.stderr


def test_gpu_assignment_one_gpu_two_processes(master, start_agent, prs, make_job, tmp_path):
    start_agent("node-g", extra=("--gpus", "1"))
    job = make_job(tmp_path, 30, SCRIPT.replace("n % 10 == 3", "False"), name="gpus",
                   mini_batch_size=1, process_count_per_node=2)
    job_id = submit(prs, job.job_file)
    st = wait_state(prs, job_id, TERMINAL, 60)
    assert st["state"] == "SUCCEEDED", st
    devices = {line.split(" ", 1)[1] for line in job.output_file.read_text().splitlines()}
    # More workers than GPUs: they share it, none is left without (tests/integration/test_gpus.py).
    assert devices == {"0"}, devices
    agent_txt = (master.state_dir / "jobs" / job_id / "logs" / "sys" / "node" / "node-g" / "agent.txt")
    wait_for(lambda: agent_txt.exists() and "process001 started" in agent_txt.read_text(), 20,
             message="agent.txt shipped")
    text = agent_txt.read_text()
    assert "worker process000 started pid=" in text and "CUDA_VISIBLE_DEVICES=0" in text, text
    line1 = [l for l in text.splitlines() if "worker process001 started" in l][0]
    assert line1.endswith("CUDA_VISIBLE_DEVICES=0"), line1


def test_shipping_refuses_paths_outside_the_tree(master, prs, make_job, tmp_path):
    """An agent's shipment writes only its own node's files of the tree: no path outside it,
    no file of the master's (job_result.txt, user/error.txt), no other node's."""
    pb = load_protos(tmp_path / "pb")
    channel = grpc.insecure_channel(master.address)

    def call(method, request, reply):
        return channel.unary_unary("/prs.v1.AgentService/" + method,
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=reply.FromString)(request, timeout=10)

    a = pb.a
    session = call("RegisterAgent", a.RegisterAgentRequest(node_id="node-s", hostname="h", pid=1),
                   a.RegisterAgentResponse).agent_id
    job = make_job(tmp_path, 2, "def run(b):\n    return b\n", name="ship-paths")
    job_id = submit(prs, job.job_file)
    wait_for(lambda: call("PullTasks", a.PullTasksRequest(agent_id=session, max_tasks=5),
                          a.PullTasksResponse).tasks, 20, message="the session to get the job")

    def ship(path):
        return call("ShipLogs", a.ShipLogsRequest(agent_id=session, job_id=job_id, chunks=[
            a.LogChunk(path=path, data=b"evil\n")]), a.ShipLogsResponse)

    logs = master.state_dir / "jobs" / job_id / "logs"
    for bad, code in (("../../escape.txt", grpc.StatusCode.INVALID_ARGUMENT),
                      ("/etc/passwd-copy", grpc.StatusCode.INVALID_ARGUMENT),
                      ("user/../../escape.txt", grpc.StatusCode.INVALID_ARGUMENT),
                      ("job_result.txt", grpc.StatusCode.INVALID_ARGUMENT),
                      ("user//x.txt", grpc.StatusCode.INVALID_ARGUMENT),
                      ("user/error.txt", grpc.StatusCode.PERMISSION_DENIED),
                      ("user/stdout/node-t/x.txt", grpc.StatusCode.PERMISSION_DENIED),
                      ("sys/node/other/agent.txt", grpc.StatusCode.PERMISSION_DENIED)):
        try:
            ship(bad)
            raise AssertionError("ShipLogs accepted %r" % bad)
        except grpc.RpcError as e:
            assert e.code() == code, (bad, e)
            assert "log path" in e.details(), e.details()
    assert not (master.state_dir / "jobs" / "escape.txt").exists()
    assert not (master.state_dir / "escape.txt").exists()
    assert not (logs / "user" / "error.txt").exists() or "evil" not in (
        logs / "user" / "error.txt").read_text()
    try:  # a bounded amount at a time
        call("ShipLogs", a.ShipLogsRequest(agent_id=session, job_id=job_id, chunks=[
            a.LogChunk(path="user/stdout/node-s/big.txt", data=b"x" * (17 << 20))]),
            a.ShipLogsResponse)
        raise AssertionError("ShipLogs accepted 17 MiB")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
        assert "a ShipLogs request of 17825" in e.details(), e.details()
        assert "bytes is over its limit of 17825792 bytes (docs/limits.md)" in e.details(), e
    assert not (logs / "user" / "stdout" / "node-s" / "big.txt").exists()
    ship("user/stdout/node-s/extra.txt")  # the node's own file: accepted
    assert (logs / "user" / "stdout" / "node-s" / "extra.txt").read_text() == "evil\n"


def test_prs_top_shows_a_running_job_and_its_node(master, start_agent, prs, make_job, tmp_path):
    start_agent("node-top")
    job = make_job(tmp_path, 20, "import time\n\ndef run(mini_batch):\n    time.sleep(0.2)\n"
                   "    return [p for p in mini_batch]\n", name="top-job", mini_batch_size=1,
                   process_count_per_node=2)
    job_id = submit(prs, job.job_file)
    wait_for(lambda: json.loads(prs("status", job_id, "--output", "json").stdout)["state"]
             == "RUNNING", 30, message="the job to run")
    for bad in ("0.01", "1e9", "nan"):
        r = prs("top", "-n", "1", "--interval", bad)
        assert r.returncode == 2 and "give seconds from 0.2" in r.stderr, (bad, r.stderr)
    r = prs("top", "-n", "2", "--interval", "0.2")
    assert r.returncode == 0, r.stderr
    frames = r.stdout.split("prs top  ")
    assert len(frames) == 3, r.stdout  # two frames, one after the other (not a terminal)
    last = frames[-1]
    assert "JOBS 1 running or queued" in last, last
    row = [line for line in last.splitlines() if line.startswith(job_id)]
    assert row and "RUNNING" in row[0] and "/20" in row[0] and "%" in row[0], last
    node = [line for line in last.splitlines() if line.startswith("node-top")]
    assert node and job_id in node[0], last
    # Busy workers, as the node's heartbeat says (every 0.5 s here).
    wait_for(lambda: [n["busy_workers"] for n in json.loads(prs("nodes", "--output", "json").stdout)]
             in ([1], [2]), 10, message="the node's busy workers in prs nodes")
    # And what each runs: this job's mini-batches, on its worker processes.
    running = wait_for(lambda: json.loads(prs("nodes", "--output", "json").stdout)[0]["running"],
                       10, message="the node's running mini-batches in prs nodes")
    assert {r["job_id"] for r in running} == {job_id}, running
    assert all(0 <= r["task_id"] < 20 and r["running_ms"] >= 0 for r in running), running
    assert {r["process_name"] for r in running} <= {"", "process000", "process001"}, running
    st = wait_state(prs, job_id, TERMINAL, 60)
    assert st["state"] == "SUCCEEDED", st
