"""The framed agent <-> worker protocol (docs/worker-protocol.md).

A frame is::

    uint32  length   big-endian; bytes that follow (type + fields); at most 1 GiB
    uint8   type
    field*  each: uint32 big-endian length, then that many bytes

Numbers inside fields are decimal ASCII. This module is stdlib-only and has no
state besides the small buffered reader below.
"""

import struct

# agent -> worker
RUN = 1
SHUTDOWN = 2
# worker -> agent
READY = 64
INIT_FAILED = 65
RESULT = 66
BYE = 67

NAMES = {
    RUN: "RUN",
    SHUTDOWN: "SHUTDOWN",
    READY: "READY",
    INIT_FAILED: "INIT_FAILED",
    RESULT: "RESULT",
    BYE: "BYE",
}

# Largest value of the length prefix (type byte + all fields).
MAX_FRAME = 1 << 30

# Values of the RESULT status field.
STATUS_OK = "ok"
STATUS_EXCEPTION = "exception"

# The fields of a RESULT frame, in order (docs/worker-protocol.md).
RESULT_FIELDS = ("task_id", "status", "succeeded", "row_count", "rows", "error", "traceback",
                 "run_seconds", "cpu_seconds", "items_total", "header")

_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">IB")


class ProtocolError(Exception):
    """A malformed, oversized, truncated or unexpected frame."""


def _as_bytes(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bool):  # bool is an int; refuse the ambiguity
        raise TypeError("protocol fields cannot be bool")
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, float):
        return repr(value).encode("ascii")
    raise TypeError("protocol fields are bytes, str, int or float, not %s" % type(value).__name__)


def encode_frame(msg_type, fields=()):
    """Return the bytes of one frame. Fields may be bytes, str (UTF-8), int or float."""
    if not 0 <= msg_type <= 255:
        raise ValueError("frame type %r does not fit in a byte" % (msg_type,))
    parts = []
    length = 1
    for field in fields:
        data = _as_bytes(field)
        parts.append(_U32.pack(len(data)))
        parts.append(data)
        length += 4 + len(data)
    if length > MAX_FRAME:
        raise ProtocolError("frame of %d bytes exceeds the %d-byte limit" % (length, MAX_FRAME))
    return _HEADER.pack(length, msg_type) + b"".join(parts)


def decode_body(body):
    """Split a frame body (type byte + fields, without the length prefix) into (type, [bytes])."""
    if len(body) < 1:
        raise ProtocolError("empty frame: no type byte")
    view = memoryview(body)
    msg_type = view[0]
    fields = []
    pos = 1
    end = len(view)
    while pos < end:
        if end - pos < 4:
            raise ProtocolError("truncated field length at offset %d" % pos)
        (n,) = _U32.unpack_from(view, pos)
        pos += 4
        if n > end - pos:
            raise ProtocolError("field of %d bytes at offset %d runs past the frame end" % (n, pos))
        fields.append(bytes(view[pos:pos + n]))
        pos += n
    return msg_type, fields


def decode_frame(data):
    """Decode one complete frame (with its length prefix). Returns (type, [bytes])."""
    if len(data) < 4:
        raise ProtocolError("frame shorter than its length prefix")
    (length,) = _U32.unpack_from(data, 0)
    if length > MAX_FRAME:
        raise ProtocolError("frame length %d exceeds the %d-byte limit" % (length, MAX_FRAME))
    if len(data) != 4 + length:
        raise ProtocolError("frame length prefix says %d bytes, got %d" % (length, len(data) - 4))
    return decode_body(memoryview(data)[4:])


class FrameReader:
    """Reads whole frames from a stream socket.

    read() returns (type, [bytes]) or None on a clean end of stream (EOF before
    the first byte of a frame). EOF inside a frame raises ProtocolError.
    """

    def __init__(self, sock, chunk_size=1 << 16):
        self._sock = sock
        self._chunk = chunk_size
        self._buf = bytearray()

    def _fill(self, need):
        """Buffer at least `need` bytes; return False on EOF before that."""
        while len(self._buf) < need:
            data = self._sock.recv(max(self._chunk, need - len(self._buf)))
            if not data:
                return False
            self._buf += data
        return True

    def read(self):
        if not self._fill(4):
            if self._buf:
                raise ProtocolError("end of stream inside a frame length prefix")
            return None
        (length,) = _U32.unpack_from(self._buf, 0)
        if length > MAX_FRAME:
            raise ProtocolError("frame length %d exceeds the %d-byte limit" % (length, MAX_FRAME))
        if length < 1:
            raise ProtocolError("frame of length 0 has no type byte")
        if not self._fill(4 + length):
            raise ProtocolError(
                "end of stream inside a frame: %d of %d bytes" % (len(self._buf) - 4, length))
        body = bytes(self._buf[4:4 + length])
        del self._buf[:4 + length]
        return decode_body(body)


def encode_result(**fields):
    """The bytes of a RESULT frame; takes every name of RESULT_FIELDS as a keyword.

    Seconds are floats written with six decimals. ``items_total`` is an int,
    or None when the worker could not read the mini-batch (an empty field).
    """
    if set(fields) != set(RESULT_FIELDS):
        raise TypeError("encode_result() needs exactly the fields %s, got %s" % (
            ", ".join(RESULT_FIELDS), ", ".join(sorted(fields))))
    values = dict(fields)
    values["run_seconds"] = "%.6f" % fields["run_seconds"]
    values["cpu_seconds"] = "%.6f" % fields["cpu_seconds"]
    if fields["items_total"] is None:
        values["items_total"] = ""
    return encode_frame(RESULT, [values[name] for name in RESULT_FIELDS])


def send_frame(sock, msg_type, fields=()):
    sock.sendall(encode_frame(msg_type, fields))
