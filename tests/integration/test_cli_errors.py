"""CLI errors: unknown jobs and an unreachable master."""

import os
import subprocess

from itest_helpers import free_port


def test_status_of_unknown_job(master, prs):
    r = prs("status", "no-such-job-42")
    assert r.returncode != 0
    assert "not found" in r.stderr, r.stderr
    assert r.stdout == "", r.stdout


def test_status_without_master(bins):
    address = "127.0.0.1:%d" % free_port()
    r = subprocess.run([str(bins.prs), "status", "some-job-1"],
                       env=dict(os.environ, PRS_MASTER=address), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "cannot reach prs-master" in r.stderr, r.stderr
    assert address in r.stderr, r.stderr
