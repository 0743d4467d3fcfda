"""Tabular inputs (CSV, TSV, JSON Lines): record-aligned ranges, split plans, groups.

The worker side of issue 5 (docs/tabular.md). The master names a RUN's work
with descriptors (docs/worker-protocol.md, "Tabular descriptors"):
:func:`parse_run` turns the items into a :class:`Range`, some :class:`Group`
descriptors or a :class:`Plan`, and a :class:`TabularReader` reads the first
two into a pandas DataFrame and answers a plan with split-plan lines.

The master never reads the data. A file larger than a mini-batch is planned
by one worker: :func:`plan_by_bytes` (or :func:`plan_by_rows`) reads it once,
sequentially, finds every record start and returns record-aligned ranges with
their record counts. A record belongs to the range that contains its FIRST
byte. Because a quoted CSV field may contain newlines, a record start cannot
be found from an arbitrary offset; hence the sequential pass. Workers then
call :func:`read_range` with exact record starts. With partition keys,
:func:`plan_by_keys` lists a file's key combinations and each group's
mini-batch reads the whole file and keeps the group's rows; both use
:func:`key_columns`, so they agree on what a key value is.

Formats are ``"csv"``, ``"tsv"`` (both with a header line) and ``"jsonl"``.
Quoting follows RFC 4180: ``"`` opens and closes a quoted field and a doubled
``""`` inside one is a literal quote; both keep the parity of the quote count,
so a newline is a record separator exactly when an even number of ``"`` bytes
precede it (counted from the file's start). Line ends are ``\\n`` or
``\\r\\n``. Empty lines are not records (the parsers skip them). A file whose
name ends in ``.gz`` is read whole and never split.

Needs numpy and pandas.
"""

import codecs
import collections
import gzip
import io
import json
import os

import numpy as np
import pandas as pd

FORMATS = ("csv", "tsv", "jsonl")
BLOCK_SIZE = 8 * 1024 * 1024
# For reads of about one line (a header, the end of a range's last record).
_SMALL_BLOCK = 64 * 1024
# (path, size, mtime_ns, inode, fmt, delimiter) -> (columns, data start)
_HEADER_CACHE = {}

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
        raise ValueError("%s: a .gz file is read whole and cannot be %s; make it one mini-batch "
                         "(range<TAB>fmt<TAB>0<TAB>-1<TAB>path)" % (os.fspath(path), what))


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


def _iter_starts(f, begin, fmt, skip_header, block_size=None):
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
    block_size = block_size or BLOCK_SIZE
    while True:
        block = f.read(block_size)
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


def _record_starts(f, fmt, begin=0):
    """Yield int64 arrays of the record starts of the open file ``f``, in order.

    Covers the file from ``begin``: 0, or a record start (which is yielded
    first). Blank lines are left out because the parsers skip them, so the
    starts are exactly the records a parser returns.
    """
    if begin > 0:
        f.seek(begin)
        yield np.array([begin], dtype=np.int64)
        for starts, blank in _iter_starts(f, begin, fmt, skip_header=False):
            real = starts[~blank]
            if real.shape[0]:
                yield real
        return
    f.seek(0)
    if fmt == "jsonl":
        first = f.read(1)
        if not first:
            return
        f.seek(0)
        if first not in (b"\n", b"\r"):
            yield np.zeros(1, dtype=np.int64)
        chunks = _iter_starts(f, 0, fmt, skip_header=False)
    else:
        chunks = _iter_starts(f, 0, fmt, skip_header=True)
    for starts, blank in chunks:
        real = starts[~blank]
        if real.shape[0]:
            yield real


def _ranges(starts, counts, size):
    """[(start, end, records)]: each range ends where the next starts, the last at ``size``."""
    return list(zip(starts, starts[1:] + [size], counts))


def _cut(f, total, firsts, starts, begin, limit):
    """True when a chunked plan has read past ``begin + limit``, has a complete range and
    the file goes on: the last range opened (``firsts[-1]``) is left for the next plan."""
    return (limit is not None and len(firsts) >= 2 and int(starts[-1]) >= begin + limit
            and f.tell() < total)


