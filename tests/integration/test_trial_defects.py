"""What a new user tripped over (issue 9): each test reproduces one defect of the trial with the
real binaries and checks the behaviour that replaced it."""

import json
import os
import subprocess
from pathlib import Path

import yaml

from itest_helpers import PYTHON


def prs_run(bins, tmp_path, job_file, *args, timeout=180, state="state"):
    """`prs run JOB_FILE ARGS...` with its state dir in tmp_path; returns the CompletedProcess
    (bytes stdout/stderr) with .state_dir set."""
    state_dir = Path(tmp_path) / state
    r = subprocess.run([str(bins.prs), "run", str(job_file), "--state-dir", str(state_dir), *args],
                       env=dict(os.environ, TMPDIR=str(tmp_path)), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    r.state_dir = state_dir
    r.err = r.stderr.decode("utf-8", "replace")
    return r


def write_job(root, script, data_files=None, **keys):
    """A job in `root`: src/score.py = script, data/ with data_files {bytes name: bytes content}
    (None: none), job.yaml from keys over a small default. Returns job.yaml's path."""
    root = Path(root)
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "score.py").write_text(script)
    data = root / "data"
    data.mkdir(exist_ok=True)
    for name, content in (data_files or {}).items():
        path = os.path.join(bytes(data), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
    spec = {"name": "trial", "entry_script": "score.py", "source_directory": "./src",
            "inputs": [{"name": "files", "type": "file", "path": "./data"}], "output": "./out",
            "mini_batch_size": 2, "run_invocation_timeout": 30, "run_max_try": 1,
            "environment": {"python": PYTHON}}
    spec.update(keys)
    spec = {k: v for k, v in spec.items() if v is not None}
    job = root / "job.yaml"
    job.write_text(yaml.safe_dump(spec, sort_keys=False))
    return job


def log_dir(r, job_id="trial-1"):
    return r.state_dir / "jobs" / job_id / "logs"


# --- 1. file names that are not UTF-8 ------------------------------------------------------

NAME_SCRIPT = """
import os
def run(mini_batch):
    out = []
    for p in mini_batch:
        with open(p) as f:
            text = f.read().strip()
        if text == "poison":
            raise ValueError("cannot score " + p)  # the undecodable byte, raw
        out.append("%s:%s" % (os.path.relpath(p, os.environ["DATA"]), text))
    return out
"""


def test_file_names_that_are_not_utf8_are_processed_like_any_other(bins, tmp_path):
    files = {b"caf\xe9.txt": b"latin1", b"ok.txt": b"plain", b"d\xff/x\xfe.txt": b"deep",
             "smörgåsbord.txt".encode(): b"utf8"}
    job = write_job(tmp_path, NAME_SCRIPT, files,
                    environment={"python": PYTHON, "variables": {"DATA": str(tmp_path / "data")}})
    (tmp_path / "src" / "notes-\udce9.txt".encode("utf-8", "surrogateescape").decode(
        "utf-8", "surrogateescape")).write_text("a snapshot file with a Latin-1 name\n")
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 0, r.err[-3000:]
    rows = (tmp_path / "out" / "parallel_run_step.txt").read_bytes().splitlines()
    assert sorted(rows) == sorted([b"caf\xe9.txt:latin1", b"ok.txt:plain", b"d\xff/x\xfe.txt:deep",
                                   "smörgåsbord.txt:utf8".encode()])
    assert "invalid UTF-8" not in r.err


def test_an_error_quoting_a_non_utf8_path_reaches_the_user(bins, tmp_path):
    job = write_job(tmp_path, NAME_SCRIPT, {b"caf\xe9.txt": b"poison", b"ok.txt": b"plain"},
                    error_threshold=0,
                    environment={"python": PYTHON, "variables": {"DATA": str(tmp_path / "data")}})
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 1, r.err[-3000:]
    # The byte that is not UTF-8 is shown as \xe9.
    assert "ValueError: cannot score" in r.err and "/data/caf\\xe9.txt (mini" in r.err, \
        r.err[-3000:]
    result = (log_dir(r) / "job_result.txt").read_text()
    assert "/data/caf\\xe9.txt (mini" in result
    # The traceback file lists the mini-batch's inputs as they are named on disk.
    errors = list((log_dir(r) / "user" / "error").rglob("*.txt"))
    assert errors and b"/data/caf\xe9.txt\n" in errors[0].read_bytes()


# --- 2. a job in which nothing succeeded -----------------------------------------------------


def test_a_job_in_which_nothing_succeeded_fails(bins, tmp_path):
    job = write_job(tmp_path, "def run(mini_batch):\n    pass\n",
                    {("%02d.txt" % i).encode(): b"x" for i in range(6)})
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 1, r.err[-3000:]
    assert "no input succeeded: all 6 items failed, in 3 mini-batches" in r.err, r.err[-3000:]
    assert "run() returned NoneType" in r.err
    result = (log_dir(r) / "job_result.txt").read_text()
    assert result.startswith("FAILED\nReason: no input succeeded"), result


# --- 3. a single file, and lists of paths -----------------------------------------------------

ECHO_SCRIPT = """
import os
def run(mini_batch):
    return [os.path.basename(p) for p in mini_batch]
"""


def test_a_path_that_names_a_file_is_that_one_input(bins, tmp_path):
    (tmp_path / "one.csv").write_text("x,y\n1,2\n")
    job = write_job(tmp_path, ECHO_SCRIPT,
                    inputs=[{"name": "one", "type": "file", "path": "./one.csv"}])
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 0, r.err[-3000:]
    assert (tmp_path / "out" / "parallel_run_step.txt").read_text() == "one.csv\n"


def test_list_file_lists_paths_and_refuses_missing_ones_at_submit(bins, tmp_path):
    job = write_job(tmp_path, ECHO_SCRIPT, {b"a.txt": b"1", b"b.txt": b"2"},
                    inputs=[{"name": "listed", "type": "file", "list_file": "./list.txt"}])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "parallel_run_step.txt").write_text("an earlier row\n")
    # As an earlier run left it: marked as prs's, so that a new run may move it aside.
    os.setxattr(tmp_path / "out" / "parallel_run_step.txt", "user.prs.output", b"trial-1")
    (tmp_path / "list.txt").write_text("# two good, two gone\ndata/a.txt\ndata/gone1.txt\n"
                                       "%s\ndata/gone2.txt\n" % (tmp_path / "data" / "b.txt"))
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 2, r.err[-3000:]
    assert "input 'listed': 2 of the 4 paths that list_file %s names do not exist" % (
        tmp_path / "list.txt") in r.err, r.err
    assert "line 3: %s" % (tmp_path / "data" / "gone1.txt") in r.err
    assert "line 5: %s" % (tmp_path / "data" / "gone2.txt") in r.err
    # Nothing was queued, and the earlier output was not touched.
    assert (tmp_path / "out" / "parallel_run_step.txt").read_text() == "an earlier row\n"
    assert sorted(os.listdir(tmp_path / "out")) == ["parallel_run_step.txt"]

    (tmp_path / "list.txt").write_text("data/a.txt\n%s\n" % (tmp_path / "data" / "b.txt"))
    r = prs_run(bins, tmp_path, job, timeout=60, state="state2")
    assert r.returncode == 0, r.err[-3000:]
    assert sorted((tmp_path / "out" / "parallel_run_step.txt").read_text().split()) == [
        "a.txt", "b.txt"]
    assert "the earlier output %s was moved to" % (tmp_path / "out" / "parallel_run_step.txt") \
        in r.err


