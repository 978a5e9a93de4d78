"""Raw shapes of the sample feeds, as their senders would export them, with realistic dirt.

Each writer turns clean long tables into the bytes of one or more raw files; the dirt
(duplicates, -9999 sentinels, missing values, negative corrections, unknown store ids, rows dated
in the future, unit mixes, files arriving late) is what conditioning must quarantine or convert.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

import numpy as np
import pandas as pd

from demandops.core.calendar import holiday_weeks

FUTURE = pd.Timedelta(weeks=52 * 12)  # a mistyped year: far in the future, same weekday
LATE_WEEKS = 4  # the last weeks of history arrive as weekly files, not in the history export


@dataclass(frozen=True)
class RawFile:
    path: str
    data: bytes


def csv_bytes(frame: pd.DataFrame, sep: str = ",", encoding: str = "utf-8") -> bytes:
    return frame.to_csv(index=False, sep=sep, date_format="%Y-%m-%d").encode(encoding)


def _pick(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.choice(n, size=min(n, k), replace=False) if n else np.zeros(0, dtype=int)


def _dirty(
    rng: np.random.Generator,
    table: pd.DataFrame,
    store: str,
    qty: str,
    future: pd.Series,
    date: str,
) -> pd.DataFrame:
    """Add copies and corrupted rows: the clean rows stay, except those whose quantity is lost."""
    n = len(table)
    k = max(1, n // 3000)
    lost = _pick(rng, n, 3 * k)
    bad = table.iloc[lost].copy()
    marks = ["n/a"] * k + ["-9999"] * k + [""] * max(0, len(bad) - 2 * k)
    bad[qty] = marks[: len(bad)]
    extra = [
        table.iloc[_pick(rng, n, k)],  # duplicates
        table.iloc[_pick(rng, n, k)].assign(**{store: "XX-999"}),  # unknown store
        table.iloc[_pick(rng, n, k)].assign(**{qty: "-3"}),  # negative corrections
    ]
    ahead = _pick(rng, n, k)
    extra.append(table.iloc[ahead].assign(**{date: future.iloc[ahead].to_numpy()}))
    kept = table.drop(table.index[lost])
    out = pd.concat([kept, bad, *extra], ignore_index=True)
    return out.iloc[rng.permutation(len(out))]


def _weekly_split(
    frame: pd.DataFrame,
) -> tuple[pd.DataFrame, list[tuple[pd.Timestamp, pd.DataFrame]]]:
    last = sorted(frame["week_start"].unique())[-LATE_WEEKS:]
    history = frame[~frame["week_start"].isin(last)]
    return history, [(pd.Timestamp(w), frame[frame["week_start"] == w]) for w in last]


def _quantities(rng: np.random.Generator, frame: pd.DataFrame, pack: pd.Series, col: str):  # type: ignore[no-untyped-def]
    """Whole cases where the quantity allows (and a coin says so), else units."""
    size = frame["product_id"].map(pack).to_numpy()
    units = frame[col].to_numpy()
    cases = (units % size == 0) & (rng.random(len(frame)) < 0.7)
    return np.where(cases, units // size, units), cases


def shipment_files(
    rng: np.random.Generator,
    region: str,
    shape: str,
    shipments: pd.DataFrame,
    products: pd.DataFrame,
) -> Iterator[RawFile]:
    """Shape a: distributor A (CSV, Sunday M/D/Y, units). Shape b: distributor B (semicolon,
    Windows-1252, DD.MM.YYYY Mondays, cases or units). History, then one file per late week;
    the third-last week's file is sent again later with the rows it missed."""
    pack = products.set_index("product_id")["pack_size"]
    history, weekly = _weekly_split(shipments)
    parts = [("history", history)] + [(f"week_{w:%Y-%m-%d}", f) for w, f in weekly]
    for i, (name, frame) in enumerate(parts):
        if shape == "a":
            table = pd.DataFrame(
                {
                    "Store": frame["store_id"],
                    "Item": frame["product_id"],
                    "Week Ending": (frame["week_start"] + pd.Timedelta(days=6)).dt.strftime(
                        "%m/%d/%Y"
                    ),
                    "Units": frame["units"].astype(str),
                }
            )
            future = (frame["week_start"] + FUTURE + pd.Timedelta(days=6)).dt.strftime("%m/%d/%Y")
            cols, sep, enc, date = ("Store", "Units"), ",", "utf-8", "Week Ending"
        else:
            qty, cases = _quantities(rng, frame, pack, "units")
            table = pd.DataFrame(
                {
                    "FILIALE": frame["store_id"],
                    "FILIALNAME": "Markt " + frame["store_id"].str[-3:] + " Süd",
                    "ARTIKEL": frame["product_id"],
                    "WOCHE": frame["week_start"].dt.strftime("%d.%m.%Y"),
                    "MENGE": qty.astype(str),
                    "EINHEIT": np.where(cases, "CS", "EA"),
                }
            )
            future = (frame["week_start"] + FUTURE).dt.strftime("%d.%m.%Y")
            cols, sep, enc, date = ("FILIALE", "MENGE"), ";", "cp1252", "WOCHE"
        table = table.reset_index(drop=True)
        future = future.reset_index(drop=True)
        prefix = f"raw/shipments/region={region}/dist_{shape}_"
        if i == len(parts) - 3:  # arrives incomplete; the rest comes later, with some repeats
            late = rng.random(len(table)) < 0.15
            resend = pd.concat([table[late], table[~late].iloc[: max(1, len(table) // 20)]])
            yield RawFile(f"{prefix}{name}_resend.csv", csv_bytes(resend, sep, enc))
            table, future = table[~late], future[~late]
        dirty = _dirty(rng, table, cols[0], cols[1], future, date) if i == 0 else table
        yield RawFile(f"{prefix}{name}.csv", csv_bytes(dirty, sep, enc))


def returns_files(
    rng: np.random.Generator, region: str, shape: str, returns: pd.DataFrame, products: pd.DataFrame
) -> Iterator[RawFile]:
    """Shape a: the returns portal's JSON (units or cases). Shape b: distributor B's credit
    notes (semicolon, Windows-1252, the booking day, decimal commas)."""
    pack = products.set_index("product_id")["pack_size"]
    history, weekly = _weekly_split(returns)
    parts = [("history", history), ("recent", pd.concat([f for _, f in weekly]))]
    for i, (name, frame) in enumerate(parts):
        frame = frame.reset_index(drop=True)
        if shape == "a":
            qty, cases = _quantities(rng, frame, pack, "units")
            table = pd.DataFrame(
                {
                    "store": frame["store_id"],
                    "sku": frame["product_id"],
                    "week": frame["week_start"].dt.strftime("%Y-%m-%d"),
                    "qty": qty.astype(str),
                    "uom": np.where(cases, "case", "each"),
                }
            )
            future = (frame["week_start"] + FUTURE).dt.strftime("%Y-%m-%d")
            if i == 0:
                table = _dirty(rng, table, "store", "qty", future, "week")
            records = [
                {k: (None if v == "" else int(v) if k == "qty" and _is_int(v) else v)
                 for k, v in r.items()}
                for r in table.to_dict("records")
            ]  # fmt: skip
            doc = {"region": region, "exported_by": "returns-portal/2.3", "returns": records}
            path = f"raw/returns/region={region}/portal_{name}.json"
            yield RawFile(path, json.dumps(doc, indent=1).encode())
        else:
            booked = frame["week_start"] + pd.to_timedelta(rng.integers(0, 5, len(frame)), "D")
            table = pd.DataFrame(
                {
                    "FILIALE": frame["store_id"],
                    "ARTIKEL": frame["product_id"],
                    "GUTSCHRIFT_DATUM": booked.dt.strftime("%d.%m.%Y"),
                    "MENGE": frame["units"].astype(str) + ",0",
                    "EINHEIT": "EA",
                    "GRUND": "Beschädigt",
                }
            )
            future = (booked + FUTURE).dt.strftime("%d.%m.%Y")
            if i == 0:
                table = _dirty(rng, table, "FILIALE", "MENGE", future, "GUTSCHRIFT_DATUM")
            path = f"raw/returns/region={region}/credits_{name}.csv"
            yield RawFile(path, csv_bytes(table, ";", "cp1252"))


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def weather_files(
    rng: np.random.Generator, daily: pd.DataFrame, as_of: pd.Timestamp, seed: int
) -> Iterator[RawFile]:
    """Observations: the weather service's JSON per zip (imperial for every other zip), up to
    the day before `as_of`. Forecasts: a second provider's CSV per issue day (as_of − 7, as_of),
    28 days ahead, error growing with the lead time."""
    observed = daily[daily["date"] < as_of]
    for i, (z, frame) in enumerate(observed.groupby("zip_code", sort=True)):
        imperial = i % 2 == 0
        f = frame.reset_index(drop=True)
        t = (lambda c: c * 9 / 5 + 32) if imperial else (lambda c: c)
        p = (lambda mm: mm / 25.4) if imperial else (lambda mm: mm)
        recs = pd.DataFrame(
            {
                "date": f["date"].dt.strftime("%Y-%m-%d"),
                "tmax": t(f["tmax_c"]).round(1),
                "tmin": t(f["tmin_c"]).round(1),
                "precip": p(f["precip_mm"]).round(2),
                "snow": p(f["snow_mm"]).round(2),
            }
        ).astype(object)
        n = len(recs)
        picks = _pick(rng, n, 8)
        recs.loc[picks[0], "tmax"] = -9999  # sensor outage
        recs.loc[picks[1], "precip"] = None  # missing value
        recs.loc[picks[2], "tmax"] = 999.0  # absurd
        extra = recs.iloc[picks[3:5]].copy()  # sent twice
        ahead = recs.iloc[picks[5:6]].copy()
        ahead["date"] = (pd.Timestamp(ahead["date"].iloc[0]) + FUTURE).strftime("%Y-%m-%d")
        records = pd.concat([recs, extra, ahead]).to_dict("records")
        doc = {
            "zip": z,
            "station": f"ST{int(str(z)) % 997:03d}",
            "temp_unit": "F" if imperial else "C",
            "precip_unit": "in" if imperial else "mm",
            "daily": records,
        }
        yield RawFile(f"raw/weather/observations/zip={z}.json", json.dumps(doc).encode())
    for issued in (as_of - pd.Timedelta(days=7), as_of):
        ahead = daily[(daily["date"] >= issued) & (daily["date"] < issued + pd.Timedelta(days=28))]
        lead = (ahead["date"] - issued).dt.days.to_numpy()
        noise = rng.normal(0, 1.0 + 0.15 * lead)
        table = pd.DataFrame(
            {
                "ZIP": ahead["zip_code"].to_numpy(),
                "ISSUED": issued.strftime("%Y%m%d"),
                "VALID_DATE": ahead["date"].dt.strftime("%Y%m%d").to_numpy(),
                "TMAX_C": (ahead["tmax_c"].to_numpy() + noise).round(1),
                "TMIN_C": (ahead["tmin_c"].to_numpy() + noise).round(1),
                "PRCP_MM": ahead["precip_mm"].to_numpy().round(1),
                "SNOW_CM": (ahead["snow_mm"].to_numpy() / 10).round(1),
            }
        ).astype(str)
        table.loc[table.index[:1], "TMAX_C"] = "-9999"
        early = table.iloc[1:2].assign(
            VALID_DATE=(issued - pd.Timedelta(days=3)).strftime("%Y%m%d")
        )
        table = pd.concat([table, early])
        yield RawFile(f"raw/weather/forecasts/issued_{issued:%Y%m%d}.csv", csv_bytes(table, "|"))


def shoppers_files(
    rng: np.random.Generator, demo: pd.DataFrame, stores: pd.DataFrame, csv_regions: set[str]
) -> Iterator[RawFile]:
    """Most stores in the vendor's XLSX workbook; those of `csv_regions` in a census TSV."""
    in_csv = demo["store_id"].isin(stores.loc[stores["region"].isin(csv_regions), "store_id"])
    sheet = demo[~in_csv].reset_index(drop=True)
    table = pd.DataFrame(
        {
            "Store #": sheet["store_id"],
            "Population (3 mi)": sheet["population"],
            "Median HH Income ($)": sheet["median_income"],
            "% Under 18": (sheet["share_age_under_18"] * 100).round(1),
            "% 60+": (sheet["share_age_60_plus"] * 100).round(1),
            "Avg HH Size": sheet["household_size"],
        }
    ).astype(object)
    if len(table) > 3:
        table.loc[0, "Median HH Income ($)"] = None  # not surveyed: kept, as missing
        table.loc[1, "% 60+"] = 130.0  # absurd
        table = pd.concat(
            [table, table.iloc[[2]], table.iloc[[3]].assign(**{"Store #": "ZZ-404"})],
            ignore_index=True,
        )
    yield RawFile("raw/shoppers/demographics.xlsx", _xlsx(table))
    census = demo[in_csv]
    tsv = pd.DataFrame(
        {
            "store": census["store_id"],
            "pop_total": census["population"],
            "med_income_k": (census["median_income"] / 1000).round(2),
            "age_lt18_share": census["share_age_under_18"],
            "age_60p_share": census["share_age_60_plus"],
            "hh_size": census["household_size"],
        }
    )
    yield RawFile("raw/shoppers/census_extract.tsv", csv_bytes(tsv, "\t"))


def _xlsx(table: pd.DataFrame) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Demographics"
    sheet.append(["Trade-area demographics by store (3-mile radius)"])
    sheet.append(["Source: sample vendor; figures rounded"])
    sheet.append(list(table.columns))
    for row in table.itertuples(index=False):
        sheet.append([None if pd.isna(v) else v for v in row])
    book.properties.created = pd.Timestamp("2020-01-01").to_pydatetime()
    buf = BytesIO()
    book.save(buf)
    return _reproducible_zip(buf.getvalue())


def _reproducible_zip(data: bytes) -> bytes:
    """The same workbook as the same bytes: fixed entry times and modification date."""
    out = BytesIO()
    with ZipFile(BytesIO(data)) as src, ZipFile(out, "w", ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2020-01-01T00:00:00Z", body
                )
            dst.writestr(
                ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0)), body, ZIP_DEFLATED
            )
    return out.getvalue()


def events_files(
    rng: np.random.Generator,
    events: pd.DataFrame,
    holidays: pd.DataFrame,
    stores: pd.DataFrame,
    week_index: pd.DatetimeIndex,
) -> Iterator[RawFile]:
    """Per region an iCalendar of local events; one CSV of national and regional holidays."""
    zip_region = stores.drop_duplicates("zip_code").set_index("zip_code")["region"]
    for region, frame in events.groupby(events["zip_code"].map(zip_region), sort=True):
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:-//{region} events//EN"]
        records: list[dict[Any, Any]] = frame.to_dict("records")
        for i, e in enumerate(records):
            lines += [
                "BEGIN:VEVENT",
                f"UID:{region}-{i}@events.example",
                f"DTSTART;VALUE=DATE:{e['start_date']:%Y%m%d}",
                f"DTEND;VALUE=DATE:{e['end_date'] + pd.Timedelta(days=1):%Y%m%d}",
                f"SUMMARY:{e['name']}",
                f"LOCATION:{e['zip_code']}",
                f"CATEGORIES:{str(e['kind']).upper()}",
                "END:VEVENT",
            ]
        dirt = ["BEGIN:VEVENT", "DTSTART;VALUE=DATE:20191345", "DTEND;VALUE=DATE:20191346",
                "SUMMARY:Typo fair", f"LOCATION:{frame['zip_code'].iloc[0]}", "CATEGORIES:FESTIVAL",
                "END:VEVENT"]  # fmt: skip
        first = lines[3 : 3 + 8] if len(frame) else []  # the first event, sent twice
        lines += dirt + first + ["END:VCALENDAR"]
        yield RawFile(f"raw/events/calendars/{region}.ics", ("\r\n".join(lines) + "\r\n").encode())
    national = week_index[holiday_weeks(week_index)]
    rows: list[tuple[Any, ...]] = [("National holiday week", w, "national", "US") for w in national]
    rows += [(h["name"], h["date"], "region", h["region"]) for h in holidays.to_dict("records")]
    rows += [("Unknown Day", week_index[0], "region", "zz"), ("Bad Day", None, "national", "US")]
    table = pd.DataFrame(rows, columns=["Holiday", "Date", "Scope", "Where"])
    table["Date"] = pd.to_datetime(table["Date"]).dt.strftime("%d/%m/%Y").fillna("31/02/2019")
    yield RawFile("raw/events/holidays.csv", csv_bytes(table))
