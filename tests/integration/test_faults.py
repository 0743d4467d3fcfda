"""Fault tolerance: agents, workers and the master killed or stopped mid-job.

Every test runs real prs-master / prs-agent processes on loopback (the master has
--heartbeat-interval 0.5 --agent-timeout 3, see conftest.start_master) and checks the outcome:
the output file holds each input exactly once and nothing else (by the input's base name at the
start of each row), the job's state and counts, and the error text in the status and log files.

State changes are awaited by polling with deadlines. The only sleeps are the fault itself
(SIGSTOP lasting longer than the agent timeout) and poll intervals.

`test_chaos` is marked `chaos`; PRS_CHAOS_FILES (default 4000) sets its input count and
PRS_CHAOS_SEED its random seed.
"""

import collections
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest

from itest_helpers import (PYTHON, STOP_GRACE, job_worker_pids, status_of, submit, wait_for, wait_state,
                           workers_under)

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")

# One row per input: "<base name> <content>". ITEST_SLEEP seconds per input; an input whose
# content is ITEST_POISON triggers ITEST_POISON_ACTION (sleep | raise | kill).
SCRIPT = """\
import os
import signal
import time

SLEEP = float(os.environ.get("ITEST_SLEEP", "0"))
POISON = set(os.environ.get("ITEST_POISON", "").split(","))
ACTION = os.environ.get("ITEST_POISON_ACTION", "")


def run(mini_batch):
    rows = []
    for p in mini_batch:
        name = os.path.basename(p)
        content = open(p).read().strip()
        if content in POISON:
            if ACTION == "sleep":
                time.sleep(120)
            elif ACTION == "raise":
                raise ValueError("poison input %s cannot be scored" % name)
            elif ACTION == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
        if SLEEP:
            time.sleep(SLEEP)
        rows.append("%s %s" % (name, content))
    return rows
"""

INIT_RAISES_SCRIPT = """\
def init():
    raise RuntimeError("model checkpoint is corrupt (init marker)")


def run(mini_batch):
    return [p for p in mini_batch]
"""


# --- helpers -------------------------------------------------------------------------------


def env(sleep=0.0, poison=(), action=""):
    return {"python": PYTHON,
            "variables": {"ITEST_SLEEP": str(sleep),
                          "ITEST_POISON": ",".join(str(p) for p in poison),
                          "ITEST_POISON_ACTION": action}}


def check_rows(job, missing=()):
    """The output holds one row "<name> <index>" per input, except the indexes in `missing`,
    each exactly once, and nothing else. Returns the number of rows."""
    rows = job.output_file.read_text(encoding="utf-8").splitlines() \
        if job.output_file.exists() else []
    names = [r.split(" ", 1)[0] for r in rows]
    counts = collections.Counter(names)
    dups = sorted(n for n, c in counts.items() if c > 1)
    expected = {"%05d.txt" % i for i in range(job.n_files) if i not in set(missing)}
    absent = sorted(expected - set(counts))
    extra = sorted(set(counts) - expected)
    malformed = [r for r in rows
                 if not re.fullmatch(r"(\d{5})\.txt (\d+)", r) or int(r[:5]) != int(r.split()[1])]
    assert not dups and not absent and not extra and not malformed, (
        "%s: %d rows for %d expected inputs; %d duplicated %r; %d missing %r; %d unexpected %r; "
        "%d malformed %r" % (job.output_file, len(rows), len(expected), len(dups), dups[:10],
                             len(absent), absent[:10], len(extra), extra[:10], len(malformed),
                             malformed[:5]))
    assert len(rows) == len(expected)
    return len(rows)


def try_status(prs, job_id):
    """`prs status` parsed, or None while the master is unreachable."""
    try:
        r = prs("status", job_id, "--output", "json", timeout=20)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


def wait_processed(prs, job_id, at_least, timeout):
    """Waits until the job (still active) has processed `at_least` mini-batches."""
    last = {}

    def enough():
        st = last["st"] = status_of(prs, job_id)
        assert st["state"] not in TERMINAL, \
            "job %s ended before %d mini-batches were processed: %s" % (job_id, at_least, st)
        return st if st["counts"]["mini_batches_processed"] >= at_least else None

    try:
        return wait_for(enough, timeout, interval=0.1,
                        message="job %s to process %d mini-batches" % (job_id, at_least))
    except AssertionError as e:
        raise AssertionError("%s; last status %s" % (e, last.get("st"))) from None


