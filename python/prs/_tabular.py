"""Record-aligned byte ranges of tabular files (CSV, TSV, JSON Lines).

Groundwork for tabular inputs (issue 5, docs/tabular.md); not yet wired into
the master or the agent.

The master splits a file into byte ranges by size alone, without reading it. A
record belongs to the range that contains its FIRST byte. Because a quoted CSV
field may contain newlines, a worker cannot find the next record start from an
arbitrary offset, so one worker runs a per-file pre-pass,
:func:`scan_record_starts`, that reads the file once sequentially and maps every
size boundary to the first record start at or after it. Workers then call
:func:`read_range` with exact record starts.

Formats are ``"csv"``, ``"tsv"`` (both with a header line) and ``"jsonl"``.
Quoting follows RFC 4180: ``"`` opens and closes a quoted field and a doubled
``""`` inside one is a literal quote; both keep the parity of the quote count,
so a newline is a record separator exactly when an even number of ``"`` bytes
precede it (counted from the file's start). Line ends are ``\\n`` or
``\\r\\n``. A file whose name ends in ``.gz`` is read whole and never split.

numpy is required; :func:`read_range` also needs pandas.
"""

import io
import os

import numpy as np

FORMATS = ("csv", "tsv", "jsonl")
BLOCK_SIZE = 8 * 1024 * 1024

_NL = 0x0A
_CR = 0x0D
_QUOTE = 0x22


def _check_fmt(fmt):
    if fmt not in FORMATS:
        raise ValueError("unknown tabular format %r (expected one of %s)" % (fmt, ", ".join(FORMATS)))


def _is_gz(path):
    return os.fspath(path).lower().endswith(".gz")


def _no_gz(path, what):
    if _is_gz(path):
        raise ValueError("%s: a .gz file is read whole and cannot be %s" % (os.fspath(path), what))


def format_for(path):
    """The format implied by a file name: .csv, .tsv/.tab, .jsonl/.ndjson (optionally .gz)."""
    name = os.fspath(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".tsv") or name.endswith(".tab"):
        return "tsv"
    if name.endswith(".jsonl") or name.endswith(".ndjson"):
        return "jsonl"
    return "csv"


def _default_delimiter(fmt, delimiter):
    if delimiter is not None:
        return delimiter
    return "\t" if fmt == "tsv" else ","


def _iter_starts(f, begin, fmt, skip_header):
    """Yield (starts, blank) numpy arrays of record starts after ``begin``, in order.

    ``f`` is positioned at ``begin``, which must be outside quotes (a record
    start or 0). With ``skip_header`` the first record start (the data start)
    and later ones are yielded; the header's own bytes are never a record.
    ``begin`` itself is not yielded (callers know it). ``blank[i]`` is true
    when the record at ``starts[i]`` begins with a line end (an empty line,
    which parsers skip). A start equal to the file size is not yielded.
    """
    quoted = fmt != "jsonl"
    parity = 0
    offset = begin
    pending = None  # a start at the end of the previous block; its first byte is unknown
    while True:
        block = f.read(BLOCK_SIZE)
        if not block:
            return  # a pending start equal to the file size is not a record
        arr = np.frombuffer(block, dtype=np.uint8)
        n = arr.shape[0]
        if pending is not None:
            yield (np.array([pending], dtype=np.int64), np.array([arr[0] in (_NL, _CR)]))
            pending = None
        nl = np.flatnonzero(arr == _NL)
        if quoted:
            q = np.flatnonzero(arr == _QUOTE)
            if q.shape[0]:
                before = np.searchsorted(q, nl)  # quotes in this block before each newline
                nl = nl[((before + parity) & 1) == 0]
                parity = (parity + q.shape[0]) & 1
            elif parity:
                nl = nl[:0]  # the whole block is inside one quoted field
        rel = nl + 1
        if skip_header and rel.shape[0]:
            skip_header = False  # rel[0] is the data start; nothing before it is a record
        elif skip_header:
            offset += n
            continue
        if rel.shape[0] and rel[-1] == n:
            pending = offset + n
            rel = rel[:-1]
        if rel.shape[0]:
            first = arr[rel]
            yield (rel.astype(np.int64) + offset, (first == _NL) | (first == _CR))
        offset += n


def data_start(path, fmt):
    """The offset of the first record: after the header line for CSV/TSV, 0 for JSON Lines.

    The header may itself hold quoted newlines. A file without a complete
    header line (empty, or a header without a line end) gives the file size.
    """
    _check_fmt(fmt)
    _no_gz(path, "split")
    if fmt == "jsonl":
        return 0
    with open(path, "rb") as f:
        for starts, _ in _iter_starts(f, 0, fmt, skip_header=True):
            return int(starts[0])
        # header line ends exactly at EOF (or no line end): no records
        return os.fstat(f.fileno()).st_size


def scan_record_starts(path, boundaries, fmt):
    """For each boundary offset b, the offset of the first record start >= b.

    One sequential read of the file (stopping once the largest boundary is
    resolved). Boundaries inside the same record collapse to the same start;
    the result has exactly one start per boundary, in the boundaries' order.
    A boundary after the last record start maps to the file size. A boundary
    at or before the data start maps to the data start.
    """
    _check_fmt(fmt)
    _no_gz(path, "split")
    bounds = np.asarray(list(boundaries), dtype=np.int64)
    out = np.empty(bounds.shape[0], dtype=np.int64)
    if bounds.shape[0] == 0:
        return []
    order = np.argsort(bounds, kind="stable")
    sorted_b = bounds[order]
    i = 0  # next unresolved boundary in sorted_b
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if fmt == "jsonl":
            if size > 0:
                k = int(np.searchsorted(sorted_b, 0, side="right"))  # boundaries <= 0
                out[order[:k]] = 0
                i = k
            gen = _iter_starts(f, 0, fmt, skip_header=False)
        else:
            gen = _iter_starts(f, 0, fmt, skip_header=True)
        for starts, _ in gen:
            if i == sorted_b.shape[0]:
                break
            # boundaries <= starts[j] (and > the previous start) map to starts[j]
            idx = np.searchsorted(starts, sorted_b[i:], side="left")
            hit = idx < starts.shape[0]
            k = int(np.count_nonzero(hit))  # hits are a prefix because sorted_b is sorted
            if k:
                out[order[i:i + k]] = starts[idx[:k]]
                i += k
        out[order[i:]] = size
    return [int(x) for x in out]


