"""Draft a source profile from a sample of a raw CSV file (`demandops profile suggest FILE`).

Looks at the first SAMPLE_BYTES: the encoding (UTF-8, else cp1252), the line endings, the
delimiter, the header line, and per column its type (whole number, number with a `.` or `,`
decimal, a date in one of DATE_FORMATS, or text). Columns are matched to the source schema by
name; a daily or finer date column in a weekly feed gets an `aggregate:` block, a weekly one that
is not on Mondays an `offset_days`. The draft is YAML for a person to check and edit.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

import pandas as pd

from conditioners.schemas import SCHEMAS
from conditioners.values import to_datetime

SAMPLE_BYTES = 256 * 1024
FEW = 12  # a column with at most this many distinct values may want a value map
DELIMITERS = ",;\t|"
DATE_FORMATS = (
    "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y",
    "%Y%m%d", "%d-%m-%Y", "%m-%d-%Y",
)  # fmt: skip
# standard column -> words that name it in exports (lower case, no separators)
# fmt: off
NAMES = {
    "store_id": ("store", "storeid", "storenr", "shop", "filiale", "location", "branch"),
    "product_id": ("product", "productid", "item", "sku", "dept", "department", "article",
                   "artikel", "ean"),
    "week_start": ("week", "weekstart", "weekending", "date", "day", "timestamp", "ts", "datum",
                   "woche", "kw"),
    "units": ("units", "qty", "quantity", "sales", "weeklysales", "sold", "volume", "menge"),
    "units_returned": ("returned", "returns", "units", "qty", "quantity"),
    "promo_price": ("promoprice", "price", "promo"),
    "region": ("region", "area"),
    "zip_code": ("zip", "zipcode", "postcode", "plz"),
    "store_format": ("format", "type", "storetype"),
    "sqft": ("sqft", "size", "area", "sales area"),
}
# fmt: on


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # int | float | date | text
    detail: str = ""  # a date's format, a number's decimal separator
    step_days: float | None = None  # dates: the most common gap between distinct values
    weekday: int | None = None  # dates: the most common day of the week
    values: tuple[str, ...] = ()  # text and whole numbers: the distinct values, if few


def suggest(data: bytes, file: str, source: str = "shipments") -> str:
    """A draft profile (YAML text) for the raw CSV `data`."""
    sample = data[:SAMPLE_BYTES]
    try:
        text, encoding = sample.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the sample's end
            text, encoding = sample.decode("cp1252", errors="replace"), "cp1252"
        else:
            text, encoding = sample[: exc.start].decode("utf-8-sig"), "utf-8"
    endings = "CR" if "\r" in text and "\n" not in text else ("CRLF" if "\r\n" in text else "LF")
    lines = [ln for ln in re.split(r"\r\n|\r|\n", text) if ln.strip()]
    if len(data) > SAMPLE_BYTES:
        lines = lines[:-1]  # the last line may be cut
    if len(lines) < 2:
        raise ValueError(f"{file}: needs a header and at least one record to suggest a profile")
    delimiter = max(DELIMITERS, key=lambda d: (_steady(lines[:50], d), d == ","))
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    header, records = [h.strip() for h in rows[0]], rows[1:]
    columns = [
        _column(n, [r[i].strip() for r in records if i < len(r)]) for i, n in enumerate(header)
    ]
    return _yaml(file, source, encoding, delimiter, endings, columns)


def _steady(lines: list[str], delimiter: str) -> int:
    """How many fields every line splits into (0 when lines differ or there is just one)."""
    counts = {len(next(csv.reader([ln], delimiter=delimiter))) for ln in lines}
    return counts.pop() if len(counts) == 1 and max(counts) > 1 else 0


def _column(name: str, values: list[str]) -> Column:
    present = [v for v in values if v]
    if not present:
        return Column(name, "text")
    few = tuple(sorted(set(present))) if len(set(present)) <= FEW else ()
    if all(re.fullmatch(r"-?\d+", v) for v in present) and not _looks_like_date(name):
        return Column(name, "int", values=few)
    for decimal, pattern in ((".", r"-?\d*\.?\d+"), (",", r"-?\d*,?\d+")):
        if all(re.fullmatch(pattern, v) for v in present):
            return Column(name, "float", decimal)
    for fmt in DATE_FORMATS:
        dates = to_datetime(pd.Series(present), fmt)
        if dates.notna().all():
            days = pd.Series(dates.dt.normalize().unique()).sort_values()
            gaps = days.diff().dt.days.dropna()
            step = float(gaps.mode().iloc[0]) if len(gaps) else None
            weekday = int(days.dt.day_of_week.mode().iloc[0])
            return Column(name, "date", fmt, step, weekday)
    return Column(name, "text", values=few)


def _looks_like_date(name: str) -> bool:
    return _key(name) in ("date", "day", "week", "yyyymmdd")


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _match(schema_column: str, kind: str, columns: list[Column], used: set[str]) -> Column | None:
    fits = {"date": ("date",), "str": ("text", "int"), "int": ("int", "float")}.get(
        kind, ("int", "float")
    )
    for word in NAMES.get(schema_column, (schema_column,)):
        for column in columns:
            if column.name not in used and column.kind in fits and _key(column.name) == word:
                return column
    for word in NAMES.get(schema_column, (schema_column,)):
        for column in columns:
            if column.name not in used and column.kind in fits and word in _key(column.name):
                return column
    return None


def _yaml(
    file: str, source: str, encoding: str, delimiter: str, endings: str, columns: list[Column]
) -> str:
    schema = SCHEMAS[source]
    name = re.sub(r"[^a-z0-9]+", "_", file.rsplit("/", 1)[-1].split(".")[0].lower()).strip("_")
    out = [
        f"# Drafted by `demandops profile suggest` from {file}: check every line, then save it",
        "# in config/sources/ (docs/sources.md explains each option).",
        "# Columns found: " + ", ".join(f"{c.name} ({_describe(c)})" for c in columns),
        f"name: {name or source}",
        f"source: {source}",
        f'files: ["{_glob(source)}"]  # where the files lie below raw/',
    ]
    if encoding != "utf-8":
        out.append(f"encoding: {encoding}")
    if delimiter != ",":
        out.append(f"delimiter: {_quoted(delimiter)}")
    out.append(f"# line endings: {endings} (any is read)")
    out.append("columns:")
    used: set[str] = set()
    aggregate = None
    for col in schema.columns:
        found = _match(col.name, col.kind, columns, used)
        if found is None:
            hint = "optional: delete the line" if col.nullable else "REQUIRED: name its column"
            out.append(f'  {col.name}: {{from: "?"}}  # {hint} ({col.description})')
            continue
        used.add(found.name)
        spec = [f"from: {_quoted(found.name)}"]
        if found.kind == "date" and found.detail != "%Y-%m-%d":
            spec.append(f'format: "{found.detail}"')
        if found.kind == "float" and found.detail == ",":
            spec.append('decimal: ","')
        note = ""
        if found.kind == "float" and col.kind == "int":
            spec.append("round: nearest")
            note = "  # whole units; `price` or `price_from` turn money into units"
        if col.name == "store_format" and not set(found.values) <= {"large", "small"}:
            pairs = ", ".join(f"{_quoted(v)}: large" for v in found.values)
            spec.append(f"map: {{{pairs}}}")
            note = "  # map each value to large or small"
        line = f"  {col.name}: {{{', '.join(spec)}}}{note}"
        if col.name == "week_start" and found.step_days is not None:
            if found.step_days < 7:
                aggregate = col.name
                line += "  # finer than weeks: folded into weeks below"
            elif found.weekday:
                spec.append(f"offset_days: {-found.weekday}")
                line = f"  {col.name}: {{{', '.join(spec)}}}"
                line += f"  # weeks on {_DAYS[found.weekday]}s: moved to their Monday"
        out.append(line)
    if aggregate is not None:
        numbers = [
            c.name
            for c in schema.columns
            if c.kind in ("int", "float") and c.name not in schema.key
        ]
        out.append("aggregate:  # rows of one store, product and week become one")
        out.append("  week_start: monday")
        out.append("  columns: {" + ", ".join(f"{n}: sum" for n in numbers) + "}")
    unused = [c.name for c in columns if c.name not in used]
    if unused:
        out.append(f"# not used: {', '.join(unused)}")
    return "\n".join(out) + "\n"


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _describe(column: Column) -> str:
    if column.kind == "date":
        step = f", every {column.step_days:g} days" if column.step_days else ""
        return f"date {column.detail}{step}"
    if column.kind == "float":
        return f"number, decimal {column.detail!r}"
    return {"int": "whole number", "text": "text"}[column.kind]


def _glob(source: str) -> str:
    weekly = "week_start" in SCHEMAS[source].key
    return f"{source}/region=*/*.csv" if weekly else f"{source}/*.csv"


def _quoted(text: str) -> str:
    plain = re.fullmatch(r"[A-Za-z_][\w ]*", text) and not text.endswith(" ")
    return text if plain else json.dumps(text)
