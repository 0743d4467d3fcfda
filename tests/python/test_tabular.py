"""prs._tabular: record-aligned byte ranges of CSV/TSV/JSON Lines files."""

import gzip
import io
import json
import os
import random

import pandas as pd
import pandas.testing as pdt
import pytest

from prs import _tabular as tab


def _text(rng, i):
    """A value with commas, doubled quotes and newlines, sometimes plain."""
    parts = ["v%d" % i]
    for _ in range(rng.randint(0, 4)):
        parts.append(rng.choice(["a,b", 'say "hi"', "line1\nline2", "x\r\ny", "plain", ",", '"', "\n"]))
    return "".join(parts)


def _csv_field(value, sep):
    if any(c in value for c in (sep, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def write_csv(path, n, sep=",", line_end="\n", trailing=True, seed=1, big=None):
    rng = random.Random(seed)
    lines = [sep.join(["id", "text", "num", '"quoted, header\nname"'])]
    rows = []
    for i in range(n):
        text = _text(rng, i)
        if big is not None and i == big:
            text = "big " + "y,\n\"" * 200
        rows.append((i, text, i * 3 % 17))
        lines.append(sep.join([str(i), _csv_field(text, sep), str(i * 3 % 17), _csv_field("h%d" % i, sep)]))
    data = line_end.join(lines) + (line_end if trailing else "")
    path.write_bytes(data.encode())
    return rows


def size_ranges(path, size):
    """Split by size alone (as the master does), then align with the scan."""
    total = os.path.getsize(path)
    bounds = list(range(0, total, size))
    return bounds


def read_all_ranges(path, fmt, size):
    total = os.path.getsize(path)
    bounds = size_ranges(path, size)
    starts = tab.scan_record_starts(path, bounds, fmt)
    assert len(starts) == len(bounds)
    assert starts == sorted(starts)
    for b, s in zip(bounds, starts):
        assert s >= b or s == tab.data_start(path, fmt)
    ends = starts[1:] + [total]
    frames = [tab.read_range(path, s, e, fmt) for s, e in zip(starts, ends)]
    return starts, ends, frames


def check_roundtrip(path, fmt, size, whole):
    starts, ends, frames = read_all_ranges(path, fmt, size)
    got = pd.concat([f for f in frames if len(f)], ignore_index=True)
    ids = list(got["id"])
    assert len(ids) == len(set(ids)), "a record appears twice"
    assert sorted(ids) == sorted(whole["id"]), "a record is missing"
    got = got.sort_values("id").reset_index(drop=True)
    exp = whole.sort_values("id").reset_index(drop=True)
    pdt.assert_frame_equal(got, exp, check_dtype=False)
    return starts, ends, frames


@pytest.mark.parametrize("size", [200, 57, 1000])
def test_csv_quoted_newlines_every_record_once(tmp_path, size):
    p = tmp_path / "d.csv"
    write_csv(p, 300)
    whole = pd.read_csv(p)
    starts, ends, frames = check_roundtrip(p, "csv", size, whole)
    # no range holds more than its size plus one record
    data = p.read_bytes()
    ds = tab.data_start(p, "csv")
    rec_starts = tab.split_by_rows(p, "csv", 1) + [len(data)]
    max_rec = max(b - a for a, b in zip(rec_starts, rec_starts[1:]))
    for s, e in zip(starts, ends):
        assert e - s <= size + max_rec
    assert ds == data.index(b"name\"\n") + len(b"name\"\n")


def test_scan_collapses_and_orders(tmp_path):
    p = tmp_path / "d.csv"
    write_csv(p, 50)
    total = os.path.getsize(p)
    bounds = [total + 5, 0, 10, 11, total - 1]
    starts = tab.scan_record_starts(p, bounds, "csv")
    ds = tab.data_start(p, "csv")
    assert starts[1] == ds and starts[2] == ds and starts[3] == ds
    assert starts[0] == total and starts[4] == total
    assert tab.scan_record_starts(p, [], "csv") == []


def test_tsv(tmp_path):
    p = tmp_path / "d.tsv"
    write_csv(p, 200, sep="\t")
    whole = pd.read_csv(p, sep="\t")
    assert tab.format_for(p) == "tsv"
    check_roundtrip(p, "tsv", 150, whole)


def test_jsonl(tmp_path):
    p = tmp_path / "d.jsonl"
    rng = random.Random(3)
    with open(p, "w") as f:
        for i in range(250):
            f.write(json.dumps({"id": i, "text": _text(rng, i), "num": i % 7}) + "\n")
    whole = pd.read_json(p, lines=True)
    assert tab.format_for(p) == "jsonl"
    check_roundtrip(p, "jsonl", 200, whole)
    assert tab.data_start(p, "jsonl") == 0


def test_empty_file(tmp_path):
    for fmt in ("csv", "jsonl"):
        p = tmp_path / ("e." + fmt)
        p.write_bytes(b"")
        assert tab.data_start(p, fmt) == 0
        assert tab.scan_record_starts(p, [0, 100], fmt) == [0, 0]
        assert tab.split_by_rows(p, fmt, 7) == []
        df = tab.read_range(p, 0, 0, fmt)
        assert len(df) == 0 and len(df.columns) == 0


@pytest.mark.parametrize("data", [b"a,b,c\n", b"a,b,c", b"a,b,c\r\n", b'a,"b\nb",c\n'])
def test_header_only(tmp_path, data):
    p = tmp_path / "h.csv"
    p.write_bytes(data)
    assert tab.data_start(p, "csv") == len(data)
    assert tab.scan_record_starts(p, [0, 3], "csv") == [len(data), len(data)]
    assert tab.split_by_rows(p, "csv", 7) == []
    df = tab.read_range(p, 0, len(data), "csv")
    assert len(df) == 0
    assert list(df.columns) == list(pd.read_csv(io.BytesIO(data)).columns)


def test_no_trailing_newline(tmp_path):
    p = tmp_path / "d.csv"
    write_csv(p, 120, trailing=False)
    whole = pd.read_csv(p)
    check_roundtrip(p, "csv", 200, whole)
    q = tmp_path / "d.jsonl"
    q.write_bytes(b'{"id": 1}\n{"id": 2}\n{"id": 3}')
    check_roundtrip(q, "jsonl", 5, pd.read_json(q, lines=True))


def test_record_larger_than_range(tmp_path):
    p = tmp_path / "d.csv"
    write_csv(p, 40, big=20)
    whole = pd.read_csv(p)
    starts, ends, frames = check_roundtrip(p, "csv", 100, whole)
    assert len(set(starts)) < len(starts), "boundaries inside the big record should collapse"
    holder = [f for f in frames if 20 in set(f["id"])]
    assert len(holder) == 1


def test_crlf(tmp_path):
    p = tmp_path / "d.csv"
    write_csv(p, 200, line_end="\r\n")
    whole = pd.read_csv(p)
    check_roundtrip(p, "csv", 200, whole)


def test_gz(tmp_path):
    raw = tmp_path / "d.csv"
    write_csv(raw, 100)
    p = tmp_path / "d.csv.gz"
    p.write_bytes(gzip.compress(raw.read_bytes()))
    assert tab.format_for(p) == "csv"
    df = tab.read_range(p, 0, 10, "csv")
    pdt.assert_frame_equal(df, pd.read_csv(raw))
    with pytest.raises(ValueError):
        tab.scan_record_starts(p, [0], "csv")
    e = tmp_path / "e.jsonl.gz"
    e.write_bytes(gzip.compress(b""))
    assert len(tab.read_range(e, 0, 0, "jsonl")) == 0


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_rows_mode(tmp_path, fmt):
    n = 100
    if fmt == "csv":
        p = tmp_path / "d.csv"
        write_csv(p, n)
    else:
        p = tmp_path / "d.jsonl"
        # a blank line is not a record
        p.write_bytes(b"".join(b'{"id": %d}\n' % i + (b"\n" if i == 50 else b"") for i in range(n)))
    total = os.path.getsize(p)
    starts = tab.split_by_rows(p, fmt, 7)
    assert len(starts) == (n + 6) // 7
    ends = starts[1:] + [total]
    frames = [tab.read_range(p, s, e, fmt) for s, e in zip(starts, ends)]
    assert [len(f) for f in frames] == [7] * (n // 7) + [n % 7]
    ids = [i for f in frames for i in f["id"]]
    assert ids == list(range(n))


def test_small_blocks(tmp_path, monkeypatch):
    """Block edges inside quoted fields and right after newlines."""
    monkeypatch.setattr(tab, "BLOCK_SIZE", 7)
    p = tmp_path / "d.csv"
    write_csv(p, 150)
    whole = pd.read_csv(p)
    check_roundtrip(p, "csv", 90, whole)
    starts = tab.split_by_rows(p, "csv", 7)
    monkeypatch.setattr(tab, "BLOCK_SIZE", 8 * 1024 * 1024)
    assert starts == tab.split_by_rows(p, "csv", 7)


def test_bad_format(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes(b"a\n1\n")
    with pytest.raises(ValueError):
        tab.scan_record_starts(p, [0], "parquet")


# ---------------------------------------------------------------------------
# split plans


def record_starts(path, fmt):
    """Every record start, from the already tested split_by_rows."""
    return tab.split_by_rows(path, fmt, 1)


def expected_plan(path, fmt, size):
    """plan_by_bytes computed the slow way: group every record start by start // size."""
    starts = record_starts(path, fmt)
    firsts, counts = [], []
    for s in starts:
        if firsts and firsts[-1] // size == s // size:
            counts[-1] += 1
        else:
            firsts.append(s)
            counts.append(1)
    return list(zip(firsts, firsts[1:] + [os.path.getsize(path)], counts))


def check_plan(path, fmt, plan, whole):
    """The plan's ranges touch, read back to the whole file, and their counts are right."""
    assert [s for s, _, _ in plan[1:]] == [e for _, e, _ in plan[:-1]]
    if plan:
        assert plan[-1][1] == os.path.getsize(path)
    frames = [tab.read_range(path, s, e, fmt) for s, e, _ in plan]
    assert [len(f) for f in frames] == [n for _, _, n in plan]
    got = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    assert list(got["id"]) == list(whole["id"]), "records missing, repeated or out of order"
    pdt.assert_frame_equal(got, whole, check_dtype=False)


def test_plan_bytes_multi_megabyte_csv_with_quoted_newlines(tmp_path):
    p = tmp_path / "big.csv"
    rows = write_csv(p, 80000, seed=7)
    assert os.path.getsize(p) > 2 * 1024 * 1024
    whole = pd.read_csv(p)
    assert len(whole) == len(rows)
    size = 256 * 1024
    plan = tab.plan_by_bytes(p, "csv", size)
    assert plan == expected_plan(p, "csv", size)
    assert len(plan) == -(-os.path.getsize(p) // size)
    check_plan(p, "csv", plan, whole)
    starts = record_starts(p, "csv") + [os.path.getsize(p)]
    largest = max(b - a for a, b in zip(starts, starts[1:]))
    for k, (s, e, _) in enumerate(plan):
        assert s >= k * size and e - s <= size + largest


@pytest.mark.parametrize("size", [1, 50, 333, 10 ** 9])
def test_plan_bytes_small_blocks_and_sizes(tmp_path, monkeypatch, size):
    """Ranges that continue across scan blocks, a range per record, one range for all."""
    p = tmp_path / "d.csv"
    write_csv(p, 150, big=70)
    expected = expected_plan(p, "csv", size)
    assert tab.plan_by_bytes(p, "csv", size) == expected
    monkeypatch.setattr(tab, "BLOCK_SIZE", 7)
    assert tab.plan_by_bytes(p, "csv", size) == expected
    check_plan(p, "csv", expected, pd.read_csv(p))


def test_plan_bytes_record_larger_than_size(tmp_path):
    p = tmp_path / "d.csv"
    write_csv(p, 40, big=20)
    plan = tab.plan_by_bytes(p, "csv", 100)
    check_plan(p, "csv", plan, pd.read_csv(p))
    holder = [(s, e) for s, e, _ in plan if 20 in set(tab.read_range(p, s, e, "csv")["id"])]
    assert len(holder) == 1 and holder[0][1] - holder[0][0] > 800  # the big record, whole


def test_plan_rows(tmp_path):
    p = tmp_path / "d.csv"
    write_csv(p, 100)
    plan = tab.plan_by_rows(p, "csv", 7)
    assert [n for _, _, n in plan] == [7] * 14 + [2]
    check_plan(p, "csv", plan, pd.read_csv(p))
    assert tab.plan_by_rows(p, "csv", 1000) == [(tab.data_start(p, "csv"), os.path.getsize(p), 100)]


def test_plans_of_tsv_and_jsonl(tmp_path):
    t = tmp_path / "d.tsv"
    write_csv(t, 300, sep="\t")
    check_plan(t, "tsv", tab.plan_by_bytes(t, "tsv", 500), pd.read_csv(t, sep="\t"))
    j = tmp_path / "d.jsonl"
    rng = random.Random(5)
    # blank lines are not records; the first record starts at 0
    j.write_bytes(b"".join((json.dumps({"id": i, "text": _text(rng, i)}) + "\n").encode()
                           + (b"\n" if i % 50 == 0 else b"") for i in range(200)))
    whole = pd.read_json(j, lines=True)
    plan = tab.plan_by_bytes(j, "jsonl", 700)
    assert plan[0][0] == 0 and sum(n for _, _, n in plan) == 200
    check_plan(j, "jsonl", plan, whole)
    check_plan(j, "jsonl", tab.plan_by_rows(j, "jsonl", 30), whole)


def test_plans_of_empty_header_only_and_unterminated_files(tmp_path):
    for name, data in [("e.csv", b""), ("e.jsonl", b""), ("h.csv", b"a,b\n"), ("h2.csv", b"a,b"),
                       ("b.jsonl", b"\n\n")]:
        p = tmp_path / name
        p.write_bytes(data)
        fmt = tab.format_for(p)
        assert tab.plan_by_bytes(p, fmt, 10) == []
        assert tab.plan_by_rows(p, fmt, 10) == []
        assert tab.plan_by_keys(p, fmt, ["a"]) == []
    p = tmp_path / "n.csv"
    p.write_bytes(b"a,b\n1,x\n2,\"y\ny\"")
    assert tab.plan_by_bytes(p, "csv", 3) == [(4, 8, 1), (8, 15, 1)]
    assert tab.plan_by_rows(p, "csv", 5) == [(4, 15, 2)]


def test_gz_is_read_whole_and_not_split(tmp_path):
    raw = tmp_path / "d.csv"
    write_csv(raw, 50)
    p = tmp_path / "d.csv.gz"
    p.write_bytes(gzip.compress(raw.read_bytes()))
    reader = tab.TabularReader()
    [d] = tab.parse_run(["range\tcsv\t123\t456\t%s" % p])
    pdt.assert_frame_equal(reader.read([d]), pd.read_csv(raw))
    assert tab.plan_by_keys(p, "csv", ["num"]) == tab.plan_by_keys(raw, "csv", ["num"])
    with pytest.raises(ValueError, match="read whole"):
        tab.plan_by_bytes(p, "csv", 100)


# ---------------------------------------------------------------------------
# partition keys and groups

KEY_VALUES = ["1", "01", "", "a,b", 'q"x', "line\nbreak", "NA", "\u00fcber", "tab\there"]


def write_keyed_csv(path, n, seed, sep=","):
    rng = random.Random(seed)
    lines = [sep.join(["id", "store", "brand", "week", "value"])]
    for i in range(n):
        keys = [rng.choice(KEY_VALUES), rng.choice(["x", "y"]), str(rng.randint(1, 3))]
        lines.append(sep.join([str(i)] + [_csv_field(k, sep) for k in keys]
                              + [_csv_field(_text(rng, i), sep)]))
    path.write_bytes(("\n".join(lines) + "\n").encode())


def check_groups(paths, fmt, keys, strings):
    """plan_by_keys lists each combination once, with its count, and reading a group gives
    exactly the rows whose key strings (per ``strings``, a DataFrame) match."""
    reader = tab.TabularReader()
    for path in paths:
        plan = tab.plan_by_keys(path, fmt, keys)
        texts = [v for _, v in plan]
        assert texts == sorted(set(texts))
        assert all("\t" not in v and "\n" not in v and v.isascii() for v in texts)
        whole = tab.read_range(path, 0, None, fmt)
        key_text = strings(path)
        assert sum(n for n, _ in plan) == len(whole)
        for n, values in plan:
            item = "group\t%s\t%s\t%s\t%s" % (fmt, json.dumps(keys), values, path)
            got = reader.read(tab.parse_run([item]))
            mask = (key_text[keys] == json.loads(values)).all(axis=1)
            assert len(got) == n == mask.sum()
            pdt.assert_frame_equal(got, whole[mask.values].reset_index(drop=True))


def test_plan_keys_and_groups_csv(tmp_path):
    p = tmp_path / "d.csv"
    write_keyed_csv(p, 400, seed=11)
    keys = ["store", "brand", "week"]
    plan = tab.plan_by_keys(p, "csv", keys)
    assert len(plan) > 30
    assert any(json.loads(v)[0] == "01" for _, v in plan)  # "01" is not "1"
    assert any(json.loads(v)[0] == "" for _, v in plan)  # empty stays empty, not NaN
    check_groups([p], "csv", keys,
                 lambda path: pd.read_csv(path, dtype=str, keep_default_na=False))


def test_plan_keys_and_groups_tsv(tmp_path):
    p = tmp_path / "d.tsv"
    write_keyed_csv(p, 200, seed=12, sep="\t")
    check_groups([p], "tsv", ["week", "store"],
                 lambda path: pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False))


def test_plan_keys_and_groups_jsonl(tmp_path):
    p = tmp_path / "d.jsonl"
    rng = random.Random(13)
    values = ["1", 1, 1.0, None, True, "", "x\ty", {"b": 1, "a": [2]}]
    with open(p, "w") as f:
        for i in range(150):
            record = {"id": i, "text": _text(rng, i)}
            k = rng.randrange(len(values) + 1)
            if k < len(values):  # else: no key at all, which counts as null
                record["k"] = values[k]
            f.write(json.dumps(record) + "\n")
    plan = tab.plan_by_keys(p, "jsonl", ["k"])
    assert [json.loads(v)[0] for _, v in plan] == sorted(
        ["", "1", "1.0", "true", "x\ty", '{"a":[2],"b":1}'], key=lambda s: json.dumps([s]))

    def strings(path):
        records = [json.loads(line) for line in open(path)]
        return pd.DataFrame({"k": [tab._json_key_string(r.get("k")) for r in records]})
    check_groups([p], "jsonl", ["k"], strings)


def test_group_over_several_files_in_item_order(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b\tname.csv"
    a.write_bytes(b"id,k\n1,x\n2,y\n3,x\n")
    b.write_bytes(b"k,id,extra\nx,4,e\ny,5,f\n")
    items = ['group\tcsv\t["k"]\t["x"]\t%s' % p for p in (b, a)]
    got = tab.TabularReader().read(tab.parse_run(items))
    assert list(got["id"]) == [4, 1, 3] and list(got.index) == [0, 1, 2]
    assert list(got.columns) == ["k", "id", "extra"]


def test_group_cache_parses_each_file_once_within_its_budget_and_sees_changes(tmp_path,
                                                                              monkeypatch):
    reads = []
    real = tab._file_bytes
    monkeypatch.setattr(tab, "_file_bytes", lambda path: reads.append(path) or real(path))
    paths = []
    for name in "abc":
        p = tmp_path / (name + ".csv")
        p.write_bytes(b"k,v\nx,1\ny,2\n")
        paths.append(str(p))
    reader = tab.TabularReader()

    def read(path, value="x"):
        item = 'group\tcsv\t["k"]\t["%s"]\t%s' % (value, path)
        return reader.read(tab.parse_run([item]))

    # Groups that span every file: each file is parsed once.
    for value in "xyxy":
        for p in paths:
            read(p, value)
    assert reads == paths
    # Over the budget, the least recently used file goes first.
    monkeypatch.setattr(tab.TabularReader, "CACHE_BYTES", 2 * os.path.getsize(paths[0]))
    d = tmp_path / "d.csv"
    d.write_bytes(b"k,v\nx,1\ny,2\n")
    read(paths[1])
    read(paths[2])
    read(str(d))  # over budget: a.csv and b.csv, used longest ago, go
    read(paths[2])
    read(paths[0])
    assert reads == paths + [str(d), paths[0]]
    with open(paths[0], "wb") as f:  # another size: read again
        f.write(b"k,v\nx,1\nx,3\ny,2\n")
    assert list(read(paths[0])["v"]) == [1, 3]
    assert len(reads) == 6


def test_json_lines_keep_json_types_and_may_start_with_a_bom(tmp_path):
    j = tmp_path / "bom.jsonl"
    j.write_bytes(b'\xef\xbb\xbf{"id": "007", "n": 1, "d": "2026-01-01"}\n{"id": "8", "n": 2, "d": "x"}\n')
    df = tab.read_range(str(j), 0, None, "jsonl")
    assert list(df["id"]) == ["007", "8"]  # strings stay strings
    assert list(df["n"]) == [1, 2]
    assert list(df["d"]) == ["2026-01-01", "x"]  # no date guessing
    assert tab.plan_by_bytes(str(j), "jsonl", 1 << 20) == [(0, j.stat().st_size, 2)]


def test_missing_key_names_the_key_the_file_and_its_columns(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes(b"id,store\n1,a\n")
    with pytest.raises(ValueError) as e:
        tab.plan_by_keys(p, "csv", ["store", "brand"])
    assert str(e.value).startswith("key column 'brand' is not in %s, which has the columns "
                                   "'id', 'store';" % p)
    j = tmp_path / "d.jsonl"
    j.write_bytes(b'{"id": 1, "a": 2}\n{"id": 2, "b": null}\n')
    with pytest.raises(ValueError, match="'c' is not in .*'id', 'a', 'b'"):
        tab.plan_by_keys(j, "jsonl", ["c"])
    assert tab.plan_by_keys(j, "jsonl", ["b"]) == [(2, '[""]')]  # in one record: not missing
    with pytest.raises(ValueError, match="'brand' is not in"):
        tab.TabularReader().read(tab.parse_run(['group\tcsv\t["brand"]\t["a"]\t%s' % p]))


# ---------------------------------------------------------------------------
# descriptors


def test_parse_descriptors():
    assert tab.parse_descriptor("range\tcsv\t0\t-1\t/d/a b\tc.csv") == tab.Range(
        "csv", 0, None, "/d/a b\tc.csv")
    assert tab.parse_descriptor("range\tjsonl\t10\t20\t/x") == tab.Range("jsonl", 10, 20, "/x")
    assert tab.parse_descriptor('group\ttsv\t["a","b"]\t["1",""]\t/x') == tab.Group(
        "tsv", ("a", "b"), ("1", ""), "/x")
    assert tab.parse_descriptor("plan\tbytes\tcsv\t1048576\t/x") == tab.Plan(
        "bytes", "csv", 1048576, "/x")
    assert tab.parse_descriptor("plan\trows\tcsv\t5\t/x").arg == 5
    assert tab.parse_descriptor('plan\tkeys\tcsv\t["k"]\t/x').arg == ("k",)


@pytest.mark.parametrize("item, message", [
    ("range\tcsv\t0\t/x", "expected range<TAB>fmt<TAB>start[@record]<TAB>end[@record]<TAB>path"),
    ("range\tcsv\t-5\t-1\t/x", "start must be an integer >= 0"),
    ("range\tparquet\t0\t-1\t/x", "unknown format 'parquet'"),
    ('group\tcsv\t["a"]\t["1","2"]\t/x', "1 keys but 2 values"),
    ('group\tcsv\t[]\t[]\t/x', "keys_json must be a non-empty JSON list of strings"),
    ("plan\tbytes\tcsv\t0\t/x", "size must be an integer >= 1"),
    ("plan\tlines\tcsv\t5\t/x", "unknown unit 'lines'"),
    ("data.csv", "neither an absolute file path nor a tabular descriptor"),
])
def test_malformed_descriptors_say_what_is_wrong(item, message):
    with pytest.raises(tab.DescriptorError) as e:
        tab.parse_descriptor(item)
    assert message in str(e.value)


@pytest.mark.parametrize("items, message", [
    (["range\tcsv\t0\t-1\t/a", "/b"], "mixes the file path '/b' with tabular descriptors"),
    (["range\tcsv\t0\t-1\t/a", "range\tcsv\t0\t-1\t/b"], "exactly one range descriptor"),
    (['group\tcsv\t["k"]\t["1"]\t/a', 'group\tcsv\t["k"]\t["2"]\t/b'], "must name one group"),
])
def test_runs_that_are_not_one_mini_batch(items, message):
    with pytest.raises(tab.DescriptorError, match=message):
        tab.parse_run(items)


def test_a_stamped_descriptor_refuses_a_file_that_changed(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(b"id\n1\n2\n")
    st = p.stat()
    stamp = "csv:%d:%d" % (st.st_size, st.st_mtime_ns)
    [r] = tab.parse_run(["range\t%s\t0\t-1\t%s" % (stamp, p)])
    assert (r.fmt, r.stamp) == ("csv", (st.st_size, st.st_mtime_ns))
    assert list(tab.TabularReader().read([r])["id"]) == [1, 2]
    with open(p, "ab") as f:
        f.write(b"3\n")
    with pytest.raises(tab.InputChangedError, match="changed since the job listed it "
                                                    r"\(size 7 -> 9 bytes"):
        tab.parse_run(["range\t%s\t0\t-1\t%s" % (stamp, p)])
    p.unlink()
    with pytest.raises(FileNotFoundError):
        tab.parse_run(["plan\tbytes\t%s\t10\t%s" % (stamp, p)])
    with pytest.raises(tab.DescriptorError, match="mtime must be an integer"):
        tab.parse_run(["range\tcsv:1:x\t0\t-1\t%s" % p])


@pytest.mark.parametrize("unit", ["bytes", "rows"])
def test_a_plan_made_in_chunks_equals_the_plan_made_at_once(tmp_path, monkeypatch, unit):
    monkeypatch.setattr(tab, "BLOCK_SIZE", 4096)  # many blocks, so many chunks
    rng = random.Random(11)
    p = tmp_path / "t.csv"
    with open(p, "w", newline="") as f:
        f.write('id,"multi\nline header"\n')
        for i in range(3000):
            f.write('%d,"%s"\n' % (i, 'q,""\n' * rng.randint(0, 4) + "z" * rng.randint(0, 90)))
            if i % 97 == 0:
                f.write("\n")  # blank lines are no records
    split, arg = (tab.plan_by_bytes, 3000) if unit == "bytes" else (tab.plan_by_rows, 41)
    whole = split(str(p), "csv", arg)
    for limit in (1, 10000, 50000):
        got, begin, chunks = [], 0, 0
        while True:
            ranges, cut = split(str(p), "csv", arg, begin=begin, limit=limit)
            got += ranges
            chunks += 1
            if cut is None:
                break
            assert ranges and ranges[-1][1] == cut, "a chunk ends where the next begins"
            begin = cut
        assert got == whole
        assert chunks > 3
    # Through the descriptor and the reader: the answer names where to go on.
    monkeypatch.setattr(tab.TabularReader, "PLAN_CHUNK_BYTES", 10000)
    lines = tab.TabularReader.plan(tab.parse_run(["plan\t%s\tcsv\t%d\t%s" % (unit, arg, p)])[0])
    assert lines[-1].startswith("next\t")
    cut = int(lines[-1].split("\t")[1])
    more = tab.TabularReader.plan(
        tab.parse_run(["plan\t%s\tcsv\t%d@%d\t%s" % (unit, arg, cut, p)])[0])
    first = [tuple(map(int, line.split("\t"))) for line in lines[:-1]]
    assert first + [tuple(map(int, line.split("\t"))) for line in more
                    if not line.startswith("next")][:2] == whole[:len(first) + 2]


def test_a_chunk_that_reaches_the_end_of_the_file_plans_it_to_the_end(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("id\n" + "".join("%d\n" % i for i in range(1000)))
    ranges, cut = tab.plan_by_bytes(str(p), "csv", 300, limit=100)  # one block holds it all
    assert cut is None
    assert ranges == tab.plan_by_bytes(str(p), "csv", 300)


def test_size_only_input_check_for_nodes_with_their_own_copies(tmp_path, monkeypatch):
    p = tmp_path / "a.csv"
    p.write_bytes(b"id\n1\n")
    st = p.stat()
    item = "range\tcsv:%d:%d\t0\t-1\t%s" % (st.st_size, st.st_mtime_ns + 1, p)
    with pytest.raises(tab.InputChangedError):
        tab.parse_run([item])
    monkeypatch.setenv("PRS_CHECK_INPUT_MTIME", "0")
    assert tab.parse_run([item])[0].path == str(p)