# --- 4. folder links ------------------------------------------------------------------------


def test_folder_links_are_listed_once_and_a_loop_ends(bins, tmp_path):
    job = write_job(tmp_path, ECHO_SCRIPT, {b"a.txt": b"1", b"sub/b.txt": b"2"}, mini_batch_size=10)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "c.txt").write_text("3")
    os.symlink(".", tmp_path / "data" / "self")
    os.symlink("..", tmp_path / "data" / "parent")
    os.symlink(tmp_path / "elsewhere", tmp_path / "data" / "linked")
    os.symlink(tmp_path / "nowhere.txt", tmp_path / "data" / "broken.txt")
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 0, r.err[-3000:]
    rows = (tmp_path / "out" / "parallel_run_step.txt").read_text().split()
    assert sorted(rows) == ["a.txt", "b.txt", "c.txt"], rows
    # What was left out is said, on the console and in master_role.txt.
    role = (log_dir(r) / "sys" / "master_role.txt").read_text()
    for text in ("skipped %s: a link to %s, which does not exist" % (
                     tmp_path / "data" / "broken.txt", tmp_path / "nowhere.txt"),
                 "skipped %s: a link to %s, a folder that holds the input itself" % (
                     tmp_path / "data" / "parent", tmp_path),
                 "skipped %s: a link to %s, a folder that holds the input itself" % (
                     tmp_path / "data" / "self", tmp_path / "data")):
        assert text in role, role
        assert "prs: note: input 'files': " + text in r.err, r.err


