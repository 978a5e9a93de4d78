"""Read raw bytes of any supported shape into an Arrow table of text (no type guessing).

Every reader returns one row per raw record, every cell a string ("" when empty), and the line
(CSV, iCalendar), row (XLSX) or record number (JSON) of each record a person would look at.
CSV goes through pyarrow's reader (after transcoding other encodings to UTF-8; lines may end in
LF, CRLF or CR alone); a row with fewer fields than the header is padded with "" and one with
more makes the file unreadable.
A file that cannot be read at all raises DataError naming the file and the problem.
Several plain CSV files of one profile are read as one (`read_raws`), so pyarrow parses their
blocks on its threads.
"""

from __future__ import annotations

import codecs
import csv
import functools
import gzip
import io
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
from pyarrow import csv as pacsv

from conditioners.profile import Profile
from conditioners.spreadsheet import sheet_rows
from demandops.core.errors import DataError
from demandops.core.limits import InputLimits, check_field_sizes, load_json

_LIMITS = InputLimits()


@dataclass(frozen=True)
class Raw:
    """The raw records of one file: every column as text, and the line of each record."""

    table: pa.Table  # strings; or, when `encoding` is set, bytes in that one-byte encoding
    lines: np.ndarray  # int64, one per row
    encoding: str | None = None

    def column(self, name: str) -> pa.ChunkedArray:
        """A column as strings."""
        column = self.table.column(name)
        return pa.chunked_array([decoded(c, self.encoding) for c in column.chunks], pa.string())

    def values(self, rows: np.ndarray) -> dict[str, list[str]]:
        """Each column's values at the indices `rows`, as Python strings."""
        taken = _take(self.table, rows).combine_chunks()
        return {
            n: decoded(c.chunk(0), self.encoding).to_pylist() if c.num_chunks else []
            for n, c in zip(taken.column_names, taken.columns, strict=True)
        }


def _take(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """The rows at the ascending indices `rows`, taken batch by batch (a take on the table
    would first join its chunks: a copy of every row)."""
    batches = table.to_batches()
    starts = np.cumsum([0, *(b.num_rows for b in batches)])
    cuts = np.searchsorted(rows, starts)
    taken = [
        batch.take(pa.array(rows[low:high] - start))
        for batch, start, low, high in zip(batches, starts, cuts, cuts[1:], strict=False)
        if high > low
    ]
    return pa.Table.from_batches(taken, table.schema)


def decoded(values: pa.Array, encoding: str | None) -> pa.Array:
    """Text values as strings: strings as they are, bytes decoded from a one-byte `encoding`
    (decoded all at once: each byte is one character, so its UTF-8 size gives the offsets)."""
    if encoding is None or pa.types.is_string(values.type):
        return values
    offsets = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)
    data = values.buffers()[2]
    raw = np.frombuffer(data if data is not None else b"", np.uint8)[offsets[0] : offsets[-1]]
    if values.null_count or raw.max(initial=0) < 0x80:
        return values.cast(pa.string())  # ASCII is UTF-8 (nulls: none in raw text)
    text = raw.tobytes().decode(encoding).encode("utf-8")
    ends = np.concatenate([[0], np.cumsum(_utf8_sizes(encoding)[raw])])
    starts = ends[offsets - offsets[0]].astype(np.int32)
    buffers = [None, pa.py_buffer(starts), pa.py_buffer(text)]
    return pa.Array.from_buffers(pa.string(), len(values), buffers)


@functools.cache
def _utf8_sizes(encoding: str) -> np.ndarray:
    """Per byte of a one-byte encoding, the size of its character in UTF-8."""
    return np.array([len(bytes([b]).decode(encoding, "replace").encode()) for b in range(256)])


