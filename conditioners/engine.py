"""Condition one raw file with its profile: a pure function of (bytes, profile, context).

Steps, each sending a bad row to the rejects with a reason code (the first reason wins):
read the raw records as text → make every standard column (constant or raw column; sentinel
and empty values are missing; parse numbers and dates; convert units) → check bounds → the
source's own rules (conditioners/<source>.py) → duplicates within the file. What is left is
validated against the source's schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from conditioners import events, products, promotions, returns, shipments, shoppers, stores, weather
from conditioners.context import Context
from conditioners.profile import ColumnSpec, Profile, template_fields
from conditioners.readers import read_raw
from conditioners.schemas import DTYPES, SCHEMAS, Column, Schema
from conditioners.table import Conditioned, RowSorter

Rules = Callable[[pd.DataFrame, RowSorter, Context], None]
RULES: dict[str, Rules] = {
    "stores": stores.rules,
    "products": products.rules,
    "shipments": shipments.rules,
    "returns": returns.rules,
    "promotions": promotions.rules,
    "weather": weather.rules,
    "shoppers": shoppers.rules,
    "events": events.rules,
}

CONVERSIONS: dict[tuple[str, str], Callable[[pd.Series], pd.Series]] = {
    ("degF", "degC"): lambda v: (v - 32.0) * 5.0 / 9.0,
    ("in", "mm"): lambda v: v * 25.4,
    ("cm", "mm"): lambda v: v * 10.0,
    ("percent", "share"): lambda v: v / 100.0,
    ("kusd", "usd"): lambda v: v * 1000.0,
}
INT_TOLERANCE = 1e-3  # whole-number columns accept e.g. exp(log units) = 12.0002
CASE = "case"  # cases become retail units through the product's pack size


@dataclass(frozen=True)
class _Made:
    values: pd.Series
    missing: pd.Series  # empty or sentinel in the raw data


def condition(data: bytes, file: str, profile: Profile, ctx: Context) -> Conditioned:
    """Standardize one raw file; DataError if the file cannot be read at all."""
    raw = read_raw(data, file, profile)
    schema = SCHEMAS[profile.source]
    rows = RowSorter(raw)
    made = {
        c.name: _make(raw, rows, profile, c, profile.columns.get(c.name)) for c in schema.columns
    }
    frame = pd.DataFrame({name: m.values for name, m in made.items()}, index=raw.index)
    _convert_units(raw, rows, frame, profile, schema, ctx)
    _check_bounds(rows, frame, schema)
    RULES[profile.source](frame, rows, ctx)
    _reject_duplicates(rows, frame, schema.key)
    return rows.result(_typed(frame[rows.good], schema))


def _make(
    raw: pd.DataFrame, rows: RowSorter, profile: Profile, col: Column, spec: ColumnSpec | None
) -> _Made:
    if spec is None:  # a nullable column this feed does not have
        empty = pd.Series("", index=raw.index, dtype="str")
        return _Made(_parse(empty, col, ColumnSpec.model_validate({"value": ""})), empty == "")
    if spec.source is not None:
        text = _raw_column(raw, spec.source).str.strip()
    else:
        text = pd.Series(spec.value, index=raw.index, dtype="str")
    sentinel = text.isin(profile.sentinels)
    missing = (text == "") | sentinel
    values = _parse(text.mask(sentinel, ""), col, spec)
    if col.kind == "str" and spec.zero_pad:
        values = values.str.zfill(spec.zero_pad).mask(missing, "")
    unparsed = values.isna() & ~missing
    rows.reject(unparsed, "bad_date" if col.kind == "date" else "bad_number", col.name)
    if not col.nullable:
        rows.reject(sentinel, "sentinel_value", col.name)
        rows.reject(missing, "missing_value", col.name)
    return _Made(values, missing)


def _raw_column(raw: pd.DataFrame, source: str) -> pd.Series:
    """The raw column `source`, or per row the column its `{col}` template names ("" if none)."""
    if not template_fields(source):
        return raw[source]
    pieces = re.split(r"\{(\w[\w ]*)\}", source)  # literal, field, literal, field, ...
    names = pd.Series("", index=raw.index, dtype="str")
    for i, piece in enumerate(pieces):
        names = names + (raw[piece].str.strip() if i % 2 else piece)
    position = raw.columns.get_indexer(pd.Index(names))
    values = raw.to_numpy(dtype=object)[np.arange(len(raw)), np.maximum(position, 0)]
    return pd.Series(np.where(position >= 0, values, ""), index=raw.index, dtype="str")


def _parse(text: pd.Series, col: Column, spec: ColumnSpec) -> pd.Series:
    if col.kind == "str":
        if spec.transform in ("lower", "upper"):
            return getattr(text.str, spec.transform)()
        return text
    if col.kind == "date":
        return _parse_date(text, spec)
    number = pd.to_numeric(
        text.str.replace(spec.decimal, ".", regex=False) if spec.decimal != "." else text,
        errors="coerce",
    ).astype(float)
    if spec.transform == "exp":
        number = pd.Series(np.exp(number.to_numpy()), index=number.index)
    return number


def _parse_date(text: pd.Series, spec: ColumnSpec) -> pd.Series:
    fmt = spec.format or "iso"
    if fmt in ("week_index", "excel"):
        n = pd.to_numeric(text, errors="coerce")
        n = n.where(n == n.round())
        if fmt == "week_index":
            days = (n - 1) * 7
            base = pd.Timestamp(str(spec.origin))
        else:
            days, base = n, pd.Timestamp("1899-12-30")
        dates = base + pd.to_timedelta(days, unit="D")
    else:
        dates = pd.to_datetime(text, format="%Y-%m-%d" if fmt == "iso" else fmt, errors="coerce")
    if spec.align == "monday":
        dates = dates - pd.to_timedelta(dates.dt.day_of_week, unit="D")
    return (dates + pd.Timedelta(days=spec.offset_days)).astype("datetime64[ns]")


def _convert_units(
    raw: pd.DataFrame,
    rows: RowSorter,
    frame: pd.DataFrame,
    profile: Profile,
    schema: Schema,
    ctx: Context,
) -> None:
    for name, spec in profile.columns.items():
        target = schema.column(name).unit
        if spec.unit is None and spec.unit_from is None:
            continue
        if spec.unit_from is not None:
            code = raw[spec.unit_from].str.strip()
            unit = code.map(spec.unit_map).fillna(code) if spec.unit_map else code
        else:
            unit = pd.Series(spec.unit, index=raw.index, dtype="str")
        known = unit.isin({target, CASE} | {a for a, b in CONVERSIONS if b == target})
        rows.reject(~known, "unknown_unit", name)
        values = frame[name].copy()
        for (src, dst), fn in CONVERSIONS.items():
            if dst == target:
                is_src = unit == src
                values[is_src] = fn(values[is_src])
        cases = unit == CASE
        if cases.any():
            pack = frame["product_id"].map(ctx.pack_sizes()) if "product_id" in frame else None
            if pack is None:
                rows.reject(cases, "unknown_unit", name)
            else:
                rows.reject(cases & pack.isna(), "unknown_pack_size", name)
                values[cases] = values[cases] * pack[cases]
        frame[name] = values


def _check_bounds(rows: RowSorter, frame: pd.DataFrame, schema: Schema) -> None:
    for col in schema.columns:
        if col.kind not in ("int", "float"):
            continue
        values = frame[col.name]
        if col.kind == "int":
            whole = (values - values.round()).abs() <= INT_TOLERANCE
            rows.reject(values.notna() & ~whole, "bad_number", col.name)
        if col.min_value is not None:
            below = values < col.min_value
            rows.reject(below & (values < 0) & (col.min_value == 0), "negative_value", col.name)
            rows.reject(below, "out_of_range", col.name)
        if col.max_value is not None:
            rows.reject(values > col.max_value, "out_of_range", col.name)


def _reject_duplicates(rows: RowSorter, frame: pd.DataFrame, key: tuple[str, ...]) -> None:
    """Among good rows: the same record again is `duplicate`; the same key with other values
    is `conflicting_duplicate`. The first occurrence is kept."""
    good = frame[rows.good]
    same_row = good.duplicated(keep="first")
    same_key = good.duplicated(list(key), keep="first")
    rows.reject(same_row.reindex(frame.index, fill_value=False), "duplicate")
    rows.reject(same_key.reindex(frame.index, fill_value=False), "conflicting_duplicate")


def _typed(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for col in schema.columns:
        values = frame[col.name]
        if col.kind == "int":
            values = (
                values.round().astype("Int64") if col.nullable else values.round().astype("int64")
            )
        elif col.kind == "str":
            values = values.astype("str")
        else:
            values = values.astype(DTYPES[col.kind])
        out[col.name] = values
    return schema.validate(out.sort_values(list(schema.key)).reset_index(drop=True))