# --- 5. summary_only output_dir -------------------------------------------------------------

WRITER_SCRIPT = """
import os
from prs import EntryScript
def run(mini_batch):
    out = EntryScript().output_dir
    for p in mini_batch:
        with open(os.path.join(out, os.path.basename(p) + ".result"), "w") as f:
            f.write("done\\n")
    return mini_batch
"""


def test_summary_only_makes_the_output_folder_the_script_writes_to(bins, tmp_path):
    job = write_job(tmp_path, WRITER_SCRIPT, {b"a.txt": b"1", b"b.txt": b"2"},
                    output_action="summary_only", output="./results/deep")
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 0, r.err[-3000:]
    assert sorted(os.listdir(tmp_path / "results" / "deep")) == ["a.txt.result", "b.txt.result"]
    # Without an output key, output_dir is a folder of the node's, which exists too.
    job = write_job(tmp_path / "two", WRITER_SCRIPT, {b"c.txt": b"3"},
                    output_action="summary_only", output=None)
    r = prs_run(bins, tmp_path / "two", job, timeout=60)
    assert r.returncode == 0, r.err[-3000:]
    assert list(r.state_dir.glob("jobs/trial-1/output/c.txt.result"))


# --- 6. an output folder inside the input folder --------------------------------------------


def test_an_output_folder_inside_the_input_is_left_out_of_the_listing(bins, tmp_path):
    job = write_job(tmp_path, ECHO_SCRIPT, {b"a.txt": b"1", b"b.txt": b"2", b"c.txt": b"3"},
                    output="./data/out", mini_batch_size=10)
    for state in ("s1", "s2"):
        r = prs_run(bins, tmp_path, job, timeout=60, state=state)
        assert r.returncode == 0, r.err[-3000:]
        rows = (tmp_path / "data" / "out" / "parallel_run_step.txt").read_text().split()
        assert sorted(rows) == ["a.txt", "b.txt", "c.txt"], (state, rows)
    assert "left out %s: it is the job's output folder" % (tmp_path / "data" / "out") in r.err
    # The input folder itself as the output is refused: every run would list the last.
    job = write_job(tmp_path, ECHO_SCRIPT, output="./data")
    r = prs_run(bins, tmp_path, job, timeout=60, state="s3")
    assert r.returncode == 2 and "is also the folder of input 'files'" in r.err, r.err


# --- 11. an empty input folder -------------------------------------------------------------


def test_an_empty_input_is_refused_at_submit_and_the_earlier_output_stays(bins, tmp_path):
    job = write_job(tmp_path, ECHO_SCRIPT)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "parallel_run_step.txt").write_text("an earlier row\n")
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 2, r.err[-3000:]
    assert "input 'files': %s holds no files" % (tmp_path / "data") in r.err, r.err
    assert sorted(os.listdir(tmp_path / "out")) == ["parallel_run_step.txt"]
    assert not (r.state_dir / "jobs").exists() or not list((r.state_dir / "jobs").iterdir())


# --- 7. the log tree is complete when the end is seen ----------------------------------------

FAILING_SCRIPT = """
import os
def run(mini_batch):
    out = []
    for p in mini_batch:
        print("scored", os.path.basename(p))
        if p.endswith("03.txt"):
            raise ValueError("cannot score " + os.path.basename(p))
        out.append(os.path.basename(p))
    return out
"""


