"""The worker with tabular inputs (docs/worker-protocol.md, "Tabular descriptors"):
range, group and plan descriptors through the real worker process, the RESULT
fields items and header, the CSV row format and the missing-pandas message."""

import io
import json

import pandas as pd
import pandas.testing as pdt
import pytest

from prs import _tabular as tab
from test_tabular import write_csv, write_keyed_csv
from worker_harness import PYTHON

TABULAR = {"PRS_INPUT_TYPE": "tabular"}

# Echoes the mini-batch: one row per record, its id and the text's length.
ECHO = """
    import pandas as pd

    def run(mini_batch):
        assert isinstance(mini_batch, pd.DataFrame), type(mini_batch)
        return pd.DataFrame({"id": mini_batch["id"], "n": mini_batch["text"].str.len()})
"""


def test_range_and_plan_descriptors(start_worker, tmp_path):
    p = tmp_path / "d\tx.csv"  # a tab in the path: the path is the last field
    write_csv(p, 300)
    whole = pd.read_csv(p)
    w = start_worker(ECHO, env=TABULAR).expect_ready()

    r = w.run(1, ["range\tcsv\t0\t-1\t%s" % p])
    assert (r.status, r.items_total, r.succeeded, r.row_count, r.header) == (
        "ok", "300", 300, 300, "")
    assert r.rows.splitlines()[:2] == ["0 %d" % len(whole["text"][0]),
                                       "1 %d" % len(whole["text"][1])]

    r = w.run(2, ["plan\tbytes\tcsv\t1000\t%s" % p])
    assert (r.status, r.items_total, r.succeeded, r.error) == ("ok", "0", 0, "")
    plan = [tuple(int(x) for x in line.split("\t")) for line in r.rows.splitlines()]
    assert r.row_count == len(plan) > 5
    assert r.rows.endswith("\n") and plan[-1][1] == p.stat().st_size
    ids = []
    for k, (start, end, records) in enumerate(plan):
        r = w.run(10 + k, ["range\tcsv\t%d\t%d\t%s" % (start, end, p)])
        assert (r.status, r.items_total, r.succeeded) == ("ok", str(records), records)
        ids += [int(line.split()[0]) for line in r.rows.splitlines()]
    assert ids == list(range(300))

    r = w.run(3, ["plan\trows\tcsv\t120\t%s" % p])
    assert [line.split("\t")[2] for line in r.rows.splitlines()] == ["120", "120", "60"]
    assert w.shutdown() == 0


