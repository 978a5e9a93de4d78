"""Read raw bytes of any supported shape into a table of text (no type guessing).

Every reader returns one row per raw record, every cell a string ("" when empty), indexed by
`line`: the line (CSV, iCalendar), row (XLSX) or record number (JSON) a person would look at.
A file that cannot be read at all raises DataError naming the file and the problem.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pandas as pd

from conditioners.profile import Profile
from demandops.errors import DataError


def read_raw(data: bytes, file: str, profile: Profile) -> pd.DataFrame:
    """The raw records of `data` as text, with every column the profile needs."""
    try:
        frame = _READERS[profile.format](data, file, profile)
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile, csv.Error) as exc:
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {file}: {problem}") from exc
    missing = [c for c in profile.raw_columns if c not in frame.columns]
    if missing and frame.empty and profile.format in ("json", "ics"):  # no records, no header
        return frame.assign(**dict.fromkeys(missing, ""))
    if missing:
        raise DataError(
            f"cannot read {file}: missing columns {missing}; found {list(frame.columns)[:20]}"
        )
    return frame


def _numbered(frame: pd.DataFrame, first_line: int) -> pd.DataFrame:
    frame = frame.fillna("").astype(str)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(first_line, first_line + len(frame), name="line")
    return frame


def _read_csv(data: bytes, file: str, profile: Profile) -> pd.DataFrame:
    if not data.strip():
        raise DataError(f"cannot read {file}: the file is empty")
    frame = pd.read_csv(
        io.BytesIO(data),
        sep=profile.delimiter,
        encoding=profile.encoding,
        skiprows=profile.header_row - 1,
        dtype=str,
        keep_default_na=False,
        compression="gzip" if file.endswith(".gz") else None,
        skip_blank_lines=True,
    )
    return _numbered(frame, profile.header_row + 1)


def _read_json(data: bytes, file: str, profile: Profile) -> pd.DataFrame:
    doc = json.loads(data.decode(profile.encoding))
    records: Any = doc
    for step in (profile.records or "").split(".") if profile.records else []:
        if not isinstance(records, dict) or step not in records:
            raise DataError(f"cannot read {file}: no {profile.records!r} list of records")
        records = records[step]
    if not isinstance(records, list):
        raise DataError(f"cannot read {file}: {profile.records or 'the document'} is not a list")
    top = doc if isinstance(doc, dict) else {}
    meta = {k: _text(top.get(k)) for k in profile.meta}
    rows = [{**meta, **{k: _text(v) for k, v in r.items()}} if isinstance(r, dict) else meta
            for r in records]  # fmt: skip
    return _numbered(pd.DataFrame(rows, dtype=str), 1)


def _read_xlsx(data: bytes, file: str, profile: Profile) -> pd.DataFrame:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        if profile.sheet is not None and profile.sheet not in book.sheetnames:
            raise DataError(
                f"cannot read {file}: no sheet {profile.sheet!r}; has {book.sheetnames}"
            )
        sheet = book[profile.sheet] if profile.sheet else book.worksheets[0]
        rows = [[_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    body = rows[profile.header_row :]
    if len(rows) < profile.header_row:
        raise DataError(f"cannot read {file}: no header in row {profile.header_row}")
    header = rows[profile.header_row - 1]
    width = len(header)
    body = [(r + [""] * width)[:width] for r in body if any(v != "" for v in r)]
    return _numbered(pd.DataFrame(body, columns=header, dtype=str), profile.header_row + 1)


def _read_ics(data: bytes, file: str, profile: Profile) -> pd.DataFrame:
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
    frame = pd.DataFrame(events, dtype=str)
    frame.index = pd.Index(starts, name="line")
    return frame.fillna("")


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


_READERS: dict[str, Callable[[bytes, str, Profile], pd.DataFrame]] = {
    "csv": _read_csv,
    "json": _read_json,
    "xlsx": _read_xlsx,
    "ics": _read_ics,
}
