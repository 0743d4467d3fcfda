"""Tabular inputs end to end: CSV/TSV/JSON Lines split by size, by rows and by partition keys.

Every test checks the output rows against the input by an id column: each record exactly once.
"""

import csv
import gzip
import io
import json
import os
import random
import subprocess

from itest_helpers import PYTHON, status_of, submit

MB = 1 << 20


def text_for(i):
    """A field that needs CSV quoting: a delimiter, doubled quotes and newlines."""
    return 'row %d, says "hi"\nsecond line %s' % (i, "x" * (i * 7919 % 97))


def write_csv(path, first_id, count, delimiter=","):
    """id<d>text<d>num; returns {id: (start offset, length)} of each record."""
    spans = {}
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(["id", "text", "num"])
    header = buf.getvalue().encode()
    with open(path, "wb") as f:
        f.write(header)
        offset = len(header)
        for i in range(first_id, first_id + count):
            buf.seek(0)
            buf.truncate()
            w.writerow([i, text_for(i), i % 13])
            data = buf.getvalue().encode()
            f.write(data)
            spans[i] = (offset, len(data))
            offset += len(data)
    return spans


def write_job(root, script, **keys):
    """root/src/score.py and root/job.yaml for a tabular input at root/data."""
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "score.py").write_text(script)
    spec = {
        "name": "tabular-job",
        "entry_script": "score.py",
        "source_directory": "./src",
        "inputs": [{"name": "table", "type": "tabular", "path": "./data"}],
        "output": "./out",
        "error_threshold": 0,
        "run_invocation_timeout": 120,
        "environment": {"python": PYTHON},
    }
    spec.update(keys)
    job_file = root / "job.yaml"
    job_file.write_text(json.dumps(spec))  # JSON is YAML
    return job_file


def prs_run(bins, tmp_path, job_file, *extra):
    """`prs run` (embedded master and agent); returns the CompletedProcess."""
    return subprocess.run([str(bins.prs), "run", str(job_file), "--state-dir",
                           str(tmp_path / "state"), *extra],
                          env=dict(os.environ, TMPDIR=str(tmp_path)), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)


def ids_once(ids, expected):
    """Each expected id exactly once, nothing else."""
    ids = list(ids)
    seen, dup = set(), set()
    for i in ids:
        (dup if i in seen else seen).add(i)
    assert not dup, "duplicate ids: %r" % sorted(dup)[:10]
    missing = set(expected) - set(ids)
    extra = set(ids) - set(expected)
    assert not missing and not extra, "missing %r, unexpected %r" % (sorted(missing)[:10],
                                                                     sorted(extra)[:10])


# Each record: its id, the first and last id of its mini-batch, and whether its text arrived
# intact (quoted newlines, delimiters and quotes).
SPAN_SCRIPT = """\
def text_for(i):
    return 'row %d, says "hi"\\nsecond line %s' % (i, "x" * (i * 7919 % 97))

def run(df):
    first, last = int(df["id"].iloc[0]), int(df["id"].iloc[-1])
    ok = [str(t) == text_for(int(i)) for i, t in zip(df["id"], df["text"])]
    return df[["id"]].assign(first=first, last=last, ok=ok)
"""