def test_plan_keys_then_groups(start_worker, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_keyed_csv(a, 120, seed=1)
    write_keyed_csv(b, 80, seed=2)
    w = start_worker("""
        def run(mini_batch):
            return [",".join(map(str, mini_batch["id"])) + ";" + ",".join(mini_batch["week"]
                                                                             .astype(str))]
    """, env=TABULAR).expect_ready()
    keys = json.dumps(["week", "brand"])
    plans = {}
    for path in (a, b):
        r = w.run(1, ["plan\tkeys\tcsv\t%s\t%s" % (keys, path)])
        assert (r.status, r.items_total, r.succeeded) == ("ok", "0", 0)
        plans[path] = dict(reversed(line.split("\t")) for line in r.rows.splitlines())
        assert r.row_count == len(plans[path]) == 6  # weeks 1-3 x brands x, y
    for values in plans[a]:
        r = w.run(2, ["group\tcsv\t%s\t%s\t%s" % (keys, values, path) for path in (a, b)])
        records = int(plans[a][values]) + int(plans[b].get(values, 0))
        assert (r.status, r.items_total, r.succeeded) == ("ok", str(records), 1)
        ids, weeks = r.rows.rstrip("\n").split(";")
        assert set(weeks.split(",")) == {json.loads(values)[0]}
        frames = [pd.read_csv(path, dtype=str, keep_default_na=False) for path in (a, b)]
        expected = [f[(f["week"] == json.loads(values)[0]) & (f["brand"] == json.loads(values)[1])]
                    for f in frames]
        assert ids.split(",") == list(pd.concat(expected)["id"])
    assert w.shutdown() == 0


def test_failures_report_the_error_and_the_items_field(start_worker, tmp_path):
    p = tmp_path / "d.csv"
    write_csv(p, 10)
    w = start_worker("""
        def run(mini_batch):
            if len(mini_batch) == 10:
                raise ValueError("model refused %d rows" % len(mini_batch))
            return list(range(len(mini_batch) + 1))
    """, env=TABULAR).expect_ready()
    r = w.run(1, ["range\tcsv\t0\t-1\t%s" % p])
    assert (r.status, r.items_total, r.error) == (
        "exception", "10", "ValueError: model refused 10 rows")
    assert "in run" in r.traceback

    start = tab.data_start(p, "csv")
    r = w.run(2, ["range\tcsv\t%d\t%d\t%s" % (start, start + 1, p)])
    assert (r.status, r.items_total, r.succeeded) == ("exception", "1", 0)
    assert r.error == ("run() returned 2 elements for 1 inputs; return at most one element per "
                       "input")

    gone = tmp_path / "gone.csv"
    r = w.run(3, ["range\tcsv\t0\t-1\t%s" % gone])
    assert (r.status, r.items_total, r.rows) == ("exception", "", "")
    assert r.error.startswith("reading the mini-batch failed: FileNotFoundError:")
    assert "gone.csv" in r.error and r.traceback

    r = w.run(4, ["plan\tbytes\tcsv\t100\t%s" % gone])
    assert (r.status, r.items_total) == ("exception", "0")
    assert r.error.startswith("planning %s failed: FileNotFoundError:" % gone)
    r = w.run(5, ['plan\tkeys\tcsv\t["nope"]\t%s' % p])
    assert r.status == "exception" and "key column 'nope' is not in %s" % p in r.error

    r = w.run(6, ["range\tcsv\t0\t-1\t%s" % p, "/other/file"])
    assert (r.status, r.items_total) == ("exception", "")
    assert "mixes the file path '/other/file' with tabular descriptors" in r.error

    r = w.run(7, ["/plain/file/a", "/plain/file/b"])  # file items: run() gets the list
    assert (r.status, r.items_total) == ("exception", "2")
    assert r.error.startswith("run() returned 3 elements for 2 inputs")
    assert w.shutdown() == 0


def test_plans_are_sent_with_summary_only(start_worker, tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("".join('{"id":%d,"text":"t"}\n' % i for i in range(5)))  # 20 bytes a line
    w = start_worker(ECHO, env=dict(TABULAR, PRS_OUTPUT_ACTION="summary_only")).expect_ready()
    r = w.run(1, ["plan\trows\tjsonl\t2\t%s" % p])
    assert r.rows == "0\t40\t2\n40\t80\t2\n80\t100\t1\n"
    r = w.run(2, ["range\tjsonl\t0\t-1\t%s" % p])
    assert (r.status, r.items_total, r.succeeded, r.row_count, r.rows) == ("ok", "5", 5, 0, "")


NASTY = """
    import pandas as pd

    def run(mini_batch):
        return pd.DataFrame({
            "text": ["a,b", 'say "hi"', "two\\nlines", "cr\\rhere", "", "tab\\tin", "plain"],
            "num": [1, 2, 3, 4, 5, 6, 7],
            "score": [0.5, None, 1e-7, 2.0, -1.25, 3.0, 4.0],
            "col, with comma": ["x", "y", "z", "w", "", None, "v"],
        })
"""


@pytest.mark.parametrize("delimiter", [",", "\t", ";"])
def test_csv_rows_with_header_read_back_with_pandas(start_worker, delimiter):
    w = start_worker(NASTY, env={"PRS_APPEND_ROW_DELIMITER": delimiter,
                                 "PRS_APPEND_ROW_HEADER": "1"}).expect_ready()
    r = w.run(1, ["/%d" % i for i in range(7)])
    assert (r.status, r.items_total, r.succeeded, r.row_count) == ("ok", "7", 7, 7)
    quoted = '"col, with comma"' if delimiter == "," else "col, with comma"
    assert r.header == delimiter.join(["text", "num", "score", quoted]) + "\n"
    got = pd.read_csv(io.StringIO(r.header + r.rows), sep=delimiter)
    exp = pd.DataFrame({
        "text": ["a,b", 'say "hi"', "two\nlines", "cr\rhere", None, "tab\tin", "plain"],
        "num": [1, 2, 3, 4, 5, 6, 7],
        "score": [0.5, None, 1e-7, 2.0, -1.25, 3.0, 4.0],  # NaN is written as nan
        "col, with comma": ["x", "y", "z", "w", None, None, "v"],  # "" and None as empty
    })
    pdt.assert_frame_equal(got, exp)


def test_header_in_the_default_format_and_only_for_dataframes(start_worker):
    w = start_worker("""
        import pandas as pd
        def run(mini_batch):
            if mini_batch[0] == "/list":
                return ["a b"]
            return pd.DataFrame({"file": ["x.png"], "label": [3]})
    """, env={"PRS_APPEND_ROW_HEADER": "1"}).expect_ready()
    r = w.run(1, ["/df"])
    assert (r.rows, r.header) == ("x.png 3\n", "file label\n")
    r = w.run(2, ["/list"])
    assert (r.rows, r.header) == ("a b\n", "")


@pytest.mark.parametrize("env, message", [
    ({"PRS_APPEND_ROW_DELIMITER": ";;"}, "PRS_APPEND_ROW_DELIMITER=';;' must be one character"),
    ({"PRS_APPEND_ROW_DELIMITER": '"'}, "other than a quote or a line end"),
    ({"PRS_APPEND_ROW_HEADER": "yes"}, "PRS_APPEND_ROW_HEADER='yes' must be 1"),
    ({"PRS_INPUT_TYPE": "uri_folder"}, "PRS_INPUT_TYPE='uri_folder' is neither file nor tabular"),
])
def test_bad_settings_fail_the_load(start_worker, env, message):
    w = start_worker("def run(b): return b\n", env=env)
    error, _ = w.expect_init_failed()
    assert message in error and w.init_kind == "load"
    assert w.wait() == 3


NO_PANDAS = """
raise ModuleNotFoundError("No module named 'pandas'", name="pandas")
"""


def test_missing_pandas_fails_the_load_of_a_tabular_worker(start_worker, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "pandas.py").write_text(NO_PANDAS)
    pythonpath = "%s:%s" % (shim, __import__("worker_harness").PYTHON_DIR)
    marker = tmp_path / "init-called"
    script = "def init():\n    open(%r, 'w').close()\ndef run(b):\n    return b\n" % str(marker)
    w = start_worker(script, env=dict(TABULAR, PYTHONPATH=pythonpath))
    error, tb = w.expect_init_failed()
    assert error == (
        "tabular inputs need pandas, which %s cannot import (No module named 'pandas'): install "
        "it for that interpreter, e.g. apt-get install python3-pandas or %s -m pip install "
        "pandas" % (PYTHON, PYTHON))
    assert w.init_kind == "load" and "ModuleNotFoundError" in tb
    assert w.wait() == 3
    assert not marker.exists()  # pandas is imported before init()

    # A file input does not need pandas.
    w = start_worker(script, env={"PYTHONPATH": pythonpath}).expect_ready()
    assert w.run(1, ["/a"]).rows == "/a\n"