def test_logs_are_complete_when_watch_returns(bins, daemons, tmp_path):
    # A grace far longer than the test: the end must come from the agents' `complete`.
    from conftest import start_master
    from itest_helpers import Daemon, submit, wait_for

    master = start_master(bins, daemons, tmp_path, extra=["--logs-grace", "600"])
    agent = Daemon("prs-agent node-a", [str(bins.agent), "--master", master.address, "--work-dir",
                                        str(tmp_path / "agent-a"), "--node-id", "node-a"],
                   tmp_path / "agent-a.log")
    daemons.append(agent)
    wait_for(lambda: "registered agent=" in agent.log(), 20, message="the agent to register")

    def prs(*args, timeout=120):
        return subprocess.run([str(bins.prs), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ, PRS_MASTER=master.address))

    job = write_job(tmp_path, FAILING_SCRIPT, {("%02d.txt" % i).encode(): b"x" for i in range(8)},
                    mini_batch_size=1)
    for attempt in range(2):
        job_id = submit(prs, job, "--set", "name=logs-%d" % attempt)
        w = prs("watch", job_id, timeout=120)
        assert w.returncode == 0, w.stderr
        # No lag: the error summary and the traceback are there at once.
        e = prs("logs", job_id, "--errors")
        assert e.returncode == 0, e.stderr
        assert "ValueError: cannot score 03.txt" in e.stdout, e.stdout
        assert "Traceback" in e.stdout, e.stdout
        out = prs("logs", job_id, "user/stdout/node-a/process000.stdout.txt")
        assert out.returncode == 0, out.stderr
        assert sorted(out.stdout.split("\n")[:-1]) == sorted("scored %02d.txt" % i
                                                             for i in range(8)), out.stdout


def test_logs_follow_waits_for_a_file_not_yet_written(master, start_agent, prs, tmp_path):
    from itest_helpers import submit

    start_agent("node-a")
    job = write_job(tmp_path, "import time\ntime.sleep(1)\n" + FAILING_SCRIPT,
                    {("%02d.txt" % i).encode(): b"x" for i in range(4)}, mini_batch_size=1)
    job_id = submit(prs, job)
    f = prs("logs", job_id, "user/stdout/node-a/process000.stdout.txt", "--follow", timeout=120)
    assert f.returncode == 0, f.stderr
    assert sorted(f.stdout.split("\n")[:-1]) == sorted("scored %02d.txt" % i for i in range(4))
    missing = prs("logs", job_id, "user/stdout/node-a/process009.stdout.txt", "--follow")
    assert missing.returncode == 2
    assert "ended without writing user/stdout/node-a/process009.stdout.txt" in missing.stderr


# --- 8, 11. counts and sizes that cannot work are refused at submit ------------------------


def test_counts_and_arguments_that_cannot_work_are_refused_at_submit(bins, tmp_path):
    job = write_job(tmp_path, ECHO_SCRIPT, {b"a.txt": b"1"})
    r = prs_run(bins, tmp_path, job, "--set", "process_count_per_node=100000", timeout=60)
    assert r.returncode == 2, r.err
    assert "process_count_per_node: 100000 is over the limit of 1024 worker processes per node" \
        in r.err
    r = prs_run(bins, tmp_path, job, "--set", "run_invocation_timeout=2147483647", timeout=60)
    assert r.returncode == 2 and "over the limit of 604800 seconds" in r.err, r.err
    big = write_job(tmp_path / "big", ECHO_SCRIPT, {b"a.txt": b"1"},
                    arguments=["--blob", "x" * (10 << 20)])
    r = prs_run(bins, tmp_path / "big", big, timeout=60)
    assert r.returncode == 2, r.err[-2000:]
    assert "arguments[1]: 10485760 bytes, over the limit of 65536 bytes" in r.err
    assert len(r.err) < 2000, "the argument must not be echoed"


