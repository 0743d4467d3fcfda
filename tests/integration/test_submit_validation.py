"""Bad job files are refused by `prs submit` with a message that names the problem; nothing is
queued."""

import json

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