def test_50mb_csv_at_1mb_two_agents_each_record_once(master, start_agent, prs, tmp_path):
    root = tmp_path / "job"
    (root / "data").mkdir(parents=True)
    spans = {}
    next_id = 0
    for name, size in (("a.csv", 30 * MB), ("b.csv", 20 * MB)):
        n = size // 100  # records average about 100 bytes
        spans.update(write_csv(root / "data" / name, next_id, n))
        next_id += n
    total = sum(os.path.getsize(root / "data" / n) for n in ("a.csv", "b.csv"))
    assert total > 45 * MB
    start_agent("node-a")
    start_agent("node-b")
    # Plans in chunks of one 8 MiB block (several per file), whose ranges run while the rest
    # of their file is planned.
    job_file = write_job(root, SPAN_SCRIPT, mini_batch_size="1MB", node_count=2,
                         process_count_per_node=2,
                         environment={"python": PYTHON,
                                      "variables": {"PRS_PLAN_CHUNK_BYTES": "1"}})
    job_id = submit(prs, job_file)
    watch = prs("watch", job_id, timeout=600)
    assert watch.returncode == 0, watch.stderr
    st = status_of(prs, job_id)
    assert st["state"] == "SUCCEEDED", st
    c = st["counts"]
    assert c["items_total"] == next_id, c
    assert c["items_succeeded"] == next_id, c
    assert c["items_failed"] == 0, c
    # Plans, then about 50 mini-batches of 1 MB.
    plans = c["plans"]
    assert plans >= 6, c  # about 30/8 + 20/8
    assert 48 <= c["mini_batches_created"] - plans <= 55, c
    overview = open(os.path.join(st["log_dir"], "job_progress_overview.txt")).read()
    assert "Mini-batches created: %d (all), %d of them plans of tabular files" % (
        c["mini_batches_created"], plans) in overview, overview

    rows = (root / "out" / "parallel_run_step.txt").read_text().splitlines()
    parsed = [r.split(" ") for r in rows]
    ids_once((int(p[0]) for p in parsed), range(next_id))
    assert all(p[3] == "True" for p in parsed), "a text field arrived changed"
    longest = max(length for _, length in spans.values())
    batches = {(int(p[1]), int(p[2])) for p in parsed}
    for first, last in batches:
        nbytes = spans[last][0] + spans[last][1] - spans[first][0]
        assert nbytes <= MB + longest, "mini-batch %d..%d has %d bytes" % (first, last, nbytes)
    assert len(batches) == c["mini_batches_created"] - plans


NASTY = [
    "plain", "comma, inside", 'quote " inside', "new\nline", "\r\ncrlf inside", "", "ünïcödé",
    '"starts with a quote', "tab\tinside", "ends with comma,",
]

ECHO_SCRIPT = """\
def run(df):
    return df
"""