def master_log_dir(master, job_id):
    return master.state_dir / "jobs" / job_id / "logs"


def wait_file_mentions(path, *needles, timeout=15):
    """Waits until the file at `path` contains every needle; returns its text."""
    last = {"text": ""}

    def has_all():
        last["text"] = path.read_text(errors="replace") if path.exists() else ""
        return all(n in last["text"] for n in needles) and last["text"]

    try:
        return wait_for(has_all, timeout, interval=0.2)
    except AssertionError:
        raise AssertionError("%s does not mention %r; it holds:\n%s" % (
            path, [n for n in needles if n not in last["text"]], last["text"][-4000:])) from None


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def assert_workers_die(agent, timeout=10):
    """The workers of a SIGKILLed agent die by themselves (PDEATHSIG); killed here if not."""
    try:
        wait_for(lambda: not workers_under(agent.work_dir), timeout,
                 message="the workers of killed agent %s to exit" % agent.node_id)
    except AssertionError:
        left = workers_under(agent.work_dir)
        kill_all(left)
        raise AssertionError("worker processes %r outlived agent %s (SIGKILL); PDEATHSIG did "
                             "not reach them" % (left, agent.node_id)) from None


# --- tests ---------------------------------------------------------------------------------


def test_agent_sigkill_mid_job(master, start_agent, prs, make_job, tmp_path):
    agents = [start_agent("node-k1"), start_agent("node-k2")]
    job = make_job(tmp_path, 400, SCRIPT, name="agent-kill", mini_batch_size=5, node_count=2,
                   process_count_per_node=1, environment=env(sleep=0.02))
    job_id = submit(prs, job.job_file)

    wait_processed(prs, job_id, 10, 60)
    victim = agents[0]
    wait_for(lambda: workers_under(victim.work_dir), 10,
             message="worker processes of %s" % victim.node_id)
    victim.kill()
    assert_workers_die(victim)

    st = wait_state(prs, job_id, TERMINAL, 90)
    assert st["state"] == "SUCCEEDED", st
    c = st["counts"]
    assert (c["mini_batches_created"], c["mini_batches_processed"], c["mini_batches_failed"]) \
        == (80, 80, 0), c
    assert (c["items_total"], c["items_succeeded"], c["items_failed"], c["rows_written"]) \
        == (400, 400, 0, 400), c
    # The killed agent held leases (a running and a prefetched mini-batch): they were tried again.
    assert c["retries"] >= 1, c
    check_rows(job)

    role = wait_file_mentions(master_log_dir(master, job_id) / "sys" / "master_role.txt",
                              "agent lost")
    lost = [line for line in role.splitlines() if "agent lost" in line]
    assert any("node=%s" % victim.node_id in line for line in lost), lost
    assert not any("node=%s" % agents[1].node_id in line for line in lost), lost


def test_master_sigkill_and_restart_on_same_port(master, restart_master, start_agent, prs,
                                                 make_job, tmp_path):
    agents = [start_agent("node-m1"), start_agent("node-m2")]
    job = make_job(tmp_path, 400, SCRIPT, name="master-kill", mini_batch_size=5, node_count=2,
                   process_count_per_node=1, environment=env(sleep=0.025))
    job_id = submit(prs, job.job_file)

    before = wait_processed(prs, job_id, 10, 60)["counts"]["mini_batches_processed"]
    pids_before = wait_for(lambda: (lambda p: p if len(p) == 2 else None)(job_worker_pids(job_id)),
                           10, message="one worker per agent")
    master.kill()
    new_master = restart_master()
    assert new_master.pid != master.pid

    # The agents find the new master by themselves (no agent is restarted here) ...
    for a in agents:
        wait_for(lambda: a.log().count("registered agent=") >= 2, 30,
                 message="agent %s to register with the restarted master" % a.node_id)
        assert a.alive(), "agent %s died: %s" % (a.node_id, a.log()[-3000:])

    # ... and go on with the job in the workers they already had.
    st = wait_processed(prs, job_id, before + 6, 60)
    pids_after = job_worker_pids(job_id)
    assert st["state"] == "RUNNING", st
    assert sorted(pids_after) == sorted(pids_before), \
        "the agents restarted their workers after the master restart: before %r, after %r" % (
            sorted(pids_before), sorted(pids_after))

    st = wait_state(prs, job_id, TERMINAL, 90)
    assert st["state"] == "SUCCEEDED", st
    c = st["counts"]
    assert (c["mini_batches_created"], c["mini_batches_processed"], c["mini_batches_failed"]) \
        == (80, 80, 0), c
    assert (c["items_total"], c["items_succeeded"], c["items_failed"], c["rows_written"]) \
        == (400, 400, 0, 400), c
    check_rows(job)