def read_raw(data: bytes, file: str, profile: Profile, limits: InputLimits = _LIMITS) -> Raw:
    """The raw records of `data` as text, with every column the profile needs."""
    try:
        raw = _reader(profile, limits)(data, file, profile)
    except DataError:
        raise
    except (
        ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile, csv.Error, pa.ArrowException
    ) as exc:  # fmt: skip
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {file}: {problem}") from exc
    missing = [c for c in profile.raw_columns if c not in raw.table.column_names]
    if missing and raw.table.num_rows == 0 and profile.format in ("json", "ics"):  # no records
        return Raw(_table(raw.table.column_names + missing, []), raw.lines)
    if missing:
        found = raw.table.column_names[:20]
        raise DataError(f"cannot read {file}: missing columns {missing}; found {found}")
    check_field_sizes(raw.table, file, limits.field_chars)
    return raw


def read_raws(
    files: Sequence[tuple[str, bytes]], profile: Profile, limits: InputLimits = _LIMITS
) -> list[Raw | DataError]:
    """Per file (name, bytes) its raw records, or the DataError that stops reading it."""
    if profile.format == "csv" and len(files) > 1:
        joined = _read_joined(files, profile)
        if joined is not None:
            return [_sized(raw, file, limits) for raw, (file, _) in zip(joined, files, strict=True)]
    read: list[Raw | DataError] = []
    for file, data in files:
        try:
            read.append(read_raw(data, file, profile, limits))
        except DataError as exc:
            read.append(exc)
    return read


def _read_joined(files: Sequence[tuple[str, bytes]], profile: Profile) -> list[Raw] | None:
    """CSV files with the same header (in their first line) read as one CSV, header lines and
    all, each getting its own rows, when every line is one record (no carriage returns, blank
    lines or line breaks in quoted values: the joined read has as many rows as lines); else
    None, to read them one by one. Files in a one-byte encoding (or all ASCII) are read as
    bytes, not transcoded: their text is decoded per distinct value (`Raw.encoding`)."""
    encoding = codecs.lookup(profile.encoding).name
    if encoding != "utf-8" and encoding not in _UNDEFINED:
        return None
    heads: set[bytes] = set()
    datas: list[bytes] = []
    for file, data in files:
        if file.endswith(".gz") or profile.header_row != 1:
            return None
        if any(byte in data for byte in _UNDEFINED.get(encoding, ())):
            return None  # read alone, the file fails naming the byte
        heads.add(data[: data.find(b"\n")])
        datas.append(data if data.endswith(b"\n") else data + b"\n")
    joined = b"".join(datas)
    head = heads.pop()
    if heads or not head or b"\r" in joined:
        return None
    # records after the header; numpy counts line breaks about 5x faster than bytes.count
    sizes = [int(np.count_nonzero(np.frombuffer(d, np.uint8) == 10)) - 1 for d in datas]
    try:
        text = head.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError:
        return None
    names = _names(next(csv.reader([text], delimiter=profile.delimiter), []))
    if not set(profile.raw_columns) <= set(names):
        return None  # read one by one: each file fails naming what it misses
    raw_encoding = None if encoding == "utf-8" else encoding  # None: read as strings
    if raw_encoding is None and np.frombuffer(joined, np.uint8).max(initial=0) < 0x80:
        raw_encoding = "ascii"  # bytes, as they need no UTF-8 check
    try:
        table = _arrow_csv(joined, names, profile.delimiter, raw_encoding)
    except pa.ArrowInvalid:
        return None
    if min(sizes) < 1 or table.num_rows != sum(sizes) + len(sizes):
        return None
    starts = np.cumsum([1, *(n + 1 for n in sizes[:-1])])
    return [
        Raw(table.slice(start, n), np.arange(2, 2 + n, dtype=np.int64), raw_encoding)
        for start, n in zip(starts, sizes, strict=True)
    ]


def _arrow_csv(
    body: bytes, names: list[str], delimiter: str, encoding: str | None = None
) -> pa.Table:
    """Every column as strings, or (a one-byte `encoding`) as bytes."""
    kind = pa.string() if encoding is None else pa.binary()
    return pacsv.read_csv(
        pa.BufferReader(body),
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, kind)),
    )


