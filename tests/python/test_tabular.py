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