def test_quoted_fields_round_trip_with_append_row_format(bins, tmp_path):
    root = tmp_path / "job"
    (root / "data").mkdir(parents=True)
    rng = random.Random(7)
    rows = [[i, rng.choice(NASTY) * rng.randint(1, 40), rng.choice(NASTY)] for i in range(3000)]
    with open(root / "data" / "nasty.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "a", "b"])
        w.writerows(rows)
    # 4 KB: most boundaries fall inside a quoted field.
    job_file = write_job(root, ECHO_SCRIPT, mini_batch_size="4KB", process_count_per_node=2,
                         append_row_format={"delimiter": ",", "header": True})
    r = prs_run(bins, tmp_path, job_file)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(root / "out" / "parallel_run_step.txt", newline="") as f:
        out = list(csv.reader(f))
    assert out[0] == ["id", "a", "b"], "the header comes first, once"
    body = out[1:]
    assert ["id", "a", "b"] not in body
    ids_once((int(row[0]) for row in body), range(3000))
    got = {int(row[0]): row for row in body}
    for i, a, b in rows:
        assert got[i] == [str(i), a, b], "record %d changed: %r" % (i, got[i])


BATCH_SCRIPT = """\
def run(df):
    return df[["id"]].assign(n=len(df), first=int(df["id"].iloc[0]))
"""


def test_rows_mode_gives_n_records_per_mini_batch(bins, tmp_path):
    root = tmp_path / "job"
    (root / "data").mkdir(parents=True)
    write_csv(root / "data" / "a.csv", 0, 2500)
    write_csv(root / "data" / "b.tsv", 2500, 1200, delimiter="\t")
    job_file = write_job(root, BATCH_SCRIPT, mini_batch_size="1000 rows",
                         process_count_per_node=2)
    r = prs_run(bins, tmp_path, job_file)
    assert r.returncode == 0, r.stderr[-3000:]
    parsed = [list(map(int, line.split())) for line in
              (root / "out" / "parallel_run_step.txt").read_text().splitlines()]
    ids_once((p[0] for p in parsed), range(3700))
    sizes = sorted({(p[2], p[1]) for p in parsed})
    assert sizes == [(0, 1000), (1000, 1000), (2000, 500), (2500, 1000), (3500, 200)], sizes


KEYS_SCRIPT = """\
def run(df):
    keys = df[["store", "brand", "week"]].drop_duplicates()
    assert len(keys) == 1, "a mini-batch holds one key combination, got %d" % len(keys)
    return df[["id"]].assign(key="/".join(str(v) for v in keys.iloc[0]), n=len(df))
"""


def test_partition_keys_on_three_columns_across_files(bins, tmp_path):
    root = tmp_path / "job"
    (root / "data").mkdir(parents=True)
    rng = random.Random(3)
    expected = {}
    next_id = 0
    for name in ("jan.csv", "feb.csv", "mar.jsonl"):
        records = []
        for _ in range(400):
            key = (rng.choice(["s1", "s2", "s3"]), rng.choice(["acme", "zen"]), rng.randint(1, 3))
            records.append((next_id,) + key)
            expected.setdefault("%s/%s/%d" % key, set()).add(next_id)
            next_id += 1
        with open(root / "data" / name, "w", newline="") as f:
            if name.endswith(".jsonl"):
                for i, s, b, wk in records:
                    f.write(json.dumps({"id": i, "store": s, "brand": b, "week": wk}) + "\n")
            else:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(["id", "store", "brand", "week"])
                w.writerows(records)
    # mini_batch_size is ignored: partition_keys wins.
    job_file = write_job(root, KEYS_SCRIPT, mini_batch_size="1KB", process_count_per_node=2,
                         partition_keys=["store", "brand", "week"])
    r = prs_run(bins, tmp_path, job_file)
    assert r.returncode == 0, r.stderr[-3000:]
    parsed = [line.split() for line in
              (root / "out" / "parallel_run_step.txt").read_text().splitlines()]
    ids_once((int(p[0]) for p in parsed), range(next_id))
    got = {}
    for i, key, n in parsed:
        got.setdefault(key, set()).add(int(i))
        assert int(n) == len(expected[key]), "key %s came in a mini-batch of %s of its %d" % (
            key, n, len(expected[key]))
    assert got == expected


# run() never gets an empty DataFrame (that of the empty file has no "id" column).
IDS_SCRIPT = """\
def run(df):
    return df[["id"]]
"""


def test_formats_and_edge_files_each_record_once(bins, tmp_path):
    root = tmp_path / "job"
    data = root / "data"
    data.mkdir(parents=True)
    expected = []
    # JSON Lines.
    with open(data / "a.jsonl", "w") as f:
        for i in range(0, 300):
            f.write(json.dumps({"id": i, "text": "line\nbreak %d" % i}) + "\n")
    expected += range(0, 300)
    # TSV with quoted tabs and newlines.
    write_csv(data / "b.tsv", 300, 300, delimiter="\t")
    expected += range(300, 600)
    # A compressed CSV: one mini-batch, never split.
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "text"])
    w.writerows([i, text_for(i)] for i in range(600, 900))
    with gzip.open(data / "c.csv.gz", "wt") as f:
        f.write(buf.getvalue())
    expected += range(600, 900)
    # Empty, header only, no trailing newline.
    (data / "d_empty.csv").write_bytes(b"")
    (data / "e_header_only.csv").write_text("id,text\n")
    (data / "f_no_newline.csv").write_text("id,text\n900,a\n901,\"b\nc\"")
    expected += [900, 901]
    # One record far larger than the mini-batch size, between small ones, then a line of
    # blanks that the parser skips (so it is no record: error_threshold is 0).
    with open(data / "g_huge.csv", "w") as f:
        f.write("id,text\n902,small\n903,\"%s\"\n904,small\n  \n" % ("big\n" * 5000))
    expected += [902, 903, 904]

    job_file = write_job(root, IDS_SCRIPT, mini_batch_size="1KB", process_count_per_node=2)
    r = prs_run(bins, tmp_path, job_file)
    assert r.returncode == 0, r.stderr[-3000:]
    ids = [int(x) for x in (root / "out" / "parallel_run_step.txt").read_text().split()]
    ids_once(ids, expected)


def test_unknown_file_format_fails_the_job_with_the_fix(bins, tmp_path):
    root = tmp_path / "job"
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.csv").write_text("id\n1\n")
    (root / "data" / "notes.txt").write_text("hello\n")
    job_file = write_job(root, IDS_SCRIPT)
    r = prs_run(bins, tmp_path, job_file)
    assert r.returncode != 0
    assert "cannot tell the format of %s" % (root / "data" / "notes.txt") in r.stderr, r.stderr
    assert "set format: csv|tsv|jsonl on the input" in r.stderr, r.stderr


