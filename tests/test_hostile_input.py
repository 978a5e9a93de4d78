"""Hostile raw files: each is a one-line error naming the file or a quarantine with a reason,
never a crash, and the rest of the files go on. The files are built here, not shipped."""

from __future__ import annotations

import io
import json
import re
import tracemalloc
import zipfile
from datetime import date

import pandas as pd
import pyarrow as pa
import pytest
from openpyxl import Workbook

from conditioners.combine import combine_parts
from conditioners.context import Context
from conditioners.engine import condition_files
from conditioners.readers import read_raw
from conditioners.table import Conditioned
from demandops.core.errors import DataError
from demandops.core.limits import InputLimits, json_depth, load_json
from tests.sources import CTX, profiles, reasons, run

WEATHER = {"zip": "98101", "temp_unit": "C", "precip_unit": "mm"}
DAY = {"date": "2019-12-30", "tmax": 5.0, "tmin": 1.0, "precip": 0.0, "snow": 0.0}
SHIPMENTS = "Store,Item,Week Ending,Units\n"


def _weather(daily: object) -> bytes:
    return json.dumps({**WEATHER, "daily": daily}).encode()


def test_json_depth_is_counted_without_parsing() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[{{{"}], "c": "\\"]]"}') == 3
    assert json_depth(b'"\\\\" [[ ]]') == 2  # an escaped backslash does not escape the quote
    assert json_depth(b"[]") == 1 and json_depth(b"7") == 0
    with pytest.raises(DataError, match="nested 100000 deep, deeper than the limit of 64"):
        load_json("[" * 100_000 + "]" * 100_000, "the body", 64)


def test_json_nested_100000_deep_is_unreadable_and_the_other_files_go_on() -> None:
    deep = b'{"zip": "98101", "daily": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    files = [("raw/weather/observations/deep.json", deep)]
    files.append(("raw/weather/observations/ok.json", _weather([DAY])))
    bad, good = condition_files(files, profiles()["weather_observations_json"], CTX)
    assert isinstance(bad, DataError) and "\n" not in str(bad)
    assert str(bad).startswith(
        "cannot read raw/weather/observations/deep.json: the document is nested"
    )
    assert isinstance(good, Conditioned) and len(good.frame) == 1


def test_a_huge_field_is_unreadable_naming_file_and_column() -> None:
    day = {**DAY, "date": "x" * 2_000_000}
    with pytest.raises(DataError, match=r"huge.json: a value of 2000000 bytes in column 'date'"):
        read_raw(_weather([day]), "raw/huge.json", profiles()["weather_observations_json"])
    small = InputLimits(field_chars=100)  # the limit is configurable
    with pytest.raises(DataError, match="more than the limit of 100"):
        read_raw(_weather([{**DAY, "date": "y" * 101}]), "f.json", profiles()[
            "weather_observations_json"], small)  # fmt: skip


def test_dates_outside_the_plausible_range_are_bad_dates() -> None:
    body = SHIPMENTS + "".join(
        f"S1,P1,{day},5\n" for day in ("01/05/2020", "12/31/9999", "01/07/1900", "13/45/2020")
    )
    result = run("shipments_distributor_a", body.encode())
    assert reasons(result) == {3: "bad_date", 4: "bad_date", 5: "bad_date"}
    assert list(result.frame["units"]) == [5]
    # the range is configured: a narrower one rejects what the default accepts
    narrow = Context(**{**CTX.__dict__, "limits": InputLimits(first_date=date(2020, 1, 1))})
    old = run("shipments_distributor_a", (SHIPMENTS + "S1,P1,12/29/2019,5\n").encode(), narrow)
    assert reasons(old) == {2: "bad_date"}


def test_excel_and_week_numbers_far_out_are_bad_dates_not_a_crash() -> None:
    from conditioners.profile import ColumnSpec
    from conditioners.values import parse_date

    text = pa.array(pd.array(["43831", "1e15", "-1e12"], "string[pyarrow]"))
    days = parse_date(text, ColumnSpec.model_validate({"from": "d", "format": "excel"}))
    assert str(days[0])[:10] == "2020-01-01" and pd.isna(days[1]) and pd.isna(days[2])


@pytest.mark.parametrize(
    ("row", "reason"),
    [("1e18", "out_of_range"), ("1000001", "out_of_range"), ("inf", "bad_number"),
     ("-3", "negative_value"), ("999999", None)],
)  # fmt: skip
def test_implausible_units_are_out_of_range(row: str, reason: str | None) -> None:
    result = run("shipments_distributor_a", f"{SHIPMENTS}S1,P1,01/05/2020,{row}\n".encode())
    assert reasons(result) == ({2: reason} if reason else {})
    assert (result.frame["units"] <= 1e6).all()


def test_plausible_bounds_are_configured_per_column() -> None:
    limits = InputLimits(bounds={"units": (0, 100)})
    ctx = Context(**{**CTX.__dict__, "limits": limits})
    body = f"{SHIPMENTS}S1,P1,01/05/2020,100\nS1,P2,01/05/2020,101\n".encode()
    assert reasons(run("shipments_distributor_a", body, ctx)) == {3: "out_of_range"}
    assert limits.bounds_of("tmax_c") == (-60, 60)  # the other columns keep their defaults


def _xlsx(rows: list[list[object]], dimension: str | None = None) -> bytes:
    """A workbook whose sheet holds `rows`, its <dimension> claiming `dimension` if given."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Demographics"
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    if dimension is None:
        return out.getvalue()
    patched = io.BytesIO()
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(patched, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, n = re.subn(
                    rb'<dimension ref="[^"]*"', f'<dimension ref="{dimension}"'.encode(), data
                )
                assert n == 1
            dst.writestr(item, data)
    return patched.getvalue()


HEADER: list[object] = ["Store #", "Population (3 mi)", "Median HH Income ($)", "% Under 18",
                        "% 60+", "Avg HH Size"]  # fmt: skip
TITLE: list[list[object]] = [["Demographics"], []]


def test_xlsx_claiming_the_whole_sheet_is_streamed_in_bounded_memory() -> None:
    rows = [*TITLE, HEADER, *([f"S{i}", 1000 + i, 50000, 20, 15, 2.5] for i in range(50))]
    data = _xlsx(rows, dimension="A1:XFD1048576")
    profile = profiles()["shoppers_xlsx"]
    tracemalloc.start()
    try:
        raw = read_raw(data, "raw/shoppers/claims.xlsx", profile)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert raw.table.num_rows == 50 and raw.table.num_columns == len(HEADER)
    assert peak < 30e6  # padded to the claimed 16,384 columns × 1,048,576 rows it is > 100 GB


def test_xlsx_past_the_row_or_column_limit_is_unreadable() -> None:
    profile = profiles()["shoppers_xlsx"]
    rows = [*TITLE, HEADER, *([f"S{i}", 1, 1, 1, 1, 1] for i in range(10))]
    with pytest.raises(DataError, match=r"wide.xlsx: row 5 has values past column 6"):
        wide = [*rows[:4], [*rows[4], "", "spill"], *rows[5:]]
        read_raw(_xlsx(wide), "raw/wide.xlsx", profile, InputLimits(xlsx_columns=6))
    with pytest.raises(DataError, match=r"long.xlsx: more than 12 rows \(the limit\)"):
        read_raw(_xlsx(rows), "raw/long.xlsx", profile, InputLimits(xlsx_rows=12))
    # empty cells past the limit are no values
    fine = read_raw(_xlsx([*rows[:3], [*rows[3], None, ""]]), "f.xlsx", profile,
                    InputLimits(xlsx_columns=6))  # fmt: skip
    assert fine.table.num_rows == 1


def _part(units: list[int], weeks: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "store_id": ["S1"] * len(units),
            "product_id": ["P1"] * len(units),
            "week_start": pd.to_datetime(weeks).astype("datetime64[ns]"),
            "units": pd.Series(units, dtype="int64"),
        }
    )


def test_duplicates_across_files_are_resolved_by_content_not_name() -> None:
    weekly = _part([10, 11, 12], ["2019-12-16", "2019-12-23", "2019-12-30"])
    stray = _part([999], ["2019-12-23"])  # a conflicting row, in a file whose name sorts first
    for stray_name in ("raw/a_first.csv", "raw/z_last.csv"):
        combined = combine_parts([(stray_name, stray), ("raw/m_weekly.csv", weekly)], "shipments")
        assert list(combined.frame["units"]) == [10, 11, 12]
        [reject] = combined.rejects.to_dict("records")
        assert reject["reason"] == "conflicting_duplicate" and reject["source_file"] == stray_name
        assert reject["detail"].startswith(
            "kept the row of raw/m_weekly.csv (latest date 2019-12-30"
        )
        assert "this file: latest date 2019-12-23, 1 rows" in reject["detail"]
    # the same latest date: the file with more rows wins; then the lower content hash
    later = _part([7, 8], ["2019-12-23", "2019-12-30"])
    one = combine_parts([("raw/a.csv", later), ("raw/b.csv", weekly)], "shipments")
    two = combine_parts([("raw/b.csv", weekly), ("raw/a.csv", later)], "shipments")
    assert list(one.frame["units"]) == list(two.frame["units"]) == [10, 11, 12]
    twin = _part([1, 2, 3], ["2019-12-16", "2019-12-23", "2019-12-30"])
    first = combine_parts([("raw/x.csv", twin), ("raw/y.csv", weekly)], "shipments").frame
    second = combine_parts([("raw/y.csv", twin), ("raw/x.csv", weekly)], "shipments").frame
    pd.testing.assert_frame_equal(first, second)


def test_brackets_in_strings_do_not_make_a_document_too_deep() -> None:
    text = json.dumps({"daily": [{"note": "[" * 100}]})
    assert load_json(text, "f", 3) == {"daily": [{"note": "[" * 100}]}


def test_every_numeric_standard_column_has_plausible_bounds() -> None:
    from conditioners.schemas import SCHEMAS
    from demandops.core.limits import PLAUSIBLE

    numeric = {c.name for s in SCHEMAS.values() for c in s.columns if c.kind in ("int", "float")}
    assert numeric == set(PLAUSIBLE)
    with pytest.raises(ValueError, match=r"bounds of unknown columns \['unit'\]"):
        InputLimits(bounds={"unit": (0, 1)})
