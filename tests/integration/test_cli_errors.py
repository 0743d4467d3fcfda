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


def test_a_binary_job_file_gets_no_raw_control_bytes_on_the_terminal(bins, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_bytes(b"\x7fELF\x02\x01\x01\x1b[2J: 1\n" + bytes(range(1, 32)) + b"\n")
    r = subprocess.run([str(bins.prs), "run", str(job)], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(b"prs: error: "), r.stderr
    controls = [c for c in r.stderr if c < 0x20 and c not in (0x0a,)] + \
        [c for c in r.stderr if c == 0x7f]
    assert not controls, r.stderr