def test_agent_sigstop_longer_than_timeout(master, start_agent, prs, make_job, tmp_path):
    agents = [start_agent("node-s1"), start_agent("node-s2")]
    job = make_job(tmp_path, 600, SCRIPT, name="agent-stop", mini_batch_size=5, node_count=2,
                   process_count_per_node=1, environment=env(sleep=0.025))
    job_id = submit(prs, job.job_file)
    role = master_log_dir(master, job_id) / "sys" / "master_role.txt"

    wait_processed(prs, job_id, 10, 60)
    victim = agents[0]
    stopped_at = time.monotonic()
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        # The fault: stopped for ~5 s, longer than --agent-timeout 3; the master must notice.
        wait_file_mentions(role, "agent lost", "node=%s" % victim.node_id, timeout=15)
        time.sleep(max(0.0, 5.0 - (time.monotonic() - stopped_at)))
        st = status_of(prs, job_id)
        assert st["state"] == "RUNNING", "the job must still be running at SIGCONT: %s" % st
    finally:
        os.kill(victim.pid, signal.SIGCONT)

    # Its results from the old session are refused, and it comes back as a new session.
    wait_for(lambda: "rejected as stale" in victim.log()
             or victim.log().count("registered agent=") >= 2, 30,
             message="agent %s to have its stale results rejected or to register again"
             % victim.node_id)

    st = wait_state(prs, job_id, TERMINAL, 90)
    assert st["state"] == "SUCCEEDED", st
    c = st["counts"]
    assert (c["mini_batches_created"], c["mini_batches_processed"], c["mini_batches_failed"]) \
        == (120, 120, 0), c
    assert (c["items_total"], c["items_succeeded"], c["items_failed"], c["rows_written"]) \
        == (600, 600, 0, 600), c
    assert c["retries"] >= 1, c
    check_rows(job)
    assert victim.alive(), "the stopped agent exited: %s" % victim.log()[-3000:]


def test_run_invocation_timeout(master, start_agent, prs, make_job, tmp_path):
    start_agent("node-t")
    job = make_job(tmp_path, 30, SCRIPT, name="run-timeout", mini_batch_size=5,
                   process_count_per_node=2, run_invocation_timeout=2, run_max_try=2,
                   error_threshold=10, environment=env(poison=[12], action="sleep"))
    job_id = submit(prs, job.job_file)

    st = wait_state(prs, job_id, TERMINAL, 60)
    assert st["state"] == "SUCCEEDED", st
    c = st["counts"]
    assert (c["mini_batches_created"], c["mini_batches_processed"], c["mini_batches_failed"]) \
        == (6, 6, 1), c
    assert (c["items_total"], c["items_succeeded"], c["items_failed"], c["rows_written"]) \
        == (30, 25, 5, 25), c
    assert c["retries"] == 1, c
    check_rows(job, missing=range(10, 15))

    logs = master_log_dir(master, job_id)
    result = wait_file_mentions(logs / "job_result.txt", "SUCCEEDED")
    role = wait_file_mentions(logs / "sys" / "master_role.txt", "failed after 2 tries")
    assert "RUN_TIMEOUT" in result or "RUN_TIMEOUT" in role, (result, role)
    failed = [line for line in role.splitlines() if "failed after 2 tries" in line]
    assert len(failed) == 1 and "RUN_TIMEOUT" in failed[0], failed
    # Both tries of mini-batch 2 timed out.
    tries = [line for line in role.splitlines() if "mini-batch 2 try 1 failed" in line]
    assert len(tries) == 1 and "RUN_TIMEOUT" in tries[0], role
    # The timed-out workers were killed: nothing still sleeps on the poison input.
    wait_for(lambda: not job_worker_pids(job_id), 20,
             message="the workers of %s to exit" % job_id)