def plan_by_bytes(path, fmt, size, begin=0, limit=None):
    """Split a file into ranges of about ``size`` bytes: a list of (start, end, records).

    Range k holds the records whose first byte is in [k*size, (k+1)*size);
    empty ranges are left out. ``start`` and ``end`` are exact record starts
    (``end`` is the file size for the last range), so the ranges touch and
    every record is in exactly one. A range spans at most ``size`` bytes plus
    the rest of its last record (and blank lines after it). A file without
    records gives []. One sequential read of the file.

    Chunked: from ``begin`` (0, or where an earlier chunk said to go on) and,
    with ``limit``, stopping once about ``limit`` bytes were read; then the
    result is ``(ranges, next)`` where ``next`` is the start of the first
    range not planned (None at the end of the file). Without ``limit`` it is
    just the ranges.
    """
    _check_fmt(fmt)
    _no_gz(path, "split")
    if size < 1:
        raise ValueError("a plan's size must be at least 1 byte, got %r" % (size,))
    firsts, counts = [], []
    last_k = -1  # range number of the last record seen
    cut = None
    with open(path, "rb") as f:
        total = os.fstat(f.fileno()).st_size
        for starts in _record_starts(f, fmt, begin):
            ks = starts // size
            new = np.empty(ks.shape[0], dtype=bool)  # true where a record opens a range
            new[0] = ks[0] != last_k
            np.not_equal(ks[1:], ks[:-1], out=new[1:])
            opens = np.flatnonzero(new)
            carried = int(opens[0]) if opens.shape[0] else ks.shape[0]
            if carried:  # these records belong to the range the previous chunk opened
                counts[-1] += carried
            firsts.extend(starts[opens].tolist())
            counts.extend(np.diff(np.append(opens, ks.shape[0])).tolist())
            last_k = int(ks[-1])
            if _cut(f, total, firsts, starts, begin, limit):
                cut = firsts.pop()
                counts.pop()
                break
    return _chunk_result(firsts, counts, total, cut, limit)


def _chunk_result(firsts, counts, total, cut, limit):
    ranges = _ranges(firsts, counts, total if cut is None else cut)
    return ranges if limit is None else (ranges, cut)


def plan_by_rows(path, fmt, rows, begin=0, limit=None):
    """Split a file into ranges of ``rows`` records (the last may have fewer).

    Returns a list of (start, end, records) like :func:`plan_by_bytes`, and is
    chunked the same way (``begin`` is then the start of a range).
    """
    _check_fmt(fmt)
    _no_gz(path, "split")
    if rows < 1:
        raise ValueError("rows must be at least 1, got %r" % (rows,))
    firsts = []
    count = 0  # records seen so far (from begin)
    cut = None
    with open(path, "rb") as f:
        total = os.fstat(f.fileno()).st_size
        for starts in _record_starts(f, fmt, begin):
            # records whose number (from 0 at begin) is a multiple of rows
            firsts.extend(starts[(-count) % rows::rows].tolist())
            count += starts.shape[0]
            if _cut(f, total, firsts, starts, begin, limit):
                cut = firsts.pop()
                count = rows * len(firsts)
                break
    counts = [rows] * len(firsts)
    if firsts:
        counts[-1] = count - rows * (len(firsts) - 1)
    return _chunk_result(firsts, counts, total, cut, limit)


def split_by_rows(path, fmt, rows):
    """Byte offsets of every ``rows``-th record start: record 0, rows, 2*rows, ...

    Mini-batch k is the range [result[k], result[k+1]) and the last one ends
    at the file size. No records gives an empty list.
    """
    return [start for start, _, _ in plan_by_rows(path, fmt, rows)]


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
        block = f.read(_SMALL_BLOCK)  # usually one record: read little at a time
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


def _header_columns(f, fmt, delimiter):
    """(column names, data start) of a CSV/TSV file; ([], size) when there is no header.

    Every range of a file needs its header, so the answer is cached per file
    version (path, size, mtime) for the worker's life.
    """
    st = os.fstat(f.fileno())
    key = (f.name, st.st_size, st.st_mtime_ns, st.st_ino, fmt, delimiter)
    cached = _HEADER_CACHE.get(key)
    if cached is not None:
        return list(cached[0]), cached[1]
    result = _read_header_columns(f, fmt, delimiter)
    if len(_HEADER_CACHE) >= 64:
        _HEADER_CACHE.pop(next(iter(_HEADER_CACHE)))
    _HEADER_CACHE[key] = (tuple(result[0]), result[1])
    return result


