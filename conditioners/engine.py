"""Condition raw files with their profile: a pure function of (bytes, profile, context).

Steps, each sending a bad row to the rejects with a reason code (the first reason wins):
read the raw records as text (pyarrow's CSV reader for CSV) → rows the profile skips → make
every standard column (constant, raw column or path value; value maps; sentinel and empty
values are missing; parse numbers and dates with conditioners/values.py) → weeks of an
aggregating profile (conditioners/aggregate.py) → convert units → scale, price, round and the
negative policy (conditioners/transforms.py) → check bounds → the source's own rules
(conditioners/<source>.py) → duplicates within the file, or (`aggregate:`) rows of one key
folded into one. What is left is sorted by the key and checked against the source's schema.

Columns stay Arrow-dictionary encoded (conditioners/columns.py): each distinct raw value is
stripped, parsed and checked once, with pandas' own parsers, so the rules are the same as
pandas applied row by row. Several files of one profile are conditioned in one pass
(`condition_files`): the fixed cost of each step is paid once, and each file still gets its own
result, exactly as if it had been conditioned alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from conditioners import events, products, promotions, returns, shipments, shoppers, stores, weather
from conditioners.aggregate import aggregate_rows, align_weeks
from conditioners.bounds import check_bounds
from conditioners.columns import Coded, Frame, bools
from conditioners.context import Context
from conditioners.profile import ColumnSpec, Profile, template_fields
from conditioners.readers import Raw, decoded, read_raws
from conditioners.schemas import ARROW_TYPES, SCHEMAS, Column, Schema
from conditioners.table import Conditioned, RowSorter
from conditioners.transforms import RETURNED, apply_transforms, mapped, path_values, skip_rows
from conditioners.values import parse_values
from demandops.core.errors import DataError

Rules = Callable[[Frame, RowSorter, Context], None]
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

CONVERSIONS: dict[tuple[str, str], Callable[[np.ndarray], np.ndarray]] = {
    ("degF", "degC"): lambda v: (v - 32.0) * 5.0 / 9.0,
    ("in", "mm"): lambda v: v * 25.4,
    ("cm", "mm"): lambda v: v * 10.0,
    ("percent", "share"): lambda v: v / 100.0,
    ("kusd", "usd"): lambda v: v * 1000.0,
}
CASE = "case"  # cases become retail units through the product's pack size
_NO_SPEC = ColumnSpec.model_validate({"value": ""})


def condition(data: bytes, file: str, profile: Profile, ctx: Context) -> Conditioned:
    """Standardize one raw file; DataError if the file cannot be read at all."""
    (result,) = condition_files([(file, data)], profile, ctx)
    if isinstance(result, DataError):
        raise result
    return result


def condition_files(
    files: Sequence[tuple[str, bytes]], profile: Profile, ctx: Context
) -> list[Conditioned | DataError]:
    """Standardize several raw files (name, bytes) of one profile in one pass: per file its
    result, or the DataError that stops reading it."""
    read = read_raws(files, profile, ctx.limits)
    raws = [r for r in read if isinstance(r, Raw)]
    names = [f for (f, _), r in zip(files, read, strict=True) if isinstance(r, Raw)]
    done = iter(_condition(raws, names, profile, ctx) if raws else [])
    return [r if isinstance(r, DataError) else next(done) for r in read]


def _condition(
    raws: list[Raw], files: list[str], profile: Profile, ctx: Context
) -> list[Conditioned]:
    schema = SCHEMAS[profile.source]
    sizes = np.array([r.table.num_rows for r in raws])
    rows = RowSorter(int(sizes.sum()))
    frame = Frame(int(sizes.sum()))
    texts = _encoded(raws, profile)
    skip_rows(texts, rows, profile)
    for col in schema.columns:
        spec = profile.columns.get(col.name)
        if spec is not None and spec.from_path is not None:
            texts[f"path:{spec.from_path}"] = path_values(files, spec.from_path, sizes)
        frame.columns[col.name] = _make(texts, rows, profile, col, spec)
    file_no = np.repeat(np.arange(len(raws)), sizes)
    align_weeks(frame, profile.aggregate, schema, rows, file_no)
    _convert_units(texts, rows, frame, profile, schema, ctx)
    apply_transforms(texts, rows, frame, profile)
    check_bounds(rows, frame, schema, ctx.limits)
    RULES[profile.source](frame, rows, ctx)
    if profile.aggregate is None:
        order = _reject_duplicates(rows, frame, schema, file_no)
    else:
        key, _ = _row_key(frame, schema.key, file_no)
        order = aggregate_rows(frame, np.flatnonzero(rows.good), key, profile.aggregate, schema)
    table = schema.check(_typed(frame, order, schema))
    booked = frame.array(RETURNED)[order] if RETURNED in frame else None
    rejects = rows.rejects(raws)
    kept = np.bincount(file_no[order], minlength=len(raws))
    dropped = np.bincount(file_no[~rows.good], minlength=len(raws))
    out = []
    k_ends, d_ends = np.cumsum(kept).tolist(), np.cumsum(dropped).tolist()
    for n, k, k_end, d, d_end in zip(
        sizes.tolist(), kept.tolist(), k_ends, dropped.tolist(), d_ends, strict=True
    ):  # every row is kept, aggregated into a kept row, or rejected
        part = table.slice(k_end - k, k)
        returned = None if booked is None else booked[k_end - k : k_end]
        out.append(
            Conditioned(
                table=part,
                reject_table=rejects.slice(d_end - d, d),
                rows_in=n,
                source=schema.name,
                rows_aggregated=n - k - d,
                returns=None if returned is None else booked_returns(part, returned),
            )
        )
    return out


def booked_returns(shipped: pa.Table, returned: np.ndarray) -> pa.Table:
    """The returns booked from negative shipments: a returns table of the rows returning > 0."""
    table = pa.table(
        {
            "store_id": shipped.column("store_id"),
            "product_id": shipped.column("product_id"),
            "week_start": shipped.column("week_start"),
            "units_returned": pa.array(np.round(returned).astype(np.int64)),
        }
    )
    return table.filter(pa.array(returned > 0))


def _encoded(raws: list[Raw], profile: Profile) -> dict[str, Coded]:
    """Each raw column (or template) the profile reads, encoded once."""
    specs = profile.columns.values()
    sources = dict.fromkeys(
        [*(s for p in specs for s in (p.source, p.unit_from, p.price_from) if s), *profile.skip]
    )
    return {s: _raw_text(raws, s) for s in sources}


def _make(
    texts: dict[str, Coded], rows: RowSorter, profile: Profile, col: Column, spec: ColumnSpec | None
) -> Coded:
    """One standard column, made once per distinct raw value."""
    spec = spec or _NO_SPEC
    if spec.source is not None or spec.from_path is not None:
        text = texts[spec.source if spec.source is not None else f"path:{spec.from_path}"]
    else:
        text = Coded.constant(str(spec.value), rows.code.size)
    if spec.value_map:
        text = Coded(text.codes, mapped(text.values, spec))
    sentinel = pc.is_in(text.values, value_set=pa.array(profile.sentinels, pa.string()))
    missing = pc.or_(pc.equal(text.values, ""), sentinel)
    cleaned = pc.if_else(sentinel, "", text.values)
    checks: list[tuple[np.ndarray, str, str]] = []
    if col.kind == "str":
        values: pa.Array | np.ndarray = _text(cleaned, missing, spec)
    else:
        values = parse_values(cleaned, col, spec)
        unparsed = np.isnat(values) if col.kind == "date" else np.isnan(values)
        checks.append((unparsed & ~bools(missing), _bad(col), col.name))
    if not col.nullable:
        checks.append((bools(sentinel), "sentinel_value", col.name))
        checks.append((bools(missing), "missing_value", col.name))
    rows.reject_values(text, *checks)
    return Coded(text.codes, values)


def _text(values: pa.Array, missing: pa.Array, spec: ColumnSpec) -> pa.Array:
    if spec.transform == "lower":
        values = pc.utf8_lower(values)
    elif spec.transform == "upper":
        values = pc.utf8_upper(values)
    if spec.zero_pad:
        values = pc.if_else(missing, "", pc.utf8_zfill(values, spec.zero_pad))
    return values


def _bad(col: Column) -> str:
    return "bad_date" if col.kind == "date" else "bad_number"


def _raw_text(raws: list[Raw], source: str) -> Coded:
    """The raw column `source`, or per row the column its `{col}` template names ("" if none),
    stripped of surrounding whitespace (bytes decoded per distinct value)."""
    columns = [_raw_column(r, source) for r in raws]
    chunks = pa.chunked_array([c for col in columns for c in col.chunks], columns[0].type)
    coded = Coded.of(chunks)
    text = decoded(coded.values, raws[0].encoding)
    return Coded(coded.codes, pc.utf8_trim_whitespace(text))


def _raw_column(raw: Raw, source: str) -> pa.ChunkedArray:
    if not template_fields(source):
        return raw.table.column(source)
    pieces = re.split(r"\{(\w[\w ]*)\}", source)  # literal, field, literal, field, ...
    names = pc.binary_join_element_wise(
        *[pc.utf8_trim_whitespace(raw.column(p)) if i % 2 else p for i, p in enumerate(pieces)],
        "",
    )
    out = pa.array([""] * raw.table.num_rows, pa.string())
    for name in pc.unique(names).to_pylist():
        if name in raw.table.column_names:
            out = pc.if_else(pc.equal(names, name), raw.column(name), out)
    return out if isinstance(out, pa.ChunkedArray) else pa.chunked_array([out])


def _convert_units(
    texts: dict[str, Coded],
    rows: RowSorter,
    frame: Frame,
    profile: Profile,
    schema: Schema,
    ctx: Context,
) -> None:
    for name, spec in profile.columns.items():
        target = schema.column(name).unit
        if spec.unit is None and spec.unit_from is None:
            continue
        if spec.unit_from is not None:
            code = texts[spec.unit_from]
            names = code.series()
            unit = Coded(code.codes, pa.array(names.map(spec.unit_map).fillna(names), pa.string()))
        else:
            unit = Coded.constant(str(spec.unit), rows.code.size)
        known = unit.isin({target, CASE} | {a for a, b in CONVERSIONS if b == target})
        rows.reject_values(unit, (~known, "unknown_unit", name))
        converted = [(unit.eq(src), fn) for (src, dst), fn in CONVERSIONS.items() if dst == target]
        cases = unit.eq(CASE)
        if not cases.any() and not any(is_src.any() for is_src, _ in converted):
            continue  # every value is in the target unit already (or unknown)
        column = frame.columns[name]
        values = column.spread(column.values) if isinstance(column, Coded) else column.copy()
        for is_src, fn in converted:
            if is_src.any():
                rows_src = unit.spread(is_src)
                values[rows_src] = fn(values[rows_src])
        if cases.any():
            in_cases = np.flatnonzero(unit.spread(cases))
            if "product_id" not in frame:
                rows.reject(unit.spread(cases), "unknown_unit", name)
            else:
                product = frame.coded("product_id")
                sizes = product.series().map(ctx.pack_sizes()).to_numpy(float)
                pack = sizes[product.codes[in_cases]]
                if np.isnan(pack).any():
                    unknown = np.zeros(rows.code.size, dtype=bool)
                    unknown[in_cases] = np.isnan(pack)
                    rows.reject(unknown, "unknown_pack_size", name)
                values[in_cases] = values[in_cases] * pack
        frame.columns[name] = values


def _codes(frame: Frame, name: str, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Per row of `rows` a code in [0, bound), equal exactly where the values are (missing
    values are equal), in the order of the values (missing last); and the bound."""
    column = frame.columns[name]
    if isinstance(column, Coded):
        rank = column.ranks()
        return column.spread(rank, rows), int(rank.max(initial=0)) + 1
    codes = Coded(np.arange(rows.size), column[rows]).ranks()
    return codes, int(codes.max(initial=0)) + 1