def test_error_threshold_exceeded(master, start_agent, prs, make_job, tmp_path):
    start_agent("node-e")
    bad = [3, 7, 11, 15, 19]
    job = make_job(tmp_path, 20, SCRIPT, name="threshold", mini_batch_size=1,
                   process_count_per_node=1, run_max_try=1, error_threshold=2,
                   environment=env(poison=bad, action="raise"))
    job_id = submit(prs, job.job_file)

    wait_state(prs, job_id, TERMINAL, 60)
    st = status_of(prs, job_id)
    assert st["state"] == "FAILED", st
    reason = st["reason"]
    assert "error_threshold exceeded" in reason, reason
    assert re.search(r"poison input 000\d\d\.txt cannot be scored", reason), reason
    c = st["counts"]
    assert 3 <= c["items_failed"] <= 5, c
    assert c["mini_batches_failed"] == c["items_failed"], c
    assert c["retries"] == 0, c
    # Rows written so far are good inputs, each once.
    rows = job.output_file.read_text().splitlines() if job.output_file.exists() else []
    names = [r.split(" ", 1)[0] for r in rows]
    assert len(names) == len(set(names)) == c["rows_written"], (names, c)
    assert not set(names) & {"%05d.txt" % i for i in bad}, names

    result = wait_file_mentions(master_log_dir(master, job_id) / "job_result.txt", "FAILED",
                                "error_threshold exceeded")
    assert "cannot be scored" in result, result


def test_worker_killed_by_poison_input(master, start_agent, prs, make_job, tmp_path):
    start_agent("node-p")
    job = make_job(tmp_path, 20, SCRIPT, name="poison-kill", mini_batch_size=5,
                   process_count_per_node=2, run_max_try=2, error_threshold=-1,
                   environment=env(poison=[7], action="kill"))
    job_id = submit(prs, job.job_file)

    st = wait_state(prs, job_id, TERMINAL, 60)
    assert st["state"] == "SUCCEEDED", st
    c = st["counts"]
    assert (c["mini_batches_created"], c["mini_batches_processed"], c["mini_batches_failed"]) \
        == (4, 4, 1), c
    assert (c["items_total"], c["items_succeeded"], c["items_failed"], c["rows_written"]) \
        == (20, 15, 5, 15), c
    assert c["retries"] == 1, c
    check_rows(job, missing=range(5, 10))

    role = wait_file_mentions(master_log_dir(master, job_id) / "sys" / "master_role.txt",
                              "WORKER_DIED", "signal 9", "failed after 2 tries")
    failed = [line for line in role.splitlines() if "failed after 2 tries" in line]
    assert len(failed) == 1 and "mini-batch 1 " in failed[0] and "WORKER_DIED" in failed[0] \
        and "signal 9" in failed[0], failed

    # One row per attempt in the attempt report: 3 mini-batches done once, mini-batch 1 died twice.
    import csv
    report = master_log_dir(master, job_id) / "sys" / "job_report" / "processed_mini-batches.csv"
    rows = wait_for(lambda: (lambda r: r if len(r) == 5 else None)(
        list(csv.DictReader(report.open())) if report.exists() else []), 20,
        message="5 attempts in processed_mini-batches.csv")
    by_status = {}
    for r in rows:
        by_status.setdefault(r["Status"], []).append(r)
    assert len(by_status["RUN_DONE"]) == 3, rows
    died = by_status["WORKER_DIED"]
    assert [(r["Mini-batch Id"], r["Try"]) for r in died] == [("1", "1"), ("1", "2")], died
    assert all(r["Node"] == "node-p" and r["Items Total"] == "5" and r["Items Failed"] == "5"
               and "signal 9" in r["Error"] and r["Process"].startswith("process") for r in died)
    assert all(r["Items Succeeded"] == "5" and float(r["Elapsed Seconds"]) >= 0
               for r in by_status["RUN_DONE"]), by_status["RUN_DONE"]