def _names(header: list[str]) -> list[str]:
    """Column names as pandas gives them: unnamed ones numbered, repeats suffixed, stripped."""
    names: list[str] = []
    for i, name in enumerate(header):
        name = name or f"Unnamed: {i}"
        base, n = name, 0
        while name in names:
            n += 1
            name = f"{base}.{n}"
        names.append(name)
    return [n.strip() for n in names]


def _table(names: list[str], rows: list[dict[str, str]]) -> pa.Table:
    columns = {n: pa.array([r.get(n, "") for r in rows], pa.string()) for n in names}
    return pa.table(columns) if columns else pa.table({}).slice(0, 0)


def _read_csv(data: bytes, file: str, profile: Profile) -> Raw:
    if not data.strip():
        raise DataError(f"cannot read {file}: the file is empty")
    if file.endswith(".gz"):
        data = gzip.decompress(data)
    data = _lf_lines(_utf8(data, profile.encoding))
    head, body = _split_header(data, profile.header_row)
    if head is None:
        raise DataError(f"cannot read {file}: no header in line {profile.header_row}")
    header = next(csv.reader([head.decode("utf-8-sig")], delimiter=profile.delimiter), [])
    names = _names(header)
    if not body.strip(b"\r\n"):
        return Raw(_table(names, []), np.zeros(0, dtype=np.int64))
    try:
        table = _arrow_csv(body, names, profile.delimiter)
    except pa.ArrowInvalid as exc:  # ragged rows: read row by row, padding short ones
        if "Expected" not in str(exc):
            raise
        table = _ragged(body, names, profile.delimiter)
    first = profile.header_row + 1
    return Raw(table, np.arange(first, first + table.num_rows, dtype=np.int64))


def _lf_lines(data: bytes) -> bytes:
    """Lines ended by LF: a file whose lines end in CR alone (old Mac) has its CRs made LFs
    (LF and CRLF files are read as they are)."""
    return data.replace(b"\r", b"\n") if b"\r" in data and b"\n" not in data else data


