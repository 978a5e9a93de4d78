"""Each profile with hand-made raw bytes: every kind of dirt gets its reason code, and good
rows come out in standard units."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from openpyxl import Workbook

from conditioners.engine import condition
from conditioners.schemas import ARROW_TYPES, SCHEMAS
from demandops.core.errors import DataError
from tests.sources import CTX, profiles, reasons, run


def test_distributor_a_shipments_each_dirt_kind_has_its_reason() -> None:
    data = (
        b"Store,Item,Week Ending,Units\n"
        b"S1,P1,01/05/2020,10\n"  # 2 good: week of Monday 2019-12-30
        b"S1,P1,01/05/2020,10\n"  # 3 duplicate
        b"S1,P1,01/05/2020,11\n"  # 4 same key, other value
        b"S1,P2,01/05/2020,-9999\n"  # 5 sentinel
        b"S1,P2,12/29/2019,\n"  # 6 missing
        b"S2,P1,01/05/2020,-4\n"  # 7 negative correction
        b"XX-999,P1,01/05/2020,3\n"  # 8 unknown store
        b"T1,P1,01/05/2020,3\n"  # 9 a store of another region
        b"S2,P9,01/05/2020,3\n"  # 10 unknown product
        b"S2,P1,01/04/2032,3\n"  # 11 dated in the future
        b"S2,P1,13/45/2019,3\n"  # 12 unparseable date
        b"S2,P1,01/04/2020,3\n"  # 13 not a Sunday: its week does not start on Monday
        b"S2,P2,01/05/2020,n/a\n"  # 14 not a number
        b"S2,P2,12/29/2019,2.5\n"  # 15 not a whole number
        b"S2,P2,12/29/2019,7\n"  # 16 good
    )
    result = run("shipments_distributor_a", data)
    assert reasons(result) == {
        3: "duplicate",
        4: "conflicting_duplicate",
        5: "sentinel_value",
        6: "missing_value",
        7: "negative_value",
        8: "unknown_store",
        9: "unknown_store",
        10: "unknown_product",
        11: "future_date",
        12: "bad_date",
        13: "not_monday",
        14: "bad_number",
        15: "bad_number",
    }
    assert result.frame.to_dict("records") == [
        {
            "store_id": "S1",
            "product_id": "P1",
            "week_start": pd.Timestamp("2019-12-30"),
            "units": 10,
        },
        {
            "store_id": "S2",
            "product_id": "P2",
            "week_start": pd.Timestamp("2019-12-23"),
            "units": 7,
        },
    ]
    assert set(result.rejects.columns) >= {"line", "reason", "detail", "record"}
    assert json.loads(result.rejects["record"].iloc[0])["Store"] == "S1"  # the raw row, kept


def test_distributor_b_converts_cases_with_pack_sizes_and_reads_cp1252() -> None:
    data = (
        "FILIALE;FILIALNAME;ARTIKEL;WOCHE;MENGE;EINHEIT\n"
        "S1;Markt Süd;P1;30.12.2019;2;CS\n"  # 2 cases of 12
        "S1;Markt Süd;P2;30.12.2019;5;EA\n"
        "S2;Markt Süd;P2;30.12.2019;1;PAL\n"  # unknown unit code
    ).encode("cp1252")
    result = run("shipments_distributor_b", data)
    assert list(result.frame["units"]) == [24, 5]
    assert reasons(result) == {4: "unknown_unit"}


def test_weather_json_converts_fahrenheit_and_inches_and_keeps_missing_values() -> None:
    doc = {
        "zip": "98101",
        "temp_unit": "F",
        "precip_unit": "in",
        "daily": [
            {"date": "2019-12-30", "tmax": 50.0, "tmin": 32.0, "precip": 1.0, "snow": 0},
            {"date": "2019-12-31", "tmax": -9999, "tmin": 30.0, "precip": None, "snow": 0},
            {"date": "2019-12-31", "tmax": -9999, "tmin": 30.0, "precip": None, "snow": 0},
            {"date": "2020-01-01", "tmax": 999.0, "tmin": 30.0, "precip": 0, "snow": 0},
            {"date": "2031-01-01", "tmax": 50.0, "tmin": 30.0, "precip": 0, "snow": 0},
            {"date": "2020-01-02", "tmax": 30.0, "tmin": 50.0, "precip": 0, "snow": 0},
            {"date": "Jan 3", "tmax": 30.0, "tmin": 20.0, "precip": 0, "snow": 0},
        ],
    }
    result = run("weather_observations_json", json.dumps(doc).encode())
    assert reasons(result) == {
        3: "duplicate",
        4: "out_of_range",
        5: "future_date",
        6: "inconsistent_values",
        7: "bad_date",
    }
    first, second = result.frame.to_dict("records")
    assert first["tmax_c"] == pytest.approx(10.0) and first["tmin_c"] == pytest.approx(0.0)
    assert first["precip_mm"] == pytest.approx(25.4) and first["kind"] == "observed"
    assert pd.isna(second["tmax_c"]) and pd.isna(second["precip_mm"])  # a sentinel is missing


def test_weather_forecast_csv_needs_its_issue_day_before_the_day_forecast() -> None:
    data = (
        b"ZIP|ISSUED|VALID_DATE|TMAX_C|TMIN_C|PRCP_MM|SNOW_CM\n"
        b"98101|20200106|20200107|5.0|1.0|2.0|1.5\n"
        b"98101|20200106|20200103|5.0|1.0|2.0|0\n"  # before it was issued
        b"98101||20200108|5.0|1.0|2.0|0\n"  # no issue day
    )
    result = run("weather_forecasts_csv", data)
    assert reasons(result) == {3: "forecast_before_issue", 4: "missing_value"}
    row = result.frame.iloc[0]
    assert row["snow_mm"] == 15.0 and row["kind"] == "forecast"
    assert row["issued"] == pd.Timestamp("2020-01-06")


def _xlsx(rows: list[list[object]], title_rows: int = 2) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Demographics"
    for _ in range(title_rows):
        sheet.append(["a title"])
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


XLSX_HEADER: list[object] = [
    "Store #", "Population (3 mi)", "Median HH Income ($)", "% Under 18", "% 60+", "Avg HH Size",
]  # fmt: skip


def test_shoppers_workbook_percentages_become_shares() -> None:
    data = _xlsx(
        [
            XLSX_HEADER,
            ["S1", 25000, 61000, 20.0, 18.5, 2.6],
            ["S2", 12000, None, 22.0, 130.0, 2.4],  # absurd share
            ["ZZ-404", 1000, 50000, 20.0, 20.0, 2.5],  # unknown store
            ["T1", 9000, None, 25.0, 15.0, 2.9],  # missing income is kept as missing
        ]
    )
    result = run("shoppers_xlsx", data, ctx=CTX.__class__(stores=CTX.stores))
    assert reasons(result) == {5: "out_of_range", 6: "unknown_store"}
    s1, t1 = result.frame.to_dict("records")
    assert s1["share_age_60_plus"] == pytest.approx(0.185) and s1["population"] == 25000
    assert pd.isna(t1["median_income"])


def test_shoppers_workbook_without_its_sheet_is_unreadable() -> None:
    book = Workbook()
    buf = io.BytesIO()
    book.save(buf)
    with pytest.raises(DataError, match="cannot read raw/test: no sheet 'Demographics'"):
        run("shoppers_xlsx", buf.getvalue())


def test_census_extract_income_in_thousands() -> None:
    data = (
        b"store\tpop_total\tmed_income_k\tage_lt18_share\tage_60p_share\thh_size\n"
        b"S1\t20000\t61.5\t0.2\t0.7\t2.5\n"
        b"S2\t20000\t48.25\t0.2\t0.9\t2.5\n"  # shares add up to more than one
    )
    result = run("shoppers_census_csv", data)
    assert result.frame["median_income"].tolist() == [61500.0]
    assert reasons(result) == {3: "inconsistent_values"}


def test_returns_portal_json_cases_and_unknown_stores() -> None:
    doc = {
        "region": "pnw",
        "returns": [
            {"store": "S1", "sku": "P2", "week": "2019-12-30", "qty": 2, "uom": "case"},
            {"store": "S1", "sku": "P1", "week": "2019-12-30", "qty": 3, "uom": "each"},
            {"store": "XX-999", "sku": "P1", "week": "2019-12-30", "qty": 3, "uom": "each"},
            {"store": "S2", "sku": "P1", "week": "2019-12-30", "qty": None, "uom": "each"},
            "not a record",
        ],
    }
    result = run("returns_portal", json.dumps(doc).encode())
    assert sorted(result.frame["units_returned"]) == [3, 12]
    assert reasons(result) == {3: "unknown_store", 4: "missing_value", 5: "missing_value"}


def test_returns_credit_notes_decimal_commas_and_booking_days() -> None:
    data = (
        "FILIALE;ARTIKEL;GUTSCHRIFT_DATUM;MENGE;EINHEIT;GRUND\n"
        "S1;P1;02.01.2020;3,0;EA;Beschädigt\n"  # a Thursday: its week starts 2019-12-30
        "S1;P1;03.01.2020;-1,0;EA;Korrektur\n"
    ).encode("cp1252")
    result = run("returns_distributor_b", data)
    assert result.frame["week_start"].tolist() == [pd.Timestamp("2019-12-30")]
    assert reasons(result) == {3: "negative_value"}


def test_event_calendar_ics_end_is_exclusive_and_bad_events_are_rejected() -> None:
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
        b"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20200103\r\nDTEND;VALUE=DATE:20200105\r\n"
        b"SUMMARY:Winter\r\n  festival\r\nLOCATION:98101\r\nCATEGORIES:FESTIVAL\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20191345\r\nDTEND;VALUE=DATE:20191346\r\n"
        b"SUMMARY:Typo\r\nLOCATION:98101\r\nCATEGORIES:SPORTS\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20200110\r\nDTEND;VALUE=DATE:20200108\r\n"
        b"SUMMARY:Backwards\r\nLOCATION:98101\r\nCATEGORIES:SPORTS\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n"
    )
    result = run("events_calendar_ics", data)
    [event] = result.frame.to_dict("records")
    assert event["name"] == "Winter festival" and event["kind"] == "festival"
    assert (event["start_date"], event["end_date"]) == (
        pd.Timestamp("2020-01-03"),
        pd.Timestamp("2020-01-04"),
    )
    assert event["scope"] == "zip" and event["scope_id"] == "98101"
    assert sorted(reasons(result).values()) == ["bad_date", "bad_date_range"]


def test_holiday_list_scopes_and_regions() -> None:
    data = (
        b"Holiday,Date,Scope,Where\n"
        b"PNW Day,04/03/2019,region,pnw\n"
        b"Unknown Day,04/03/2019,region,zz\n"
        b"Moon Day,04/03/2019,planet,moon\n"
        b"Bad Day,31/02/2019,national,US\n"
    )
    result = run("events_holidays_csv", data)
    assert result.frame["start_date"].tolist() == [pd.Timestamp("2019-03-04")]
    assert reasons(result) == {3: "unknown_region", 4: "bad_scope", 5: "bad_date"}


def test_stores_products_and_promotions() -> None:
    stores = run(
        "stores",
        b"store_id,region,zip_code,store_format,sqft\nS1,PNW,98101,Large,40000\n"
        b"S2,mars,98101,large,1\nS3,pnw,98-101,small,1\nS4,pnw,98101,huge,1\n",
    )
    assert stores.frame[["region", "store_format"]].values.tolist() == [["pnw", "large"]]
    assert sorted(reasons(stores).values()) == [
        "bad_store_format",
        "bad_zip_code",
        "unknown_region",
    ]
    products = run("products", b"product_id,category,pack_size,regular_price\nP1,Juice,0,1.0\n")
    assert reasons(products) == {2: "out_of_range"}
    promos = run(
        "promotions",
        b"store_id,product_id,week_start,promo_price\nS1,P1,2030-01-07,1.5\nS1,P1,2019-12-31,1\n",
    )
    assert len(promos.frame) == 1  # plans run ahead: no future check
    assert reasons(promos) == {3: "not_monday"}


@pytest.mark.parametrize("source", sorted(SCHEMAS))
def test_every_schema_rejects_a_frame_without_its_columns(source: str) -> None:
    with pytest.raises(DataError, match=f"{source}: missing columns"):
        SCHEMAS[source].validate(pd.DataFrame({"x": [1]}))


def test_cases_of_a_product_without_a_pack_size_and_bad_weather_codes() -> None:
    data = (
        "FILIALE;FILIALNAME;ARTIKEL;WOCHE;MENGE;EINHEIT\n"
        "S1;x;P7;30.12.2019;2;CS\n"  # P7 is not in the catalogue: no pack size
    ).encode("cp1252")
    assert reasons(run("shipments_distributor_b", data)) == {2: "unknown_pack_size"}
    doc: dict[str, Any] = {
        "zip": "9810",  # lost its leading zero: padded back to 09810
        "temp_unit": "K",  # a unit no profile maps
        "precip_unit": "mm",
        "daily": [{"date": "2019-12-30", "tmax": 280, "tmin": 270, "precip": 0, "snow": 0}],
    }
    result = run("weather_observations_json", json.dumps(doc).encode())
    assert reasons(result) == {1: "unknown_unit"}
    doc["temp_unit"], doc["zip"] = "C", "98-10"
    doc["daily"][0] |= {"tmax": 5, "tmin": 1}
    assert reasons(run("weather_observations_json", json.dumps(doc).encode())) == {
        1: "bad_zip_code"
    }


def test_ragged_csv_rows_short_ones_padded_long_ones_unreadable() -> None:
    header = b"Store,Item,Week Ending,Units\n"
    short = run("shipments_distributor_a", header + b"S1,P1,01/05/2020,4\nS1,P2,01/05/2020\n")
    assert reasons(short) == {3: "missing_value"} and len(short.frame) == 1
    assert json.loads(short.rejects["record"].iloc[0])["Units"] == ""
    with pytest.raises(DataError, match=r"cannot read raw/test: record 2 .* 5 fields"):
        run("shipments_distributor_a", header + b"S1,P1,01/05/2020,4\nS1,P2,01/05/2020,4,9\n")
    below = profiles()["shipments_distributor_a"].model_copy(update={"header_row": 3})
    with pytest.raises(DataError, match=r"cannot read raw/x\.csv: no header in line 3"):
        condition(header, "raw/x.csv", below, CTX)
    blank_lines = b"title\n\n\r\n" + header + b"S1,P1,01/05/2020,4\n"
    assert len(condition(blank_lines, "raw/x.csv", below, CTX).frame) == 1


@pytest.mark.parametrize("source", sorted(SCHEMAS))
def test_every_schema_checks_an_arrow_table(source: str) -> None:
    schema = SCHEMAS[source]
    table = pa.schema([(c.name, ARROW_TYPES[c.kind]) for c in schema.columns]).empty_table()
    assert schema.check(table).equals(table) and schema.to_frame(table).empty
    with pytest.raises(DataError, match=f"{source}: expected columns"):
        schema.check(table.drop_columns(schema.names[0]))


def test_the_arrow_check_finds_missing_values_and_values_out_of_bounds() -> None:
    schema = SCHEMAS["shipments"]
    row = {"store_id": "S1", "product_id": "P1", "week_start": pd.Timestamp("2020-01-06")}
    types = pa.schema([(c.name, ARROW_TYPES[c.kind]) for c in schema.columns])
    with pytest.raises(DataError, match=r"shipments\.units: values below 0"):
        schema.check(pa.Table.from_pylist([row | {"units": -1}], schema=types))
    with pytest.raises(DataError, match=r"shipments\.store_id: 1 missing values"):
        schema.check(pa.Table.from_pylist([row | {"units": 1, "store_id": None}], schema=types))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"tmax_c": 61.0}, "weather.tmax_c: values above 60"),
        ({"precip_mm": -0.5}, "weather.precip_mm: values below 0"),
        ({"zip_code": None}, "weather.zip_code: 1 missing values"),
    ],
)
def test_pandas_and_arrow_checks_apply_the_same_rules(
    change: dict[str, object], problem: str
) -> None:
    schema = SCHEMAS["weather"]
    day = pd.Timestamp("2020-01-06")
    row = {"zip_code": "02108", "date": day, "kind": "observed", "issued": None, "tmax_c": 5.0}
    rows = [row | {"tmin_c": 1.0, "precip_mm": 0.0, "snow_mm": None}]
    types = pa.schema([(c.name, ARROW_TYPES[c.kind]) for c in schema.columns])
    table = pa.Table.from_pylist(rows, schema=types)
    assert schema.check(table).equals(table)
    assert schema.validate(schema.to_frame(table)).shape == (1, 8)
    bad = pa.Table.from_pylist([rows[0] | change], schema=types)
    for check in (lambda: schema.check(bad), lambda: schema.validate(schema.to_frame(bad))):
        with pytest.raises(DataError, match=re.escape(problem)):
            check()


@pytest.mark.parametrize(
    "name",  # letters replaced byte by byte; too many, or ±: decoded; – and € are not latin-1
    ["Markt Süd", "Café à Noël", "Größe Ärger Öl é", "Señor ± 5", "Markt Süd – 5 €"],
)
def test_cp1252_bytes_are_read_as_cp1252(name: str) -> None:
    data = f"FILIALE;FILIALNAME;ARTIKEL;WOCHE;MENGE;EINHEIT\nX9;{name};P1;30.12.2019;2;EA\n"
    result = run("shipments_distributor_b", data.encode("cp1252"))
    assert reasons(result) == {2: "unknown_store"}
    assert json.loads(result.rejects["record"].iloc[0])["FILIALNAME"] == name