def test_init_fails_on_every_node(master, start_agent, prs, make_job, tmp_path):
    start_agent("node-i")
    job = make_job(tmp_path, 10, INIT_RAISES_SCRIPT, name="init-fails", mini_batch_size=2,
                   process_count_per_node=2, environment=env())
    job_id = submit(prs, job.job_file)

    started = time.monotonic()
    st = wait_state(prs, job_id, TERMINAL, 60)
    assert st["state"] == "FAILED", st
    assert "init() failed on every node" in st["reason"], st["reason"]
    assert "model checkpoint is corrupt (init marker)" in st["reason"], st["reason"]
    c = st["counts"]
    assert (c["items_succeeded"], c["rows_written"], c["mini_batches_processed"]) == (0, 0, 0), c
    assert time.monotonic() - started < 60

    result = wait_file_mentions(master_log_dir(master, job_id) / "job_result.txt", "FAILED",
                                "init() failed on every node")
    assert "model checkpoint is corrupt (init marker)" in result, result
    wait_for(lambda: not job_worker_pids(job_id), 20,
             message="the workers of failed job %s to exit" % job_id)


def test_agent_stops_promptly_while_master_is_down(master, start_agent, prs, make_job,
                                                   tmp_path):
    """SIGTERM to an agent whose master is gone: it finishes its running attempts and exits,
    giving up on its unsent results after one more try (no busy retry loop)."""
    agent = start_agent("node-d")
    job = make_job(tmp_path, 20, SCRIPT, name="master-down", mini_batch_size=1,
                   process_count_per_node=2, environment=env(sleep=2))
    job_id = submit(prs, job.job_file)
    wait_state(prs, job_id, "RUNNING", 30)
    wait_for(lambda: len(job_worker_pids(job_id)) == 2, 20, message="two workers of %s" % job_id)

    master.kill()
    started = time.monotonic()
    agent.proc.send_signal(signal.SIGTERM)
    try:
        agent.proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        pytest.fail("agent did not exit within %d s of SIGTERM with its master down" % STOP_GRACE)
    elapsed = time.monotonic() - started
    assert agent.proc.returncode == 0, agent.proc.returncode
    wait_for(lambda: not workers_under(agent.work_dir), 10, message="the agent's workers to exit")

    log = agent.log()
    failed = [line for line in log.splitlines() if "report failed" in line]
    assert len(failed) <= 20, (
        "the agent retried ReportResults %d times in %.1f s while stopping with its master down "
        "(no backoff); its log grew to %d bytes; first lines:\n%s" % (
            len(failed), elapsed, len(log), "\n".join(failed[:3])))


def _resume_available(prs):
    r = prs("resume", "--help")
    return r.returncode == 0 and re.search(r"^Usage: \S*prs resume\b", r.stdout, re.M)


def test_cancel_then_resume(master, start_agent, prs, make_job, tmp_path):
    if not _resume_available(prs):
        pytest.skip("`prs resume` is not in this build of prs (prs resume --help shows no "
                    "resume usage)")
    start_agent("node-r")
    job = make_job(tmp_path, 200, SCRIPT, name="resume-me", mini_batch_size=5,
                   process_count_per_node=2, environment=env(sleep=0.03))
    job_id = submit(prs, job.job_file)

    wait_processed(prs, job_id, 8, 60)
    r = prs("cancel", job_id)
    assert r.returncode == 0, r.stderr
    st = status_of(prs, job_id)
    assert st["state"] == "CANCELLED", st
    assert st["counts"]["mini_batches_processed"] < 40, st
    # What the cancelled job wrote: whole mini-batches, each input once, as many rows as counted.
    def written():
        names = [x.split(" ", 1)[0] for x in job.output_file.read_text().splitlines()]
        assert len(names) == len(set(names)), "duplicate rows after cancel: %r" % names
        counted = status_of(prs, job_id)["counts"]["rows_written"]
        return names if len(names) == counted > 0 else None
    wait_for(written, 10, message="the output of cancelled %s to match rows_written" % job_id)
    before = job.output_file.read_text()

    r = prs("resume", job_id)
    assert r.returncode == 0, "prs resume: rc=%d %s" % (r.returncode, r.stderr)
    assert r.stdout.strip() in ("", job_id), "prs resume stdout: %r" % r.stdout
    w = prs("watch", job_id, timeout=120)
    assert w.returncode == 0, "prs watch after resume: rc=%d %s" % (w.returncode, w.stderr)

    st = status_of(prs, job_id)
    assert st["state"] == "SUCCEEDED", st
    c = st["counts"]
    assert (c["mini_batches_created"], c["mini_batches_processed"], c["mini_batches_failed"]) \
        == (40, 40, 0), c
    assert (c["items_total"], c["items_succeeded"], c["items_failed"], c["rows_written"]) \
        == (200, 200, 0, 200), c
    check_rows(job)
    assert job.output_file.read_text().startswith(before), \
        "resume must append to the output the cancelled job wrote, not rewrite it"