_ASCII = bytes(range(0x80))
# one-byte encodings a joined read reads as bytes, each with the bytes it leaves undefined
_UNDEFINED: dict[str, tuple[bytes, ...]] = {
    "cp1252": (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d"),
    "iso8859-1": (),
}
_REPLACEABLE = frozenset(range(0xC4, 0x100))  # latin-1 letters whose UTF-8 is C3 + 80-BF


def _utf8(data: bytes, encoding: str) -> bytes:
    """`data` transcoded to UTF-8. Bytes of a cp1252 (or latin-1) file outside 0x80-0x9F mean
    what they mean in latin-1; when only a few letters from 0xC4 up occur (German text), each
    is replaced by its two UTF-8 bytes, which none of them can be part of (about twice as fast
    as decoding)."""
    name = codecs.lookup(encoding).name
    if name == "utf-8":
        return data
    if name in ("cp1252", "iso8859-1"):
        high = set(data.translate(None, _ASCII))
        if high <= _REPLACEABLE and len(high) <= 4:
            for byte in high:
                data = data.replace(bytes([byte]), chr(byte).encode("utf-8"))
            return data
        if not any(0x80 <= b <= 0x9F for b in high):
            return data.decode("latin-1").encode("utf-8")
    return data.decode(encoding).encode("utf-8")


def _split_header(data: bytes, header_row: int) -> tuple[bytes | None, bytes]:
    """The header line (the `header_row`-th line, or the first non-blank one after it) and the
    bytes after it."""
    lines = data.split(b"\n", header_row - 1)
    if len(lines) < header_row:
        return None, b""
    rest = lines[-1]
    while rest:
        head, _, rest = rest.partition(b"\n")
        if head.strip(b"\r"):
            return head.rstrip(b"\r"), rest
    return None, b""


def _ragged(body: bytes, names: list[str], delimiter: str) -> pa.Table:
    rows = []
    for number, fields in enumerate(csv.reader(io.StringIO(body.decode()), delimiter=delimiter)):
        if not fields:
            continue
        if len(fields) > len(names):
            raise ValueError(
                f"record {number + 1} after the header has {len(fields)} fields, "
                f"the header {len(names)}"
            )
        rows.append(dict(zip(names, fields, strict=False)))
    return _table(names, rows)


def _read_json(data: bytes, file: str, profile: Profile, limits: InputLimits) -> Raw:
    doc = load_json(
        data.decode(profile.encoding), f"cannot read {file}: the document", limits.json_depth
    )
    records: Any = doc
    for step in (profile.records or "").split(".") if profile.records else []:
        if not isinstance(records, dict) or step not in records:
            raise DataError(f"cannot read {file}: no {profile.records!r} list of records")
        records = records[step]
    if not isinstance(records, list):
        raise DataError(f"cannot read {file}: {profile.records or 'the document'} is not a list")
    top = doc if isinstance(doc, dict) else {}
    meta = {k: _text(top.get(k)) for k in profile.meta}
    rows = [{**meta, **{k.strip(): _text(v) for k, v in r.items()}} if isinstance(r, dict)
            else meta for r in records]  # fmt: skip
    names = list(dict.fromkeys(k for r in rows for k in r))
    return Raw(_table(names, rows), np.arange(1, len(rows) + 1, dtype=np.int64))


def _read_xlsx(data: bytes, file: str, profile: Profile, limits: InputLimits) -> Raw:
    rows = sheet_rows(data, file, profile.sheet, limits, _text)
    if len(rows) < profile.header_row:
        raise DataError(f"cannot read {file}: no header in row {profile.header_row}")
    names = _names(rows[profile.header_row - 1])
    body = [dict(zip(names, r, strict=False)) for r in rows[profile.header_row :]
            if any(v != "" for v in r)]  # fmt: skip
    first = profile.header_row + 1
    return Raw(_table(names, body), np.arange(first, first + len(body), dtype=np.int64))


def _read_ics(data: bytes, file: str, profile: Profile) -> Raw:
    """iCalendar (RFC 5545): one record per VEVENT, keyed by property name (params dropped)."""
    text = data.decode(profile.encoding).replace("\r\n", "\n")
    if "BEGIN:VCALENDAR" not in text:
        raise DataError(f"cannot read {file}: not an iCalendar file (no BEGIN:VCALENDAR)")
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line[:1] in (" ", "\t") and lines:  # folded continuation line
            lines[-1] = (lines[-1][0], lines[-1][1] + line[1:])
        else:
            lines.append((number, line))
    events: list[dict[str, str]] = []
    starts: list[int] = []
    current: dict[str, str] | None = None
    for number, line in lines:
        if line == "BEGIN:VEVENT":
            current = {}
            starts.append(number)
        elif line == "END:VEVENT" and current is not None:
            events.append(current)
            current = None
        elif current is not None and ":" in line:
            name, value = line.split(":", 1)
            current[name.split(";", 1)[0].upper()] = value.replace("\\,", ",")
    if current is not None:
        events.append(current)  # a truncated last event is still a record
    names = list(dict.fromkeys(k for e in events for k in e))
    return Raw(_table(names, events), np.array(starts, dtype=np.int64))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_READERS: dict[str, Callable[[bytes, str, Profile], Raw]] = {
    "csv": _read_csv,
    "ics": _read_ics,
}
_LIMITED: dict[str, Callable[[bytes, str, Profile, InputLimits], Raw]] = {
    "json": _read_json,
    "xlsx": _read_xlsx,
}


def _reader(profile: Profile, limits: InputLimits) -> Callable[[bytes, str, Profile], Raw]:
    """The reader of the profile's format (JSON and XLSX bounded by `limits`)."""
    if profile.format not in _LIMITED:
        return _READERS[profile.format]
    read = _LIMITED[profile.format]
    return lambda data, file, profile: read(data, file, profile, limits)


def _sized(raw: Raw, file: str, limits: InputLimits) -> Raw | DataError:
    try:
        check_field_sizes(raw.table, file, limits.field_chars)
    except DataError as exc:
        return exc
    return raw