def _read_header_columns(f, fmt, delimiter):
    f.seek(0)
    ds = None
    for starts, _ in _iter_starts(f, 0, fmt, skip_header=True, block_size=_SMALL_BLOCK):
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


def _file_bytes(path):
    """The whole content of a file, decompressed when its name ends in .gz."""
    if _is_gz(path):
        with gzip.open(path, "rb") as g:
            return g.read()
    with open(path, "rb") as f:
        return f.read()


def _read_json_lines(data):
    """A DataFrame of JSON Lines bytes. Values keep their JSON types: the string
    "007" stays a string, and nothing is turned into a date."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    return pd.read_json(io.BytesIO(data), lines=True, dtype=False, convert_dates=False)


def _parse_whole(data, fmt, sep):
    """A DataFrame of a whole file's bytes; no content at all gives one without columns."""
    if not data.strip():
        return pd.DataFrame()
    if fmt == "jsonl":
        return _read_json_lines(data)
    return pd.read_csv(io.BytesIO(data), sep=sep)


def read_range(path, start, end, fmt, delimiter=None):
    """A pandas DataFrame of the records whose first byte is in [start, end).

    ``start`` must be an exact record start (from :func:`plan_by_bytes`,
    :func:`plan_by_rows`, :func:`scan_record_starts` or :func:`data_start`);
    a ``start`` inside the header (such as 0) is moved to the data start.
    ``end`` may be any offset, or None for the end of the file: the last
    record read is the one containing byte ``end - 1``. CSV/TSV columns come
    from the header line; an empty file gives a DataFrame without columns.
    A ``.gz`` file is read whole and ``start``/``end`` are ignored.
    """
    _check_fmt(fmt)
    sep = _default_delimiter(fmt, delimiter)
    if _is_gz(path):
        return _parse_whole(_file_bytes(path), fmt, sep)

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if end is None:
            end = size
        if fmt == "jsonl":
            cols, ds = None, 0
        else:
            cols, ds = _header_columns(f, fmt, sep)
            if not cols:
                return pd.DataFrame()
        start = max(start, ds)
        if start >= end or start >= size:
            return pd.DataFrame(columns=cols)
        data = _record_end(f, start, end, fmt, size)

    if not data.strip():
        return pd.DataFrame(columns=cols)
    if fmt == "jsonl":
        return _read_json_lines(data)
    return pd.read_csv(io.BytesIO(data), sep=sep, header=None, names=cols)


# ---------------------------------------------------------------------------
# partition keys


