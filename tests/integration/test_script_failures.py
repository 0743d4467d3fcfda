"""Entry scripts that cannot run, and run() calls that raise: job failure, retries, counts."""

from itest_helpers import submit, wait_for, wait_state

NO_RUN_SCRIPT = """\
def init():
    pass
"""

RAISING_SCRIPT = """\
import os

LOG = os.environ["ATTEMPT_LOG"]

def run(mini_batch):
    rows = []
    for p in mini_batch:
        name = os.path.basename(p)
        with open(LOG, "a") as f:
            f.write(name + "\\n")
        n = int(open(p).read())
        if n % 5 == 0:
            raise ValueError("input %s is bad" % name)
        rows.append("%s %d" % (name, n))
    return rows
"""


def test_script_without_run_fails_the_job(master, start_agent, prs, make_job, tmp_path):
    start_agent("node-n")
    job = make_job(tmp_path, 10, NO_RUN_SCRIPT, name="no-run", mini_batch_size=2,
                   process_count_per_node=2)
    job_id = submit(prs, job.job_file)

    st = wait_state(prs, job_id, ("SUCCEEDED", "FAILED", "CANCELLED"), 30)
    assert st["state"] == "FAILED", st
    assert "run(mini_batch)" in st["reason"], st["reason"]
    assert st["counts"]["items_succeeded"] == 0, st

    w = prs("watch", job_id, timeout=30)
    assert w.returncode != 0
    assert "run(mini_batch)" in w.stderr, w.stderr

    result = master.state_dir / "jobs" / job_id / "logs" / "job_result.txt"
    wait_for(lambda: result.exists(), 10, message=str(result))
    text = result.read_text()
    assert "FAILED" in text and "run(mini_batch)" in text, text


def test_run_raising_is_retried_then_counted_failed(master, start_agent, prs, make_job, tmp_path):
    start_agent("node-r")
    attempts = tmp_path / "attempts.txt"
    job = make_job(tmp_path, 20, RAISING_SCRIPT, name="raises-some", mini_batch_size=1,
                   process_count_per_node=2, run_max_try=2, error_threshold=-1,
                   environment={"python": "/usr/bin/python3",
                                "variables": {"ATTEMPT_LOG": str(attempts)}})
    job_id = submit(prs, job.job_file)

    st = wait_state(prs, job_id, ("SUCCEEDED", "FAILED", "CANCELLED"), 90)
    assert st["state"] == "SUCCEEDED", st
    c = st["counts"]
    bad = [i for i in range(20) if i % 5 == 0]
    assert (c["mini_batches_created"], c["mini_batches_processed"]) == (20, 20), c
    assert c["mini_batches_failed"] == len(bad), c
    assert (c["items_total"], c["items_succeeded"], c["items_failed"]) == (20, 16, 4), c
    assert c["rows_written"] == 16, c
    assert c["retries"] == len(bad), c

    # Each bad input was tried run_max_try = 2 times in all, each good one once.
    tries = {}
    for name in attempts.read_text().split():
        tries[name] = tries.get(name, 0) + 1
    assert tries == {"%05d.txt" % i: (2 if i in bad else 1) for i in range(20)}, tries

    rows = sorted(job.output_file.read_text().splitlines())
    assert rows == sorted("%05d.txt %d" % (i, i) for i in range(20) if i not in bad), rows


def test_run_traceback_reaches_the_log_tree(master, start_agent, prs, make_job, tmp_path):
    """The full traceback of a run() exception is in a file of the job's log tree (on the master,
    or under the agent's work dir), as job_result.txt promises (logs/user/error/...)."""
    agent = start_agent("node-t")
    attempts = tmp_path / "attempts.txt"
    job = make_job(tmp_path, 5, RAISING_SCRIPT, name="traceback", mini_batch_size=5,
                   run_max_try=1, error_threshold=-1,
                   environment={"python": "/usr/bin/python3",
                                "variables": {"ATTEMPT_LOG": str(attempts)}})
    job_id = submit(prs, job.job_file)
    st = wait_state(prs, job_id, ("SUCCEEDED", "FAILED", "CANCELLED"), 60)
    # Nothing succeeded: the job fails whatever error_threshold tolerates.
    assert st["state"] == "FAILED" and st["counts"]["items_failed"] == 5, st
    assert st["reason"].startswith("no input succeeded: all 5 items failed"), st

    trees = [master.state_dir / "jobs" / job_id / "logs", agent.work_dir / "jobs" / job_id / "logs"]

    def files_with_traceback():
        found = []
        for tree in trees:
            for f in tree.rglob("*"):
                if f.is_file():
                    text = f.read_text(errors="replace")
                    if ("Traceback" in text and "input 00000.txt is bad" in text
                            and "raise ValueError" in text):
                        found.append(f)
        return found

    try:
        wait_for(files_with_traceback, 10, message="a log file with the run() traceback")
    except AssertionError:
        listing = sorted(str(f) for tree in trees for f in tree.rglob("*") if f.is_file())
        raise AssertionError("no file of the log trees holds the traceback of run(); files: %s"
                             % "\n  ".join(listing)) from None
    result = (trees[0] / "job_result.txt").read_text()
    assert "ValueError: input 00000.txt is bad" in result, result
    # The status names the file with the first traceback; it is in the master's tree.
    first_log = st["first_error_log"]
    assert first_log.startswith("user/error/node-t/process") and first_log.endswith(".txt"), st
    assert first_log in st["first_error"], st
    assert "Traceback" in wait_for(lambda: (trees[0] / first_log).is_file()
                                   and (trees[0] / first_log).read_text(errors="replace"), 10,
                                   message="the first error's file in the master's tree")