def _combined(parts: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """One int64 per row from (codes, bound) pairs, ordered and equal as the tuples of codes."""
    key, bound = parts[0][0].astype(np.int64), parts[0][1]
    for codes, card in parts[1:]:
        if bound * card >= 2**62:  # keep the key in int64: renumber it densely, in order
            key = pd.factorize(key, sort=True)[0]
            bound = int(key.max(initial=0)) + 1
        key = key * card + codes
        bound *= card
    return key


def _row_key(frame: Frame, names: Sequence[str], file_no: np.ndarray) -> tuple[np.ndarray, int]:
    """One int64 per row, ordered and equal as the tuples (file, values of `names`), and its
    bound (0: unknown): each column's rank scaled by the bounds after it, one gather a column."""
    files = int(file_no.max(initial=0)) + 1
    ranked = []
    for name in names:
        column = frame.columns[name]
        coded = column if isinstance(column, Coded) else Coded(np.arange(column.size), column)
        rank = coded.ranks()
        ranked.append((coded.codes, rank, int(rank.max(initial=0)) + 1))
    bound = math.prod([files, *(card for _, _, card in ranked)])
    if bound >= 2**62:  # too many combinations for one sum: renumber as the key grows
        return _combined([(file_no, files), *((r[c], k) for c, r, k in ranked)]), 0
    scale = bound // files
    key = file_no * np.int64(scale)
    for codes, rank, card in ranked:
        scale //= card
        key += (rank * scale)[codes]
    return key, bound


def _argsort(key: np.ndarray, bound: int) -> np.ndarray:
    """The order of `key` (values in [0, bound); 0: unknown), by radix sort (numpy sorts
    16-bit integers so) when the bound allows: about twice as fast as a quicksort."""
    if bound == 0 or bound > 2**32:
        return np.argsort(key)
    order = np.argsort(key.astype(np.uint16), kind="stable")
    if bound > 2**16:
        high = (key[order] >> 16).astype(np.uint16)
        order = order[np.argsort(high, kind="stable")]
    return order


def _reject_duplicates(
    rows: RowSorter, frame: Frame, schema: Schema, file_no: np.ndarray
) -> np.ndarray:
    """Among good rows of one file: the same record again is `duplicate`; the same key with
    other values is `conflicting_duplicate`. The first occurrence is kept. Returns the rows
    kept, in the order of file and key."""
    good = np.flatnonzero(rows.good)
    key, bound = _row_key(frame, schema.key, file_no)
    key = key[good]
    order = _argsort(key, bound)
    in_order = key[order]
    repeat = np.flatnonzero(in_order[1:] == in_order[:-1])
    if repeat.size == 0:
        return good[order]
    shared = np.sort(order[np.union1d(repeat, repeat + 1)])  # rows whose key is not unique
    rows_of = good[shared]
    same_key = pd.Index(key[shared]).duplicated()
    values = [_codes(frame, c.name, rows_of) for c in schema.columns]
    same_row = pd.Index(_combined([(key[shared], int(key.max()) + 1), *values])).duplicated()
    for hit, reason in ((same_row, "duplicate"), (same_key, "conflicting_duplicate")):
        mask = np.zeros(rows.code.size, dtype=bool)
        mask[rows_of[hit]] = True
        rows.reject(mask, reason)
    kept = good[order]
    return kept[rows.good[kept]]


def _typed(frame: Frame, rows: np.ndarray, schema: Schema) -> pa.Table:
    """The rows at the indices `rows`, in the schema's Arrow types (numbers and dates made and
    checked for missing values per distinct value, then spread to the rows)."""
    columns = {}
    for col in schema.columns:
        column = frame.columns[col.name]
        if isinstance(column, Coded) and col.kind == "str":
            columns[col.name] = column.arrow(rows)
            continue
        values, at = (
            (column.values, column.codes[rows]) if isinstance(column, Coded) else (column, rows)
        )
        missing = np.isnat(values) if col.kind == "date" else np.isnan(values)
        if col.kind == "int":
            unfit = missing | ~(np.abs(values) < 2**62)  # rejected rows may hold inf, 1e300
            values = np.round(np.where(unfit, 0, values)).astype(np.int64)
        mask = missing[at] if missing.any() else None
        columns[col.name] = pa.array(values[at], ARROW_TYPES[col.kind], mask=mask)
    return pa.table(columns)