def _json_key_string(value):
    """A JSON Lines key value as a string: strings as they are, null (or no key) as "",
    anything else as its compact JSON text (1 -> "1", 1.5 -> "1.5", true -> "true")."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _missing_key(key, path, columns):
    return ValueError(
        "key column %r is not in %s, which has the columns %s; partition_keys must name "
        "columns that every file of the input has" % (
            key, os.fsdecode(path), ", ".join(repr(c) for c in columns) or "(none)"))


def _jsonl_records(data, path):
    """Yield the JSON object of each non-blank line of JSON Lines bytes."""
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise ValueError("line %d of %s is not valid JSON: %s" % (
                number, os.fsdecode(path), e)) from None
        if not isinstance(record, dict):
            raise ValueError("line %d of %s is a JSON %s, not an object; JSON Lines records "
                             "must be objects" % (number, os.fsdecode(path),
                                                   type(record).__name__))
        yield record


def key_columns(data, fmt, keys, path):
    """The key values of every record of a whole file, as strings: one list per key.

    ``data`` is the file's content (decompressed); ``path`` is only for
    messages. This one function decides what a key value is, for both the
    plan (:func:`plan_by_keys`) and the group's rows (:class:`TabularReader`):

    - CSV/TSV: the field's text exactly as written (read with ``dtype=str``
      and no NA conversion), so ``1`` stays ``"1"``, ``01`` stays ``"01"``
      and an empty or missing field is ``""``.
    - JSON Lines: see :func:`_json_key_string`; a record without the key
      counts as null (``""``).

    A key that is no column of the file raises ValueError naming the key,
    the file and the columns it has. A file without records gives empty lists.
    """
    if not data.strip():
        return [[] for _ in keys]
    if fmt == "jsonl":
        columns = [[] for _ in keys]
        seen = set()
        for record in _jsonl_records(data, path):
            for column, key in zip(columns, keys):
                if key in record:
                    seen.add(key)
                column.append(_json_key_string(record.get(key)))
        for key in keys:
            if key not in seen:
                names = dict.fromkeys(name for record in _jsonl_records(data, path)
                                      for name in record)
                raise _missing_key(key, path, list(names))
        return columns
    sep = _default_delimiter(fmt, None)
    names = list(pd.read_csv(io.BytesIO(data), sep=sep, nrows=0).columns)
    for key in keys:
        if key not in names:
            raise _missing_key(key, path, names)
    frame = pd.read_csv(io.BytesIO(data), sep=sep, usecols=list(dict.fromkeys(keys)),
                        dtype=str, keep_default_na=False)
    return [frame[key].tolist() for key in keys]


def group_rows(columns):
    """{tuple of key strings: numpy array of the row positions holding it} for key columns."""
    frame = pd.DataFrame(dict(enumerate(columns)))
    if len(columns) == 1:
        return {(value,): rows for value, rows in frame.groupby(0, sort=False).indices.items()}
    return frame.groupby(list(range(len(columns))), sort=False).indices


def values_json(values):
    """The text that names a group: a compact JSON list of its key strings, ASCII only
    (so it never holds a tab or a newline)."""
    return json.dumps(list(values), ensure_ascii=True, separators=(",", ":"))


def plan_by_keys(path, fmt, keys):
    """The distinct key combinations of a whole file: a list of (records, values_json),
    sorted by values_json."""
    _check_fmt(fmt)
    groups = group_rows(key_columns(_file_bytes(path), fmt, keys, path))
    return sorted(((len(rows), values_json(values)) for values, rows in groups.items()),
                  key=lambda group: group[1])


# ---------------------------------------------------------------------------
# descriptors (docs/worker-protocol.md, "Tabular descriptors")

class Range(collections.namedtuple("Range", "fmt start end path stamp", defaults=(None,))):
    """Records [start, end) of one file; start 0 is the data start, end None the file's end."""
    __slots__ = ()


class Group(collections.namedtuple("Group", "fmt keys values path stamp", defaults=(None,))):
    """The rows of one file whose key strings (a tuple per key) equal values (a tuple)."""
    __slots__ = ()


class Plan(collections.namedtuple("Plan", "unit fmt arg path stamp begin",
                                  defaults=(None, 0))):
    """A split plan of one file: unit "bytes" or "rows" (arg an int) or "keys" (arg a
    tuple of column names). A bytes or rows plan is made in chunks from ``begin``."""
    __slots__ = ()


class InputChangedError(RuntimeError):
    """A file is not the version the master listed (its size or mtime differ)."""


def check_unchanged(descriptor):
    """Raise InputChangedError (or FileNotFoundError) unless the descriptor's file still has
    the size and mtime the master saw when it listed it (its stamp; None: not checked).

    Ranges and groups point at byte offsets and key combinations of that version: read
    from another one, records would be cut, skipped or repeated without a word.
    """
    if descriptor.stamp is None:
        return
    size, mtime_ns = descriptor.stamp
    # open + fstat, not stat: on NFS an open revalidates cached attributes.
    fd = os.open(descriptor.path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if os.environ.get("PRS_CHECK_INPUT_MTIME", "1") == "0":
        mtime_ns = st.st_mtime_ns  # nodes with their own copies of the data: size only
    if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
        raise InputChangedError(
            "input file %s changed since the job listed it (size %d -> %d bytes, mtime %d -> "
            "%d ns): prs reads each file as it was when listed; leave inputs unchanged while a "
            "job reads them, or submit the job again" % (
                os.fsdecode(descriptor.path), size, st.st_size, mtime_ns, st.st_mtime_ns))


_SHAPES = {
    "range": "range<TAB>fmt<TAB>start[@record]<TAB>end[@record]<TAB>path",
    "group": "group<TAB>fmt<TAB>keys_json<TAB>values_json<TAB>path",
    "plan": ("plan<TAB>bytes|rows|keys<TAB>fmt<TAB>size[@begin[@records]]|rows[@begin[@records]]"
             "|keys_json<TAB>path"),
}


class DescriptorError(ValueError):
    """A RUN item that is not a well-formed tabular descriptor."""


def _fields(item, kind):
    """The five tab-separated fields of a descriptor; the path (last) may hold tabs."""
    fields = item.split("\t", 4)
    if len(fields) != 5 or not fields[4]:
        raise DescriptorError("malformed %s descriptor %r: expected %s" % (
            kind, item, _SHAPES[kind]))
    return fields


def _int_field(item, kind, name, text, minimum):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise DescriptorError("malformed %s descriptor %r: %s must be an integer >= %d, got %r"
                              % (kind, item, name, minimum, text))
    return value


def _strings_field(item, kind, name, text):
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) for v in value)):
        raise DescriptorError("malformed %s descriptor %r: %s must be a non-empty JSON list of "
                              "strings, got %r" % (kind, item, name, text))
    return tuple(value)