@pytest.mark.chaos
def test_chaos(master, restart_master, start_agent, prs, make_job, tmp_path):
    """Random worker kills (3), agent kills with replacements (2) and a master kill + restart on
    the same port and state (1) during one job: it still succeeds, each input once."""
    n_files = int(os.environ.get("PRS_CHAOS_FILES", "4000"))
    seed = int(os.environ.get("PRS_CHAOS_SEED", "7321"))
    rng = random.Random(seed)
    print("chaos: %d files, seed %d" % (n_files, seed))
    # About 20 s of run() time on 4 workers, whatever the file count.
    per_file = min(0.02, 80.0 / n_files)
    agents = [start_agent("chaos-a"), start_agent("chaos-b")]
    job = make_job(tmp_path, n_files, SCRIPT, name="chaos", mini_batch_size=10, node_count=2,
                   process_count_per_node=2, run_max_try=5, error_threshold=0,
                   environment=env(sleep=per_file))
    batches = (n_files + 9) // 10
    job_id = submit(prs, job.job_file)

    events = ["worker"] * 3 + ["agent"] * 2 + ["master"]
    rng.shuffle(events)
    marks = sorted(rng.uniform(0.05, 0.75) for _ in events)
    current_master = master
    done_events = []
    replacements = 0
    deadline = time.monotonic() + 240
    st = None
    for event, mark in zip(events, marks):
        def reached():
            s = try_status(prs, job_id)
            if s is None:
                return None
            assert s["state"] not in TERMINAL, \
                "job ended before the chaos event %s at %.0f%% (done: %r): %s" % (
                    event, mark * 100, done_events, s)
            return s if s["counts"]["mini_batches_processed"] >= mark * batches else None
        st = wait_for(reached, max(1, deadline - time.monotonic()), interval=0.1,
                      message="progress %.0f%% for chaos event %s" % (mark * 100, event))
        at = "%d/%d" % (st["counts"]["mini_batches_processed"], batches)
        if event == "worker":
            pids = wait_for(lambda: job_worker_pids(job_id), 20,
                            message="worker processes of %s" % job_id)
            pid = rng.choice(sorted(pids))
            os.kill(pid, signal.SIGKILL)
            done_events.append("worker %d killed at %s" % (pid, at))
        elif event == "agent":
            victim = rng.choice(agents)
            victim.kill()
            agents.remove(victim)
            assert_workers_die(victim)
            replacements += 1
            agents.append(start_agent("chaos-r%d" % replacements))
            done_events.append("agent %s killed at %s" % (victim.node_id, at))
        else:
            current_master.kill()
            current_master = restart_master()
            done_events.append("master killed at %s" % at)
        print("chaos:", done_events[-1])

    def ended():
        s = try_status(prs, job_id)
        return s if s is not None and s["state"] in TERMINAL else None
    st = wait_for(ended, max(1, deadline - time.monotonic()), interval=0.25,
                  message="chaos job %s to end (events %r)" % (job_id, done_events))
    assert st["state"] == "SUCCEEDED", (st, done_events)
    c = st["counts"]
    assert (c["mini_batches_created"], c["mini_batches_processed"], c["mini_batches_failed"]) \
        == (batches, batches, 0), (c, done_events)
    assert (c["items_total"], c["items_succeeded"], c["items_failed"], c["rows_written"]) \
        == (n_files, n_files, 0, n_files), (c, done_events)
    check_rows(job)
    assert len(done_events) == len(events), done_events