def test_missing_partition_key_names_the_key_and_columns(bins, tmp_path):
    root = tmp_path / "job"
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.csv").write_text("id,store\n1,s1\n")
    job_file = write_job(root, IDS_SCRIPT, partition_keys=["store", "brnd"], run_max_try=1)
    r = prs_run(bins, tmp_path, job_file)
    assert r.returncode != 0
    assert "brnd" in r.stderr and "store" in r.stderr, r.stderr
    assert "error_threshold exceeded" in r.stderr, r.stderr


def test_worker_without_pandas_fails_at_start_saying_what_to_install(bins, tmp_path):
    # A virtual environment without the system's packages: no pandas.
    venv = tmp_path / "venv"
    made = subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "job"
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.csv").write_text("id\n1\n")
    job_file = write_job(root, IDS_SCRIPT, environment={"python": str(venv / "bin" / "python")})
    r = prs_run(bins, tmp_path, job_file)
    assert r.returncode != 0
    assert "tabular inputs need pandas" in r.stderr, r.stderr
    assert "apt-get install python3-pandas" in r.stderr, r.stderr


def test_sales_example_one_model_per_store_and_brand(bins, tmp_path):
    example = bins.source_dir / "examples" / "sales"
    prep = subprocess.run([PYTHON, str(example / "prep.py")], capture_output=True, text=True,
                          timeout=120)
    assert prep.returncode == 0, prep.stderr
    out_dir = tmp_path / "out"
    r = prs_run(bins, tmp_path, example / "job.yaml", "--set", "output=%s" % out_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == str(out_dir / "forecast.csv")
    with open(out_dir / "forecast.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1080
    keys = [(row["date"], row["store"], row["brand"]) for row in rows]
    assert len(set(keys)) == 1080, "each input row once"
    # One model per pair: one trend per (store, brand), 12 pairs.
    trends = {}
    for row in rows:
        trends.setdefault((row["store"], row["brand"]), set()).add(row["trend_per_day"])
    assert len(trends) == 12 and all(len(t) == 1 for t in trends.values()), trends


def test_parallelrunstep_header_argument_keeps_its_row_format(bins, tmp_path):
    root = tmp_path / "job"
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.csv").write_text("id,city\n1,New York\n2,Oslo\n")
    job_file = write_job(root, ECHO_SCRIPT, arguments=["--append_row_dataframe_header"])
    r = prs_run(bins, tmp_path, job_file)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = (root / "out" / "parallel_run_step.txt").read_text().splitlines()
    assert lines == ["id city", "1 New York", "2 Oslo"], lines


# The first mini-batch (a.csv) changes b.csv and deletes c.csv, which were listed already.
SABOTAGE_SCRIPT = """\
import os

def run(df):
    if int(df["id"].iloc[0]) == 0:
        with open(os.path.join(DATA, "b.csv"), "a") as f:
            f.write("999,late\\n")
        os.remove(os.path.join(DATA, "c.csv"))
    return df[["id"]]
"""


def test_input_changed_or_vanished_mid_job_is_an_error_not_silent(bins, tmp_path):
    root = tmp_path / "job"
    data = root / "data"
    data.mkdir(parents=True)
    (data / "a.csv").write_text("id,text\n0,first\n")
    (data / "b.csv").write_text("id,text\n" + "".join("%d,b\n" % i for i in range(1, 200)))
    (data / "c.csv").write_text("id,text\n500,c\n")
    job_file = write_job(root, "DATA = %r\n" % str(data) + SABOTAGE_SCRIPT,
                         mini_batch_size="1KB", run_max_try=1, error_threshold=-1)
    r = prs_run(bins, tmp_path, job_file)
    assert r.returncode == 0, r.stderr[-3000:]  # error_threshold -1: the job ends SUCCEEDED
    ids = (root / "out" / "parallel_run_step.txt").read_text().split()
    assert ids == ["0"], "nothing of the changed or vanished files is read: %r" % ids
    errors = next((tmp_path / "state" / "jobs").glob("*/logs/user/error.txt")).read_text()
    assert "input file %s changed since the job listed it" % (data / "b.csv") in errors, errors
    assert "FileNotFoundError" in errors and str(data / "c.csv") in errors, errors