def _fmt_field(item, kind, text):
    """(format, stamp) of a descriptor's format field: "csv", or "csv:SIZE:MTIME_NS" with the
    file's size and mtime when the master listed it."""
    fmt, sep, stamp = text.partition(":")
    if fmt not in FORMATS:
        raise DescriptorError("malformed %s descriptor %r: unknown format %r (expected one of "
                              "%s)" % (kind, item, fmt, ", ".join(FORMATS)))
    if not sep:
        return fmt, None
    size, _, mtime_ns = stamp.partition(":")
    return fmt, (_int_field(item, kind, "size", size, 0),
                 _int_field(item, kind, "mtime", mtime_ns, -(1 << 62)))


def parse_descriptor(item):
    """A RUN item (str) as a :class:`Range`, :class:`Group` or :class:`Plan`."""
    kind = item.split("\t", 1)[0]
    if kind == "range":
        _, fmt, start, end, path = _fields(item, kind)
        # "OFFSET" or "OFFSET@RECORD": the record numbers are for reports, not reading.
        start = start.partition("@")[0]
        end = _int_field(item, kind, "end", end.partition("@")[0], -1)
        fmt, stamp = _fmt_field(item, kind, fmt)
        return Range(fmt, _int_field(item, kind, "start", start, 0), None if end == -1 else end,
                     path, stamp)
    if kind == "group":
        _, fmt, keys, values, path = _fields(item, kind)
        keys = _strings_field(item, kind, "keys_json", keys)
        values = _strings_field(item, kind, "values_json", values)
        if len(keys) != len(values):
            raise DescriptorError("malformed group descriptor %r: %d keys but %d values" % (
                item, len(keys), len(values)))
        fmt, stamp = _fmt_field(item, kind, fmt)
        return Group(fmt, keys, values, path, stamp)
    if kind == "plan":
        _, unit, fmt, arg, path = _fields(item, kind)
        begin = 0
        if unit == "keys":
            arg = _strings_field(item, kind, "keys_json", arg)
        elif unit in ("bytes", "rows"):
            arg, at, begin_text = arg.partition("@")
            arg = _int_field(item, kind, "size" if unit == "bytes" else "rows", arg, 1)
            if at:  # "@BEGIN" or "@BEGIN@RECORDS": the records before BEGIN, for the master
                begin = _int_field(item, kind, "begin", begin_text.partition("@")[0], 0)
        else:
            raise DescriptorError("malformed plan descriptor %r: unknown unit %r (expected "
                                  "bytes, rows or keys)" % (item, unit))
        fmt, stamp = _fmt_field(item, kind, fmt)
        return Plan(unit, fmt, arg, path, stamp, begin)
    raise DescriptorError("RUN item %r is neither an absolute file path nor a tabular "
                          "descriptor (range, group or plan)" % (item,))