def test_a_worker_that_exits_at_start_has_its_last_stderr_lines_in_the_reason(bins, tmp_path):
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text("#!/bin/sh\necho 'loading the CUDA runtime' >&2\n"
                       "echo 'fatal: libcudart.so.12 not found' >&2\nexit 3\n")
    wrapper.chmod(0o755)
    job = write_job(tmp_path, ECHO_SCRIPT, {b"a.txt": b"1"},
                    environment={"python": str(wrapper)})
    r = prs_run(bins, tmp_path, job, timeout=120)
    assert r.returncode == 1, r.err[-3000:]
    assert "the worker exited before init() finished (exit code 3): fatal: libcudart.so.12 " \
           "not found" in r.err, r.err[-3000:]


# --- 9. URIs -------------------------------------------------------------------------------


def test_uris_are_refused_with_what_to_do(bins, tmp_path):
    job = write_job(tmp_path, ECHO_SCRIPT, {b"a.txt": b"1"},
                    output="azureml://datastores/workspaceblobstore/paths/out")
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 2, r.err
    assert "output: 'azureml://datastores/workspaceblobstore/paths/out' is a URI; URIs are not " \
           "supported yet: use a path the master and agents can read" in r.err, r.err
    assert not (tmp_path / "azureml:").exists()


# --- 10. Ctrl-C on prs run -----------------------------------------------------------------

SLOW_SCRIPT = """
import os, time
def run(mini_batch):
    time.sleep(0.2)
    return [os.path.basename(p) for p in mini_batch]
"""


