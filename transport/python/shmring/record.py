"""Read and write MCAP recordings (what ``shmring record`` writes) in pure Python.

    from shmring.record import Reader
    import numpy as np

    with Reader("run.mcap") as r:
        for m in r:                                   # in file order (shmring: log-time order)
            if m.channel == "camera":
                image = np.frombuffer(m.data, np.uint8)   # m.data: a memoryview, no copy
        print(r.lost)                                 # {"prices": 0, "camera": 12}

Each message has ``channel`` (the topic), ``channel_id``, ``sequence``, ``log_time`` and
``publish_time`` (ns since the Unix epoch) and ``data``. A file a killed recorder left (no
summary, a torn last record) reads up to its last complete chunk; ``truncated`` says so. A file
that is not MCAP, or whose chunks fail their CRC, raises McapError.

``Writer`` writes MCAP files with zstd (python3-zstandard) or uncompressed chunks, message
indexes and a summary, which shmring replay, the reference readers and Foxglove read.
The format: https://mcap.dev/spec (docs/record.md describes what shmring puts in it).
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

__all__ = ["Channel", "McapError", "Message", "Reader", "Schema", "Writer"]

MAGIC = b"\x89MCAP0\r\n"

OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
OP_MESSAGE_INDEX, OP_CHUNK_INDEX, OP_ATTACHMENT, OP_ATTACHMENT_INDEX = 0x07, 0x08, 0x09, 0x0A
OP_STATISTICS, OP_METADATA, OP_METADATA_INDEX, OP_SUMMARY_OFFSET, OP_DATA_END = 0x0B, 0x0C, 0x0D, 0x0E, 0x0F

_LOSS = "shmring.loss"
_KIND = "shmring.kind"
_FIRST_SEQUENCE = "shmring.first_sequence"


class McapError(ValueError):
    """The file is not MCAP, or a part of it is corrupt (the message says where)."""


class Schema(NamedTuple):
    id: int
    name: str
    encoding: str
    data: bytes


class Channel(NamedTuple):
    id: int
    schema_id: int
    topic: str
    message_encoding: str
    metadata: Dict[str, str]


class Message(NamedTuple):
    channel: str
    channel_id: int
    sequence: int
    log_time: int
    publish_time: int
    data: memoryview


# --- Decoding ----------------------------------------------------------------------------------

class _Cursor:
    """Reads MCAP values from a buffer; running past its end raises McapError."""

    __slots__ = ("buf", "pos", "end", "where")

    def __init__(self, buf, start=0, end=None, where=0):
        self.buf = buf
        self.pos = start
        self.end = len(buf) if end is None else end
        self.where = where

    def take(self, n):
        if n < 0 or self.pos + n > self.end:
            raise McapError(f"record too short (at byte {self.where})")
        start = self.pos
        self.pos += n
        return start

    def u8(self):
        return self.buf[self.take(1)]

    def u16(self):
        return struct.unpack_from("<H", self.buf, self.take(2))[0]

    def u32(self):
        return struct.unpack_from("<I", self.buf, self.take(4))[0]

    def u64(self):
        return struct.unpack_from("<Q", self.buf, self.take(8))[0]

    def raw(self, n):
        start = self.take(n)
        return self.buf[start:start + n]

    def string(self):
        try:
            return bytes(self.raw(self.u32())).decode("utf-8")
        except UnicodeDecodeError:
            raise McapError(f"string is not UTF-8 (at byte {self.where})") from None

    def string_map(self):
        length = self.u32()
        inner = _Cursor(self.buf, self.pos, self.pos + length, self.where)
        self.take(length)
        out = {}
        while inner.pos < inner.end:
            k = inner.string()
            out[k] = inner.string()
        return out

    def u16_u64_map(self):
        length = self.u32()
        inner = _Cursor(self.buf, self.pos, self.pos + length, self.where)
        self.take(length)
        out = {}
        while inner.pos < inner.end:
            k = inner.u16()
            out[k] = inner.u64()
        return out


def _records(buf, start, end, where):
    """(opcode, body start, body end) of each record in buf[start:end]; stops at a torn one and
    returns its offset as the last item (None if none was torn)."""
    pos = start
    while pos < end:
        if end - pos < 9:
            yield None, pos, None
            return
        op = buf[pos]
        length = struct.unpack_from("<Q", buf, pos + 1)[0]
        if length > end - pos - 9:
            yield None, pos, None
            return
        yield op, pos + 9, pos + 9 + length
        pos += 9 + length


def _decompress(compression, data, size, where):
    if compression == "":
        if len(data) != size:
            raise McapError(f"chunk at byte {where} holds {len(data)} bytes but says {size}")
        return bytes(data)
    if compression != "zstd":
        raise McapError(f"chunk at byte {where}: compression {compression!r} is not supported")
    try:
        import zstandard
    except ImportError:  # pragma: no cover - Debian: python3-zstandard
        raise McapError("zstd chunks need the zstandard module (Debian: python3-zstandard)") from None
    try:
        declared = zstandard.frame_content_size(bytes(data[:18]))
    except zstandard.ZstdError:
        raise McapError(f"chunk at byte {where}: not a zstd frame") from None
    if declared not in (-1, size):  # refused before anything is allocated for it
        raise McapError(f"chunk at byte {where}: the zstd frame holds {declared} bytes, the chunk says {size}")
    try:
        out = zstandard.ZstdDecompressor().decompress(bytes(data), max_output_size=size)
    except zstandard.ZstdError as e:
        raise McapError(f"chunk at byte {where}: {e}") from None
    if len(out) != size:
        raise McapError(f"chunk at byte {where} decompresses to {len(out)} bytes but says {size}")
    return out


class Reader:
    """Reads an MCAP file: iterate it for its messages (see the module's documentation)."""

    #: A chunk that would decompress to more than this is refused (McapError).
    max_chunk_bytes = 2 << 30

    def __init__(self, path: str):
        self.path = path
        self._file = open(path, "rb")
        self._size = os.fstat(self._file.fileno()).st_size
        self.truncated = False
        head = self._read(0, min(self._size, 8 + 9))
        if len(head) < 8 or head[:8] != MAGIC:
            self.close()
            raise McapError(f"{path}: not an MCAP file")
        if len(head) < 17 or head[8] != OP_HEADER:
            self.close()
            raise McapError(f"{path}: no header record")
        length = struct.unpack_from("<Q", head, 9)[0]
        if length > self._size - 17:
            self.close()
            raise McapError(f"{path}: the header record is torn")
        c = _Cursor(self._read(17, length), where=8)
        self.profile = c.string()
        self.library = c.string()
        self._data_start = 17 + length
        self._channels: Dict[int, Channel] = {}
        self._schemas: Dict[int, Schema] = {}
        self._metadata: Optional[List[Tuple[str, Dict[str, str]]]] = None
        self._statistics = None
        self._summary_start = self._read_summary()

    # --- file ---

    def _read(self, offset, n):
        self._file.seek(offset)
        return self._file.read(n)

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def complete(self) -> bool:
        """The file has its summary and footer (its writer closed it)."""
        return self._summary_start is not None

    def _read_summary(self):
        tail = 29 + 8
        if self._size < self._data_start + tail:
            return None
        buf = self._read(self._size - tail, tail)
        if buf[29:] != MAGIC or buf[0] != OP_FOOTER or struct.unpack_from("<Q", buf, 1)[0] != 20:
            return None
        summary_start, offsets_start, crc = struct.unpack_from("<QQI", buf, 9)
        footer = self._size - tail
        if summary_start == 0 or not self._data_start <= summary_start <= footer:
            return None
        if offsets_start and not summary_start <= offsets_start <= footer:
            return None
        region = self._read(summary_start, footer + 25 - summary_start)
        if crc != 0 and zlib.crc32(region) != crc:
            return None
        end = (offsets_start or footer) - summary_start
        schemas, channels = {}, {}
        try:
            for op, a, b in _records(region, 0, end, summary_start):
                if op is None:
                    return None
                c = _Cursor(region, a, b, summary_start + a)
                if op == OP_SCHEMA:
                    s = Schema(c.u16(), c.string(), c.string(), bytes(c.raw(c.u32())))
                    if s.id:
                        schemas[s.id] = s
                elif op == OP_CHANNEL:
                    ch = Channel(c.u16(), c.u16(), c.string(), c.string(), c.string_map())
                    channels[ch.id] = ch
                elif op == OP_STATISTICS:
                    stats = dict(message_count=c.u64(), schema_count=c.u16(), channel_count=c.u32(),
                                 attachment_count=c.u32(), metadata_count=c.u32(), chunk_count=c.u32(),
                                 message_start_time=c.u64(), message_end_time=c.u64())
                    stats["channel_message_counts"] = c.u16_u64_map()
                    self._statistics = stats
        except McapError:
            return None
        self._schemas, self._channels = schemas, channels
        return summary_start

    # --- records of the data section ---

    def _data_records(self):
        """(opcode, offset, body) for each record of the data section, up to DataEnd or a torn one."""
        limit = self._summary_start if self._summary_start is not None else self._size
        pos = self._data_start
        while True:
            if limit - pos < 9:
                self.truncated = pos != limit
                return
            head = self._read(pos, 9)
            op = head[0]
            length = struct.unpack_from("<Q", head, 1)[0]
            if length > limit - pos - 9:
                self.truncated = True
                return
            if op in (OP_DATA_END, OP_FOOTER):
                return
            body = self._read(pos + 9, length) if op in (OP_CHUNK, OP_CHANNEL, OP_SCHEMA, OP_MESSAGE, OP_METADATA) else None
            yield op, pos, body
            pos += 9 + length

    def _chunk_records(self, body, where):
        c = _Cursor(body, where=where)
        start_time, end_time, size, crc = c.u64(), c.u64(), c.u64(), c.u32()
        compression = c.string()
        data = c.raw(c.u64())
        if size > self.max_chunk_bytes:
            raise McapError(f"chunk at byte {where} holds {size} bytes, over the limit")
        records = _decompress(compression, data, size, where)
        if crc and zlib.crc32(records) != crc:
            raise McapError(f"chunk at byte {where}: CRC mismatch")
        return start_time, end_time, records

    def _learn(self, op, buf, a, b, where):
        c = _Cursor(buf, a, b, where)
        if op == OP_CHANNEL:
            ch = Channel(c.u16(), c.u16(), c.string(), c.string(), c.string_map())
            self._channels.setdefault(ch.id, ch)
        elif op == OP_SCHEMA:
            s = Schema(c.u16(), c.string(), c.string(), bytes(c.raw(c.u32())))
            if s.id:
                self._schemas.setdefault(s.id, s)

    def _message(self, buf, view, a, b, where):
        c = _Cursor(buf, a, b, where)
        channel_id, sequence, log_time, publish_time = c.u16(), c.u32(), c.u64(), c.u64()
        channel = self._channels.get(channel_id)
        if channel is None:
            raise McapError(f"message on unknown channel {channel_id} (at byte {where})")
        return Message(channel.topic, channel_id, sequence, log_time, publish_time, view[c.pos:b])

    def messages(self, start: Optional[int] = None, end: Optional[int] = None,
                 channels: Optional[Sequence[str]] = None) -> Iterator[Message]:
        """Messages in file order, with start <= log_time < end (ns), on the named channels."""
        wanted = set(channels) if channels is not None else None
        lo = 0 if start is None else start
        hi = (1 << 64) if end is None else end
        self.truncated = False
        for op, pos, body in self._data_records():
            if op == OP_CHUNK:
                if len(body) >= 16:
                    first, last = struct.unpack_from("<QQ", body, 0)
                    if last < lo or first >= hi:
                        continue
                _, _, records = self._chunk_records(body, pos)
                view = memoryview(records)
                for rop, a, b in _records(records, 0, len(records), pos):
                    if rop is None:
                        raise McapError(f"torn record inside the chunk at byte {pos}")
                    if rop == OP_MESSAGE:
                        m = self._message(records, view, a, b, pos)
                        if lo <= m.log_time < hi and (wanted is None or m.channel in wanted):
                            yield m
                    else:
                        self._learn(rop, records, a, b, pos)
            elif op == OP_MESSAGE:
                m = self._message(body, memoryview(body), 0, len(body), pos)
                if lo <= m.log_time < hi and (wanted is None or m.channel in wanted):
                    yield m
            elif op in (OP_CHANNEL, OP_SCHEMA):
                self._learn(op, body, 0, len(body), pos)

    __iter__ = messages

    # --- what the file says about itself ---

    @property
    def channels(self) -> Dict[int, Channel]:
        """Channels by id (from the summary, or from a scan of a file that has none)."""
        if not self.complete and not self._channels:
            for _ in self.messages():
                pass
        return dict(self._channels)

    @property
    def schemas(self) -> Dict[int, Schema]:
        if not self.complete and not self._schemas:
            _ = self.channels
        return dict(self._schemas)

    @property
    def statistics(self) -> Optional[dict]:
        """The Statistics record (message_count, channel_message_counts, ...), if the file has one."""
        return self._statistics

    @property
    def metadata(self) -> List[Tuple[str, Dict[str, str]]]:
        """Every Metadata record: (name, entries), in file order."""
        if self._metadata is None:
            out = []
            for op, pos, body in self._data_records():
                if op == OP_METADATA:
                    c = _Cursor(body, where=pos)
                    out.append((c.string(), c.string_map()))
            self._metadata = out
        return list(self._metadata)

    @property
    def lost(self) -> Dict[str, int]:
        """Messages missing per channel (topic): as the recorder wrote them, or (a killed
        recorder's file) counted from the jumps in the sequence numbers. Channels of other
        writers count 0."""
        recorded = None
        for name, entries in self.metadata:
            if name == _LOSS:
                recorded = {int(k): int(v) for k, v in entries.items() if k.isdigit() and v.isdigit()}
        out: Dict[str, int] = {}
        if recorded is None:
            expected: Dict[int, Optional[int]] = {}
            counts: Dict[int, int] = {}
            for m in self.messages():
                ch = self._channels[m.channel_id]
                if _KIND not in ch.metadata:
                    continue
                if m.channel_id not in expected:
                    first = ch.metadata.get(_FIRST_SEQUENCE, "")
                    expected[m.channel_id] = int(first) & 0xFFFFFFFF if first.isdigit() else None
                    counts[m.channel_id] = 0
                e = expected[m.channel_id]
                if e is not None:
                    counts[m.channel_id] += (m.sequence - e) & 0xFFFFFFFF
                expected[m.channel_id] = (m.sequence + 1) & 0xFFFFFFFF
            recorded = counts
        for cid, ch in self.channels.items():
            out[ch.topic] = out.get(ch.topic, 0) + recorded.get(cid, 0)
        return out


# --- Writing -----------------------------------------------------------------------------------

def _string(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<I", len(b)) + b


def _string_map(m: Dict[str, str]) -> bytes:
    body = b"".join(_string(k) + _string(v) for k, v in sorted(m.items()))
    return struct.pack("<I", len(body)) + body


def _u16_u64_map(m: Dict[int, int]) -> bytes:
    body = b"".join(struct.pack("<HQ", k, v) for k, v in sorted(m.items()))
    return struct.pack("<I", len(body)) + body


def _record(op: int, body: bytes) -> bytes:
    return struct.pack("<BQ", op, len(body)) + body


class Writer:
    """Writes an MCAP file: add channels, write messages, close() (or use it as a context
    manager). Messages go into chunks (``compression`` "zstd" or "none") closed at
    ``chunk_size`` bytes, each followed by its message indexes; close() writes the summary."""

    def __init__(self, path: str, compression: str = "zstd", chunk_size: int = 1 << 20,
                 profile: str = "", library: str = "shmring-python", overwrite: bool = False):
        if compression not in ("zstd", "none"):
            raise ValueError("compression must be 'zstd' or 'none'")
        if compression == "zstd":
            import zstandard
            self._compressor = zstandard.ZstdCompressor(level=1)
        self._compression = "" if compression == "none" else "zstd"
        self._chunk_size = chunk_size
        self._file = open(path, "wb" if overwrite else "xb")
        self._offset = 0
        self._schemas: Dict[int, bytes] = {}
        self._channels: Dict[int, bytes] = {}
        self._chunk = bytearray()
        self._chunk_times: Optional[Tuple[int, int]] = None
        self._index: Dict[int, List[Tuple[int, int]]] = {}
        self._chunk_indexes: List[bytes] = []
        self._metadata_indexes: List[bytes] = []
        self._counts: Dict[int, int] = {}
        self._times: Optional[Tuple[int, int]] = None
        self._messages = 0
        self._chunks = 0
        self._put(MAGIC + _record(OP_HEADER, _string(profile) + _string(library)))

    def _put(self, b: bytes):
        self._file.write(b)
        self._offset += len(b)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add_schema(self, name: str, encoding: str, data: bytes) -> int:
        sid = len(self._schemas) + 1
        rec = _record(OP_SCHEMA, struct.pack("<H", sid) + _string(name) + _string(encoding) +
                      struct.pack("<I", len(data)) + bytes(data))
        self._schemas[sid] = rec
        self._chunk += rec
        return sid

    def add_channel(self, topic: str, message_encoding: str = "", schema_id: int = 0,
                    metadata: Optional[Dict[str, str]] = None) -> int:
        if schema_id and schema_id not in self._schemas:
            raise ValueError(f"no schema {schema_id}")
        cid = len(self._channels) + 1
        if cid > 0xFFFF:
            raise ValueError("65535 channels at most")
        rec = _record(OP_CHANNEL, struct.pack("<HH", cid, schema_id) + _string(topic) +
                      _string(message_encoding) + _string_map(metadata or {}))
        self._channels[cid] = rec
        self._chunk += rec
        return cid

    def write(self, channel_id: int, data, log_time: Optional[int] = None,
              publish_time: Optional[int] = None, sequence: int = 0):
        if channel_id not in self._channels:
            raise ValueError(f"no channel {channel_id}")
        if log_time is None:
            log_time = time.time_ns()
        if publish_time is None:
            publish_time = log_time
        payload = memoryview(data).cast("B")
        self._index.setdefault(channel_id, []).append((log_time, len(self._chunk)))
        self._chunk += struct.pack("<BQHIQQ", OP_MESSAGE, 22 + len(payload), channel_id,
                                   sequence & 0xFFFFFFFF, log_time, publish_time)
        self._chunk += payload
        lo, hi = self._chunk_times or (log_time, log_time)
        self._chunk_times = (min(lo, log_time), max(hi, log_time))
        lo, hi = self._times or (log_time, log_time)
        self._times = (min(lo, log_time), max(hi, log_time))
        self._counts[channel_id] = self._counts.get(channel_id, 0) + 1
        self._messages += 1
        if len(self._chunk) >= self._chunk_size:
            self._close_chunk()

    def write_metadata(self, name: str, entries: Dict[str, str]):
        self._close_chunk()
        rec = _record(OP_METADATA, _string(name) + _string_map(entries))
        self._metadata_indexes.append(_record(OP_METADATA_INDEX, struct.pack("<QQ", self._offset, len(rec)) +
                                              _string(name)))
        self._put(rec)

    def _close_chunk(self):
        if not self._chunk:
            return
        records = bytes(self._chunk)
        data = records if not self._compression else self._compressor.compress(records)
        start, end = self._chunk_times or (0, 0)
        chunk = _record(OP_CHUNK, struct.pack("<QQQI", start, end, len(records), zlib.crc32(records)) +
                        _string(self._compression) + struct.pack("<Q", len(data)) + data)
        chunk_start = self._offset
        self._put(chunk)
        offsets = {}
        index_start = self._offset
        for cid, entries in sorted(self._index.items()):
            offsets[cid] = self._offset
            body = b"".join(struct.pack("<QQ", t, o) for t, o in entries)
            self._put(_record(OP_MESSAGE_INDEX, struct.pack("<HI", cid, len(body)) + body))
        self._chunk_indexes.append(_record(OP_CHUNK_INDEX, struct.pack("<QQQQ", start, end, chunk_start, len(chunk)) +
                                           _u16_u64_map(offsets) + struct.pack("<Q", self._offset - index_start) +
                                           _string(self._compression) + struct.pack("<QQ", len(data), len(records))))
        self._chunk = bytearray()
        self._chunk_times = None
        self._index = {}
        self._chunks += 1

    def close(self):
        if self._file is None:
            return
        self._close_chunk()
        self._put(_record(OP_DATA_END, struct.pack("<I", 0)))
        summary_start = self._offset
        summary = bytearray()
        groups = []
        lo, hi = self._times or (0, 0)
        stats = _record(OP_STATISTICS, struct.pack("<QHIIIIQQ", self._messages, len(self._schemas),
                                                   len(self._channels), 0, len(self._metadata_indexes),
                                                   self._chunks, lo, hi) + _u16_u64_map(self._counts))
        for op, records in ((OP_SCHEMA, list(self._schemas.values())), (OP_CHANNEL, list(self._channels.values())),
                            (OP_CHUNK_INDEX, self._chunk_indexes), (OP_METADATA_INDEX, self._metadata_indexes),
                            (OP_STATISTICS, [stats])):
            if records:
                groups.append((op, summary_start + len(summary), sum(len(r) for r in records)))
                for r in records:
                    summary += r
        offsets_start = summary_start + len(summary)
        for op, start, length in groups:
            summary += _record(OP_SUMMARY_OFFSET, struct.pack("<BQQ", op, start, length))
        summary += struct.pack("<BQQQ", OP_FOOTER, 20, summary_start, offsets_start)
        summary += struct.pack("<I", zlib.crc32(summary))
        summary += MAGIC
        self._put(bytes(summary))
        self._file.close()
        self._file = None