def parse_run(items):
    """The descriptors of one RUN: a single Range, a single Plan, or Groups of one group.

    Raises DescriptorError for anything else (a path among descriptors,
    several ranges, groups with different keys or values).
    """
    descriptors = []
    for item in items:
        if item.startswith("/"):
            raise DescriptorError("RUN mixes the file path %r with tabular descriptors; a "
                                  "mini-batch is either file paths or descriptors" % (item,))
        descriptors.append(parse_descriptor(item))
    first = descriptors[0]
    if isinstance(first, Group):
        for d in descriptors[1:]:
            if not isinstance(d, Group) or (d.keys, d.values) != (first.keys, first.values):
                raise DescriptorError(
                    "a RUN of group descriptors must name one group (the same keys and "
                    "values) in each item; got %r and %r" % (first, d))
    elif len(descriptors) != 1:
        raise DescriptorError("a RUN carries exactly one %s descriptor, got %d items" % (
            type(first).__name__.lower(), len(descriptors)))
    for d in descriptors:
        check_unchanged(d)
    return descriptors


class TabularReader:
    """Reads a RUN's descriptors into a DataFrame, or answers a plan descriptor.

    For groups it keeps the files it parsed, with their rows by key values,
    keyed by (path, size, mtime_ns, format, keys), least recently used first
    out once they hold more than :attr:`CACHE_BYTES` of file (the newest file
    always stays). A group usually spans every file of the input (a store's
    rows in each month), and one worker gets many groups, so each file should
    be parsed once per worker, not once per group. A file that changed is
    read again and replaces its old entry.
    """

    CACHE_BYTES = 512 << 20

    def __init__(self):
        self._parsed = collections.OrderedDict()  # key -> (DataFrame, group_rows dict)

    def read(self, descriptors):
        """The DataFrame of a Range, or of Groups concatenated in item order."""
        first = descriptors[0]
        if isinstance(first, Range):
            return read_range(first.path, first.start, first.end, first.fmt)
        parts = []
        for group in descriptors:
            frame, groups = self._grouped(group)
            parts.append(frame.iloc[groups.get(group.values, [])])
        return pd.concat(parts, ignore_index=True)

    def _grouped(self, group):
        st = os.stat(group.path)
        key = (group.path, st.st_size, st.st_mtime_ns, group.fmt, group.keys)
        if key in self._parsed:
            self._parsed.move_to_end(key)
            return self._parsed[key]
        for stale in [k for k in self._parsed if k[0] == group.path]:
            del self._parsed[stale]  # an older version of the file, or other keys
        data = _file_bytes(group.path)
        frame = _parse_whole(data, group.fmt, _default_delimiter(group.fmt, None))
        columns = key_columns(data, group.fmt, group.keys, group.path)
        del data
        if len(columns[0]) != len(frame):
            raise RuntimeError("%s: pandas read %d records but the key columns have %d; the "
                               "file has lines the two readers see differently" % (
                                   os.fsdecode(group.path), len(frame), len(columns[0])))
        groups = group_rows(columns)
        self._parsed[key] = (frame, groups)
        while len(self._parsed) > 1 and sum(k[1] for k in self._parsed) > self.CACHE_BYTES:
            self._parsed.popitem(last=False)
        return frame, groups

    # A bytes or rows plan reads about this much of its file (at least one
    # 8 MiB block; environment variable PRS_PLAN_CHUNK_BYTES), then hands the
    # rest to a new plan, so mini-batches of a large file start after the first
    # chunk is planned instead of after the whole file.
    PLAN_CHUNK_BYTES = 64 << 20

    @staticmethod
    def plan(plan):
        """The plan's lines (docs/worker-protocol.md): ``start\\tend\\trecords\\n`` for
        bytes and rows, then ``next\\tOFFSET\\n`` when the plan stopped after a chunk;
        ``records\\tvalues_json\\n`` for keys."""
        if plan.unit == "keys":
            return ["%d\t%s\n" % group for group in plan_by_keys(plan.path, plan.fmt, plan.arg)]
        split = plan_by_bytes if plan.unit == "bytes" else plan_by_rows
        limit = int(os.environ.get("PRS_PLAN_CHUNK_BYTES") or TabularReader.PLAN_CHUNK_BYTES)
        ranges, cut = split(plan.path, plan.fmt, plan.arg, begin=plan.begin, limit=max(1, limit))
        lines = ["%d\t%d\t%d\n" % r for r in ranges]
        if cut is not None:
            lines.append("next\t%d\n" % cut)
        return lines
