"""End-to-end jobs on a prs-master with prs-agents: output, counts, log tree, FIFO order."""

import math

from itest_helpers import status_of, submit, wait_for, wait_state

# One row per input: "<file name> <its content>".
ROW_SCRIPT = """\
import os

def run(mini_batch):
    print("batch of %d on %s" % (len(mini_batch), os.environ.get("PRS_NODE_ID")))
    return ["%s %s" % (os.path.basename(p), open(p).read().strip()) for p in mini_batch]
"""


def read_rows(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def assert_each_input_once(rows, job):
    """rows are "<name> <index>" lines: each of the job's inputs exactly once, nothing else."""
    assert len(rows) == job.n_files, "expected %d rows, got %d" % (job.n_files, len(rows))
    expected = {"%05d.txt %d" % (i, i) for i in range(job.n_files)}
    seen = set(rows)
    assert len(seen) == len(rows), "duplicate rows: %r" % sorted(
        r for r in seen if rows.count(r) > 1)[:10]
    assert seen == expected, "missing %r, unexpected %r" % (
        sorted(expected - seen)[:10], sorted(seen - expected)[:10])


def test_append_row_5000_files_two_agents(master, start_agent, prs, make_job, tmp_path):
    agents = [start_agent("node-a"), start_agent("node-b")]
    job = make_job(tmp_path, 5000, ROW_SCRIPT, name="append-5000", mini_batch_size=7,
                   node_count=2, process_count_per_node=2)

    job_id = submit(prs, job.job_file)
    watch = prs("watch", job_id, timeout=300)
    assert watch.returncode == 0, "prs watch: rc=%d\n%s" % (watch.returncode, watch.stderr)

    st = status_of(prs, job_id)
    batches = math.ceil(5000 / 7)
    assert st["state"] == "SUCCEEDED", st
    c = st["counts"]
    assert c["mini_batches_created"] == batches, c
    assert c["mini_batches_processed"] == batches, c
    assert c["mini_batches_failed"] == 0, c
    assert c["items_total"] == 5000, c
    assert c["items_succeeded"] == 5000, c
    assert c["items_failed"] == 0, c
    assert c["rows_written"] == 5000, c
    assert st["output_file"] == str(job.output_file), st

    assert_each_input_once(read_rows(job.output_file), job)

    # User logs: each agent writes its workers' stdout under its own work dir (the master's log
    # tree is accepted too). Both nodes worked on the job.
    master_logs = master.state_dir / "jobs" / job_id / "logs"
    for a in agents:
        candidates = [a.work_dir / "jobs" / job_id / "logs" / "user" / "stdout" / a.node_id,
                      master_logs / "user" / "stdout" / a.node_id]
        files = [f for d in candidates if d.is_dir() for f in d.glob("*.stdout.txt")]
        assert files, "no user stdout files for node %s in %s" % (a.node_id, candidates)
        text = "".join(f.read_text(errors="replace") for f in files)
        assert "batch of" in text and a.node_id in text, \
            "node %s did not run any mini-batch (stdout files %s)" % (a.node_id, files)

    # The master's log tree.
    overview = master_logs / "job_progress_overview.txt"
    wait_for(lambda: overview.exists() and "SUCCEEDED" in overview.read_text(), 10,
             message="%s to mention SUCCEEDED" % overview)
    role = master_logs / "sys" / "master_role.txt"
    assert role.is_file(), "missing %s" % role
    role_lines = [line for line in role.read_text().splitlines() if line.strip()]
    assert len(role_lines) >= 3, role_lines
    role_text = "\n".join(role_lines)
    for a in agents:
        assert a.node_id in role_text, "master_role.txt does not mention node %s:\n%s" % (
            a.node_id, role_text)


def test_summary_only_writes_no_output(master, start_agent, prs, make_job, tmp_path):
    start_agent("node-s")
    job = make_job(tmp_path, 50, ROW_SCRIPT, name="summary-only", output_action="summary_only",
                   mini_batch_size=10)

    job_id = submit(prs, job.job_file)
    st = wait_state(prs, job_id, ("SUCCEEDED", "FAILED", "CANCELLED"), 90)

    assert st["state"] == "SUCCEEDED", st
    c = st["counts"]
    assert (c["mini_batches_created"], c["mini_batches_processed"], c["mini_batches_failed"]) \
        == (5, 5, 0), c
    assert (c["items_total"], c["items_succeeded"], c["items_failed"]) == (50, 50, 0), c
    assert c["rows_written"] == 0, c
    assert st["output_file"] == "", st
    assert not job.output_file.exists(), "summary_only wrote %s" % job.output_file
    written = [p for p in job.output_dir.rglob("*") if p.is_file()] if job.output_dir.exists() else []
    assert written == [], "summary_only wrote files in the output folder: %r" % written


def test_two_jobs_back_to_back_run_in_order(master, start_agent, prs, make_job, tmp_path):
    start_agent("node-f")
    slow_script = ROW_SCRIPT.replace("def run(mini_batch):\n",
                                     "def run(mini_batch):\n    __import__('time').sleep(0.05)\n")
    first = make_job(tmp_path, 60, slow_script, job_dir_name="first", name="fifo-one",
                     mini_batch_size=5, process_count_per_node=2)
    second = make_job(tmp_path, 40, slow_script, job_dir_name="second", name="fifo-two",
                      mini_batch_size=5, process_count_per_node=2)

    id1 = submit(prs, first.job_file)
    id2 = submit(prs, second.job_file)
    assert id1 != id2

    st2 = wait_state(prs, id2, ("SUCCEEDED", "FAILED", "CANCELLED"), 120)
    st1 = wait_state(prs, id1, ("SUCCEEDED", "FAILED", "CANCELLED"), 30)
    assert st1["state"] == "SUCCEEDED", st1
    assert st2["state"] == "SUCCEEDED", st2
    assert st1["counts"]["items_succeeded"] == 60 and st1["counts"]["rows_written"] == 60, st1
    assert st2["counts"]["items_succeeded"] == 40 and st2["counts"]["rows_written"] == 40, st2
    assert_each_input_once(read_rows(first.output_file), first)
    assert_each_input_once(read_rows(second.output_file), second)

    # FIFO: the second job started after the first.
    assert 0 < st1["start_time_ms"] <= st2["start_time_ms"], (st1, st2)
    assert st1["submit_time_ms"] <= st2["submit_time_ms"], (st1, st2)