def split_by_rows(path, fmt, rows):
    """Byte offsets of every ``rows``-th record start: record 0, rows, 2*rows, ...

    Mini-batch k is the range [result[k], result[k+1]) and the last one ends
    at the file size. Empty lines are not records (parsers skip them). No
    records gives an empty list.
    """
    _check_fmt(fmt)
    _no_gz(path, "split")
    if rows < 1:
        raise ValueError("rows must be at least 1, got %r" % (rows,))
    result = []
    count = 0  # non-blank records seen so far
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if fmt == "jsonl":
            if size == 0:
                return []
            first = f.read(1)
            f.seek(0)
            head = [(np.array([0], dtype=np.int64), np.array([first in (b"\n", b"\r")]))]
            gen = _iter_starts(f, 0, fmt, skip_header=False)
        else:
            head = []
            gen = _iter_starts(f, 0, fmt, skip_header=True)

        def chunks():
            yield from head
            yield from gen

        for starts, blank in chunks():
            real = starts[~blank]
            if not real.shape[0]:
                continue
            # indices (within this chunk) of records whose global number is a multiple of rows
            first_idx = (-count) % rows
            result.extend(int(x) for x in real[first_idx::rows])
            count += real.shape[0]
    return result


def _record_end(f, start, end, fmt, size):
    """Read from ``start`` (a record start) to the first record start >= ``end``; return the bytes."""
    if end >= size:
        f.seek(start)
        return f.read()
    if end <= start:
        return b""
    f.seek(start)
    head = f.read(end - start)
    arr = np.frombuffer(head, dtype=np.uint8)
    parity = 0
    if fmt != "jsonl":
        parity = int(np.count_nonzero(arr == _QUOTE)) & 1
    # If the byte before `end` is an unquoted newline, `end` itself is a start.
    if head[-1:] == b"\n" and parity == 0:
        return head
    parts = [head]
    f.seek(end)  # the file position is already here; explicit for clarity
    quoted = fmt != "jsonl"
    while True:
        block = f.read(1024 * 1024)
        if not block:
            return b"".join(parts)
        a = np.frombuffer(block, dtype=np.uint8)
        nl = np.flatnonzero(a == _NL)
        if quoted:
            q = np.flatnonzero(a == _QUOTE)
            if q.shape[0]:
                before = np.searchsorted(q, nl)
                nl = nl[((before + parity) & 1) == 0]
                parity = (parity + q.shape[0]) & 1
            elif parity:
                nl = nl[:0]
        if nl.shape[0]:
            parts.append(block[: int(nl[0]) + 1])
            return b"".join(parts)
        parts.append(block)


def _header_columns(f, fmt, delimiter, pd):
    """(column names, data start) of a CSV/TSV file; ([], size) when there is no header."""
    f.seek(0)
    ds = None
    for starts, _ in _iter_starts(f, 0, fmt, skip_header=True):
        ds = int(starts[0])
        break
    size = os.fstat(f.fileno()).st_size
    if ds is None:
        ds = size
    f.seek(0)
    header = f.read(ds)
    if not header.strip():
        return [], ds
    cols = pd.read_csv(io.BytesIO(header), sep=delimiter, nrows=0).columns
    return list(cols), ds


def read_range(path, start, end, fmt, delimiter=None):
    """A pandas DataFrame of the records whose first byte is in [start, end).

    ``start`` must be an exact record start (from :func:`scan_record_starts`,
    :func:`split_by_rows` or :func:`data_start`); a ``start`` inside the
    header is moved to the data start. ``end`` may be any offset: the last
    record read is the one containing byte ``end - 1``. CSV/TSV columns come
    from the header line; an empty file gives a DataFrame without columns.
    A ``.gz`` file is read whole and ``start``/``end`` are ignored.
    """
    _check_fmt(fmt)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("tabular inputs need pandas: pip install pandas") from None
    sep = _default_delimiter(fmt, delimiter)

    if _is_gz(path):
        import gzip

        with gzip.open(path, "rb") as g:
            data = g.read()
        if not data.strip():
            return pd.DataFrame()
        if fmt == "jsonl":
            return pd.read_json(io.BytesIO(data), lines=True)
        return pd.read_csv(io.BytesIO(data), sep=sep)

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if fmt == "jsonl":
            cols, ds = None, 0
        else:
            cols, ds = _header_columns(f, fmt, sep, pd)
            if not cols:
                return pd.DataFrame()
        start = max(start, ds)
        if start >= end or start >= size:
            return pd.DataFrame(columns=cols) if cols is not None else pd.DataFrame()
        data = _record_end(f, start, end, fmt, size)

    if not data.strip():
        return pd.DataFrame(columns=cols) if cols is not None else pd.DataFrame()
    if fmt == "jsonl":
        return pd.read_json(io.BytesIO(data), lines=True)
    return pd.read_csv(io.BytesIO(data), sep=sep, header=None, names=cols)
