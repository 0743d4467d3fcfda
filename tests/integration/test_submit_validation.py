"""Bad job files are refused by `prs submit` with a message that names the problem; nothing is
queued."""

import json
import os
import subprocess

import pytest

SCRIPT = """\
def run(mini_batch):
    return list(mini_batch)
"""

# (id, job keys to change (None removes a key), raw text replacing the file or None,
#  substrings the error on stderr must contain)
CASES = [
    ("unknown-key", {"mini_batch_size": None, "mini_batch_sise": 10}, None,
     ["mini_batch_sise", "mini_batch_size"]),
    ("bad-name", {"name": "Bad_Name"}, None, ["Bad_Name"]),
    ("bad-size", {"mini_batch_size": "10XB"}, None, ["mini_batch_size", "10XB"]),
    ("missing-entry-script-key", {"entry_script": None}, None, ["entry_script"]),
    ("entry-script-file-missing", {"entry_script": "no_such_script.py"}, None,
     ["no_such_script.py"]),
    ("missing-source-directory", {"source_directory": None}, None, ["source_directory"]),
    ("missing-inputs", {"inputs": None}, None, ["inputs"]),
    ("node-count-zero", {"node_count": 0}, None, ["node_count"]),
    ("process-count-negative", {"process_count_per_node": -1}, None, ["process_count_per_node"]),
    ("yaml-syntax-error", {}, "name: broken-yaml\nentry_script: score.py\ninputs: [a, b\n",
     ["line"]),
    ("reserved-argument", {"arguments": ["--mini_batch_size", "5"]}, None,
     ["reserved", "mini_batch_size"]),
]


def job_ids(prs):
    r = prs("list", "--output", "json")
    assert r.returncode == 0, r.stderr
    return [j["job_id"] for j in json.loads(r.stdout)]


@pytest.mark.parametrize("keys,raw,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_job_file_is_refused(master, prs, make_job, tmp_path, keys, raw, expected):
    job = make_job(tmp_path, 3, SCRIPT, **keys)
    if raw is not None:
        job.job_file.write_text(raw)
    before = job_ids(prs)

    r = prs("submit", job.job_file)

    assert r.returncode != 0, "a bad job file was accepted: %s\n%s" % (r.stdout,
                                                                      job.job_file.read_text())
    assert r.stdout.strip() == "", "no job id may be printed: %r" % r.stdout
    for text in expected:
        assert text in r.stderr, "stderr does not mention %r: %r" % (text, r.stderr)
    assert job_ids(prs) == before, "a refused job was queued"


def test_a_job_on_stdin_resolves_against_the_current_folder(master, bins, start_agent, make_job,
                                                            tmp_path):
    """`prs submit -` and `prs prepare -` read the job from stdin (as prs.client does for a
    dict), with relative paths against the current folder; prepare writes the request that
    submit would send, and refuses a bad job with the same message."""
    start_agent("n1")
    job = make_job(tmp_path, 5, SCRIPT)
    env = dict(os.environ, PRS_MASTER=master.address)

    def prs_stdin(*args, text):
        return subprocess.run([str(bins.prs), *args], input=text.encode(), cwd=job.root, env=env,
                              capture_output=True, timeout=60)

    r = prs_stdin("prepare", "-", "--set", "mini_batch_size=2", text=json.dumps(job.spec))
    assert r.returncode == 0, r.stderr
    # The request holds the absolute paths and the snapshot's script.
    assert str(job.data_dir).encode() in r.stdout and b"score.py" in r.stdout
    assert SCRIPT.encode() in r.stdout
    bad = prs_stdin("prepare", "-", text=json.dumps(dict(job.spec, node_count=0)))
    same = prs_stdin("submit", "-", text=json.dumps(dict(job.spec, node_count=0)))
    assert bad.returncode == same.returncode == 2 and bad.stdout == same.stdout == b""
    assert b"node_count" in bad.stderr and bad.stderr == same.stderr
    r = prs_stdin("submit", "-", "--wait", text=json.dumps(job.spec))
    assert r.returncode == 0, r.stderr
    assert sorted(job.output_file.read_text().split()) == sorted(str(p) for p in job.inputs)