def test_ctrl_c_on_prs_run_says_how_to_continue_and_resume_finishes_the_job(bins, tmp_path):
    from itest_helpers import wait_for

    job = write_job(tmp_path, SLOW_SCRIPT, {("%03d.txt" % i).encode(): b"x" for i in range(60)})
    state = tmp_path / "state"
    p = subprocess.Popen([str(bins.prs), "run", str(job), "--state-dir", str(state)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = tmp_path / "out" / "parallel_run_step.txt"
    wait_for(lambda: out.exists() and len(out.read_text().split()) >= 4, 60,
             message="the first rows")
    p.send_signal(2)  # SIGINT, as Ctrl-C sends
    stdout, stderr = p.communicate(timeout=60)
    err = stderr.decode()
    assert p.returncode == 130, err
    assert "prs: interrupted; stopping the job and its workers" in err, err
    assert "prs: job trial-1 was interrupted and is CANCELLED" in err, err
    # The command as it can be pasted: prs's own path, since it was run by its path.
    hint = "continue it with: %s resume trial-1 --state-dir %s" % (
        os.path.abspath(str(bins.prs)), state)
    assert hint in err, err
    assert "W prs" not in err, "no daemon warnings on the console: " + err
    r = subprocess.run([str(bins.prs), "resume", "trial-1", "--state-dir", str(state)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == str(out)
    rows = out.read_text().split()
    assert sorted(rows) == ["%03d.txt" % i for i in range(60)], "each input exactly once"


# --- also asked: per-job output names and cleaning up what was moved aside -------------------


def test_per_job_output_names_and_clean_outputs(bins, tmp_path):
    job = write_job(tmp_path, ECHO_SCRIPT, {b"a.txt": b"1"})
    for state in ("s1", "s2"):
        assert prs_run(bins, tmp_path, job, timeout=60, state=state).returncode == 0
    aside = [n for n in os.listdir(tmp_path / "out") if ".before-trial-1" in n]
    assert len(aside) == 1, os.listdir(tmp_path / "out")
    # A name taken gets a suffix, and is cleaned up too.
    (tmp_path / "out" / (aside[0] + ".1")).write_text("an older row\n")
    aside.append(aside[0] + ".1")
    dry = subprocess.run([str(bins.prs), "clean-outputs", str(tmp_path / "out"), "--dry-run"],
                         capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0, dry.stderr
    for name in aside:
        assert "would remove %s" % (tmp_path / "out" / name) in dry.stdout, dry.stdout
    assert aside[0] in os.listdir(tmp_path / "out")
    done = subprocess.run([str(bins.prs), "clean-outputs", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert os.listdir(tmp_path / "out") == ["parallel_run_step.txt"]
    # {job_id}: each job its own file, nothing moved aside.
    r = prs_run(bins, tmp_path, job, "--set", "append_row_file_name={name}-{job_id}.txt",
                timeout=60, state="s3")
    assert r.returncode == 2 and "put the name in quotes" in r.err, r.err
    r = prs_run(bins, tmp_path, job, "--set", "append_row_file_name='{name}-{job_id}.txt'",
                timeout=60, state="s3")
    assert r.returncode == 0, r.err
    assert r.stdout.decode().strip() == str(tmp_path / "out" / "trial-trial-1.txt")
    assert sorted(os.listdir(tmp_path / "out")) == ["parallel_run_step.txt", "trial-trial-1.txt"]


# --- 11. partial successes and tabular inputs in the reports --------------------------------


def test_a_mini_batch_with_failed_items_lists_its_inputs(bins, tmp_path):
    job = write_job(tmp_path, "def run(mini_batch):\n    return mini_batch[:1]\n",
                    {("%02d.txt" % i).encode(): b"x" for i in range(3)}, mini_batch_size=3)
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 0, r.err[-3000:]
    errors = "".join(f.read_text() for f in (log_dir(r) / "user" / "error").rglob("*.txt"))
    assert "run() returned fewer elements than inputs" in errors, errors
    for i in range(3):
        assert "  %s\n" % (tmp_path / "data" / ("%02d.txt" % i)) in errors, errors
    assert "run() returned 1 element for 3 inputs: 2 items failed" in errors
    summary = (log_dir(r) / "user" / "error.txt").read_text()
    assert "1 x run() returned fewer elements than inputs" in summary, summary


def test_tabular_failures_name_the_file_bytes_and_records(bins, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text(
        "id,v\n" + "".join("%d,%d\n" % (i, i) for i in range(1, 11)))
    script = ("def run(df):\n"
              "    if 5 in list(df['id']):\n"
              "        raise ValueError('bad record 5')\n"
              "    return df\n")
    job = write_job(tmp_path, script, inputs=[{"name": "t", "type": "tabular", "path": "./data"}],
                    mini_batch_size="4 rows")
    r = prs_run(bins, tmp_path, job, timeout=120)
    assert r.returncode == 0, r.err[-3000:]
    errors = "".join(f.read_text() for f in (log_dir(r) / "user" / "error").rglob("*.txt"))
    assert "%s, bytes " % (tmp_path / "data" / "t.csv") in errors, errors
    assert "(records 5-8)" in errors, errors
    assert "range\t" not in errors


# --- also asked: ParallelRunStep's runtime options ------------------------------------------


def test_progress_update_timeout_in_arguments_fails_a_job_that_makes_no_progress(bins, tmp_path):
    job = write_job(tmp_path, "import time\ndef run(mini_batch):\n    time.sleep(120)\n",
                    {b"a.txt": b"1"}, run_invocation_timeout=600,
                    arguments=["--progress_update_timeout", "3", "--task_overhead_timeout", "9"])
    r = prs_run(bins, tmp_path, job, timeout=120)
    assert r.returncode == 1, r.err[-3000:]
    assert "no progress for 3 s (progress_update_timeout)" in r.err, r.err[-3000:]
    assert "prs: note: arguments: --task_overhead_timeout has no meaning in prs" in r.err


# --- also asked: allow_reuse ----------------------------------------------------------------


def test_allow_reuse_gives_an_identical_jobs_result_without_running(master, start_agent, prs,
                                                                    tmp_path):
    from itest_helpers import submit, status_of, wait_state

    start_agent("node-a")
    calls = tmp_path / "calls.txt"
    script = ("import os\n"
              "def run(mini_batch):\n"
              "    with open(%r, 'a') as f:\n"
              "        f.write('x\\n')\n"
              "    return [os.path.basename(p) for p in mini_batch]\n" % str(calls))
    job = write_job(tmp_path, script, {("%02d.txt" % i).encode(): b"x" for i in range(6)},
                    allow_reuse=True)
    first = submit(prs, job)
    assert wait_state(prs, first, ("SUCCEEDED", "FAILED"), 60)["state"] == "SUCCEEDED"
    runs = len(calls.read_text().split())
    output = (tmp_path / "out" / "parallel_run_step.txt").read_text()
    second = submit(prs, job)
    st = wait_state(prs, second, ("SUCCEEDED", "FAILED"), 60)
    assert st["state"] == "SUCCEEDED" and st["counts"]["items_succeeded"] == 6, st
    assert any(n.startswith("allow_reuse: the result of job %s" % first) for n in st["notes"]), st
    assert len(calls.read_text().split()) == runs, "nothing ran"
    assert os.listdir(tmp_path / "out") == ["parallel_run_step.txt"]
    assert (tmp_path / "out" / "parallel_run_step.txt").read_text() == output
    # A changed input runs the job again.
    (tmp_path / "data" / "03.txt").write_text("changed")
    third = submit(prs, job)
    assert wait_state(prs, third, ("SUCCEEDED", "FAILED"), 60)["state"] == "SUCCEEDED"
    assert len(calls.read_text().split()) > runs
    assert not status_of(prs, third)["notes"] or not any(
        n.startswith("allow_reuse") for n in status_of(prs, third)["notes"])


# --- from a second new-user trial -----------------------------------------------------------


def test_daemons_started_with_relative_folders_run_jobs(bins, daemons, tmp_path):
    from itest_helpers import Daemon, submit, wait_for, wait_state

    work = tmp_path / "cwd"
    work.mkdir()
    port_file = tmp_path / "port"
    old_cwd = os.getcwd()
    os.chdir(work)  # relative --state-dir and --work-dir are relative to here
    try:
        master = Daemon("prs-master", [str(bins.master), "--listen", "127.0.0.1:0",
                                       "--port-file", str(port_file), "--state-dir", "state"],
                        tmp_path / "master.log")
    finally:
        os.chdir(old_cwd)
    daemons.append(master)
    wait_for(lambda: port_file.exists() and port_file.read_text().strip(), 20,
             message="the master's port")
    address = "127.0.0.1:%s" % port_file.read_text().strip()
    os.chdir(work)
    try:
        agent = Daemon("prs-agent", [str(bins.agent), "--master", address, "--work-dir", "w",
                                     "--node-id", "rel"], tmp_path / "agent.log")
    finally:
        os.chdir(old_cwd)
    daemons.append(agent)
    wait_for(lambda: "registered agent=" in agent.log(), 20, message="the agent to register")

    def prs(*args):
        return subprocess.run([str(bins.prs), *map(str, args)], capture_output=True, text=True,
                              timeout=120, env=dict(os.environ, PRS_MASTER=address))

    job = write_job(tmp_path / "job", ECHO_SCRIPT, {b"a.txt": b"1", b"b.txt": b"2"})
    job_id = submit(prs, job)
    st = wait_state(prs, job_id, ("SUCCEEDED", "FAILED"), 60)
    assert st["state"] == "SUCCEEDED", st
    # The master says where its logs are as an absolute path.
    assert os.path.isabs(st["log_dir"]) and os.path.isdir(st["log_dir"]), st["log_dir"]
    # A stopping agent ends its session at once instead of being declared lost.
    agent.stop()
    wait_for(lambda: "agent left agent=rel#" in master.log(), 10, message="the agent to leave")
    assert "agent lost" not in master.log()


def test_errors_with_control_bytes_are_escaped_in_summaries(bins, tmp_path):
    script = ("def run(mini_batch):\n"
              "    raise ValueError('\\x1b[31mred\\x1b[0m and a bell\\x07')\n")
    job = write_job(tmp_path, script, {b"a.txt": b"1"}, error_threshold=0)
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 1
    assert b"\x1b" not in r.stderr and b"\x07" not in r.stderr, r.stderr
    assert "\\x1b[31mred" in r.err
    summary = (log_dir(r) / "user" / "error.txt").read_bytes()
    assert b"\x1b" not in summary and b"\\x1b[31mred" in summary, summary


def test_summary_only_without_output_says_where_the_script_wrote(bins, tmp_path):
    job = write_job(tmp_path, WRITER_SCRIPT, {b"a.txt": b"1"}, output_action="summary_only",
                    output=None)
    r = prs_run(bins, tmp_path, job, timeout=60)
    assert r.returncode == 0, r.err
    where = r.state_dir / "jobs" / "trial-1" / "output"
    assert "prs: EntryScript().output_dir was %s" % where in r.err, r.err
    assert (where / "a.txt.result").exists()
