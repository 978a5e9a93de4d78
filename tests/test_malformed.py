"""A corpus of malformed inputs per source: each gives a clear error naming the file or a
quarantine with reasons, never a crash, and never a lost row (rows in = out + rejected)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from openpyxl import Workbook

from conditioners.context import Context
from conditioners.table import Conditioned
from demandops.core.errors import DataError
from tests.sources import CTX, STORES, run

Rows = list[list[str]]


def _csv(sep: str, encoding: str) -> Callable[[list[str], Rows], bytes]:
    def write(header: list[str], rows: Rows) -> bytes:
        return "\n".join(sep.join(r) for r in [header, *rows]).encode(encoding) + b"\n"

    return write


def _weather_json(header: list[str], rows: Rows) -> bytes:
    daily = [{k: (float(v) if k != "date" and v else v) for k, v in zip(header, r, strict=True)}
             for r in rows]  # fmt: skip
    doc = {"zip": "98101", "temp_unit": "C", "precip_unit": "mm", "daily": daily}
    return json.dumps(doc).encode()


def _xlsx(header: list[str], rows: Rows) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Demographics"
    sheet.append(["title"])
    sheet.append(["source"])
    sheet.append(header)
    for r in rows:
        sheet.append([float(v) if v.replace(".", "").lstrip("-").isdigit() else v for v in r])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _ics(header: list[str], rows: Rows) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0"]
    for r in rows:
        lines += [
            "BEGIN:VEVENT",
            *(f"{k}:{v}" for k, v in zip(header, r, strict=True)),
            "END:VEVENT",
        ]
    return ("\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n").encode()


@dataclass(frozen=True)
class Feed:
    profile: str
    write: Callable[[list[str], Rows], bytes]
    header: list[str]
    rows: Rows
    date_col: int  # a required date column
    absurd: tuple[int, str]  # a column and a value no real feed has
    ctx: Context = CTX


FEEDS = {
    "shipments": Feed(
        "shipments_distributor_a",
        _csv(",", "utf-8"),
        ["Store", "Item", "Week Ending", "Units"],
        [["S1", "P1", "01/05/2020", "4"], ["S1", "P2", "01/05/2020", "9"],
         ["S2", "P1", "12/29/2019", "12"]],
        2,
        (3, "-5000"),
    ),
    "weather": Feed(
        "weather_observations_json",
        _weather_json,
        ["date", "tmax", "tmin", "precip", "snow"],
        [["2019-12-30", "8.5", "1.0", "0.0", "0"], ["2019-12-31", "7.0", "2.0", "3.5", "0"],
         ["2020-01-01", "4.0", "-1.0", "0.0", "2"]],
        0,
        (1, "500"),
    ),
    "shoppers": Feed(
        "shoppers_xlsx",
        _xlsx,
        ["Store #", "Population (3 mi)", "Median HH Income ($)", "% Under 18", "% 60+",
         "Avg HH Size"],
        [["S1", "25000", "61000", "20", "18", "2.6"], ["S2", "12000", "55000", "22", "25", "2.4"],
         ["T1", "9000", "70000", "25", "15", "2.9"]],
        -1,
        (4, "500"),
        Context(stores=STORES),  # shoppers are checked against every region's stores
    ),
    "returns": Feed(
        "returns_distributor_b",
        _csv(";", "cp1252"),
        ["FILIALE", "ARTIKEL", "GUTSCHRIFT_DATUM", "MENGE", "EINHEIT"],
        [["S1", "P1", "02.01.2020", "3,0", "EA"], ["S1", "P2", "31.12.2019", "1,0", "CS"],
         ["S2", "P1", "24.12.2019", "2,0", "EA"]],
        2,
        (3, "-7,0"),
    ),
    "events": Feed(
        "events_calendar_ics",
        _ics,
        ["DTSTART;VALUE=DATE", "DTEND;VALUE=DATE", "SUMMARY", "LOCATION", "CATEGORIES"],
        [["20200103", "20200105", "Fair", "98101", "FESTIVAL"],
         ["20200110", "20200111", "Match", "98402", "SPORTS"],
         ["20200117", "20200118", "Break", "98101", "SCHOOL"]],
        0,
        (1, "20191201"),  # ends before it starts
    ),
}  # fmt: skip

GARBAGE = bytes(range(256)) * 4


def _with(rows: Rows, col: int, value: str) -> Rows:
    return [[value if i == col else v for i, v in enumerate(r)] for r in rows]


def _variant(feed: Feed, kind: str) -> bytes:
    h, rows, w = feed.header, feed.rows, feed.write
    if kind == "truncated":
        data = w(h, rows)
        return data[: int(len(data) * 0.6)]
    if kind == "wrong_encoding":
        text = w(h, rows)
        if feed.profile == "shoppers_xlsx":
            return _csv(",", "utf-8")(h, rows)  # a CSV named .xlsx
        return text.decode("cp1252").encode("utf-16")
    if kind == "missing_column":
        return w(h[1:], [r[1:] for r in rows])
    if kind == "all_null_column":
        return w(h, _with(rows, 0, ""))
    if kind == "unparseable_dates":
        col = feed.date_col
        return w(h, _with(rows, col, "someday")) if col >= 0 else w(h, _with(rows, 1, "lots"))
    if kind == "absurd_values":
        return w(h, _with(rows, *feed.absurd))
    if kind == "duplicate_keys":
        return w(h, rows + rows)
    if kind == "empty_file":
        return b""
    if kind == "header_only":
        return w(h, [])
    if kind == "binary_garbage":
        return GARBAGE
    raise ValueError(kind)


KINDS = [
    "truncated", "wrong_encoding", "missing_column", "all_null_column", "unparseable_dates",
    "absurd_values", "duplicate_keys", "empty_file", "header_only", "binary_garbage",
]  # fmt: skip
MUST_FAIL = {"wrong_encoding", "missing_column", "empty_file", "binary_garbage"}
ALL_REJECTED = {"all_null_column", "unparseable_dates", "absurd_values"}


def test_the_well_formed_files_condition_cleanly() -> None:
    for name, feed in FEEDS.items():
        result = run(feed.profile, feed.write(feed.header, feed.rows), feed.ctx)
        assert len(result.frame) == 3 and result.rejects.empty, (name, result.rejects)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("source", sorted(FEEDS))
def test_malformed_input_is_an_error_or_a_quarantine(source: str, kind: str) -> None:
    feed = FEEDS[source]
    file = f"raw/{source}/{kind}.bin"
    try:
        result: Conditioned | None = run(feed.profile, _variant(feed, kind), feed.ctx, file)
    except DataError as exc:
        message = str(exc)
        assert message.startswith(f"cannot read {file}: ") and "\n" not in message
        result = None
    if kind in MUST_FAIL:
        assert result is None, f"{kind} should make {source} unreadable"
        return
    if kind == "truncated" and result is None:
        return  # a binary or structured shape cut short cannot be read at all
    assert result is not None, f"{source} {kind} should be read"
    n = len(feed.rows)  # run() already checked rows_in == out + rejected
    if kind in ALL_REJECTED:
        assert result.rows_in == n and result.frame.empty
        assert set(result.rejects["reason"]) <= {
            "missing_value", "bad_date", "bad_number", "out_of_range", "negative_value",
            "bad_date_range", "unknown_store",
        }  # fmt: skip
    elif kind == "duplicate_keys":
        assert len(result.frame) == n and list(result.rejects["reason"]) == ["duplicate"] * n
    elif kind == "header_only":
        assert result.rows_in == 0 and result.frame.empty
    else:  # truncated and still readable: the cut-off row is rejected, the rest kept
        assert 0 < result.rows_in <= n and len(result.frame) >= 1
