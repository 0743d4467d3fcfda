"""Cancelling a running job stops its workers and ends `prs watch` with a failure code."""

import os
import subprocess

from itest_helpers import job_worker_pids, status_of, submit, wait_for, wait_state

SLOW_SCRIPT = """\
import os
import time

def run(mini_batch):
    time.sleep(2)
    return ["%s done" % os.path.basename(p) for p in mini_batch]
"""

QUICK_SCRIPT = """\
import os

def run(mini_batch):
    return [os.path.basename(p) for p in mini_batch]
"""


def test_cancel_running_job_stops_its_workers(master, start_agent, prs, bins, make_job, tmp_path):
    start_agent("node-c")
    job = make_job(tmp_path, 40, SLOW_SCRIPT, name="cancel-me", mini_batch_size=1,
                   process_count_per_node=2, run_invocation_timeout=60)
    job_id = submit(prs, job.job_file)

    # A watcher that follows the job from before the cancel.
    watch_out = open(tmp_path / "watch.stderr", "w+")
    env = dict(os.environ, PRS_MASTER=master.address)
    watcher = subprocess.Popen([str(bins.prs), "watch", job_id], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=watch_out)
    try:
        def running_with_progress():
            st = status_of(prs, job_id)
            assert st["state"] in ("QUEUED", "RUNNING"), st
            return st["state"] == "RUNNING" and st["counts"]["mini_batches_processed"] >= 1
        wait_for(running_with_progress, 60, interval=0.25,
                 message="job %s RUNNING with a processed mini-batch" % job_id)
        # The workers are visible to this test (else the check below would prove nothing).
        wait_for(lambda: job_worker_pids(job_id), 10, message="worker processes of %s" % job_id)

        r = prs("cancel", job_id)
        assert r.returncode == 0, "prs cancel: rc=%d %s" % (r.returncode, r.stderr)

        st = status_of(prs, job_id)
        assert st["state"] == "CANCELLED", st
        assert st["counts"]["mini_batches_processed"] < 40, st

        wait_for(lambda: not job_worker_pids(job_id), 15,
                 message="the workers of cancelled job %s to exit (still: %r)" % (
                     job_id, job_worker_pids(job_id)))

        watcher.wait(timeout=20)
        watch_out.seek(0)
        assert watcher.returncode != 0, "prs watch of a cancelled job exited 0: %s" % watch_out.read()
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        watch_out.close()

    again = prs("watch", job_id, timeout=30)
    assert again.returncode != 0, again
    assert "CANCELLED" in again.stderr, again.stderr

    # Cancelling again is refused: the job already ended.
    r = prs("cancel", job_id)
    assert r.returncode != 0, r
    assert "CANCELLED" in r.stderr, r.stderr

    # The agent goes on serving: a new job runs to the end.
    nxt = make_job(tmp_path, 6, QUICK_SCRIPT, job_dir_name="next", name="after-cancel",
                   mini_batch_size=2)
    id2 = submit(prs, nxt.job_file)
    st2 = wait_state(prs, id2, ("SUCCEEDED", "FAILED", "CANCELLED"), 60)
    assert st2["state"] == "SUCCEEDED", st2
    assert st2["counts"]["items_succeeded"] == 6, st2
