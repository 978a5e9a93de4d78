"""Combine the conditioned parts of one source (one per raw file) into one standard table.

A key delivered by several files is kept from the file that `precedence` ranks first (by
content: the latest date it reaches, then rows, then content hash; never by file name); the
other files' rows with that key are a `duplicate` (same values: e.g. a file sent again) or a
`conflicting_duplicate` (other values), and go to the rejects with the file they came from
and, in the detail, the file that won and why. The result is sorted by the key, so the same
parts always give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import pandas as pd

from conditioners.schemas import DTYPES, Schema


def read_standard(data: bytes, schema: Schema) -> pd.DataFrame:
    """Read a standardized CSV back into the schema's types."""
    kinds = {c.name: c.kind for c in schema.columns}
    frame = pd.read_csv(
        io.BytesIO(data),
        dtype={n: "str" for n, k in kinds.items() if k == "str"},
        keep_default_na=False,
        na_values={n: [""] for n, k in kinds.items() if k != "str"},
    )
    for name, kind in kinds.items():
        if kind == "date":
            frame[name] = pd.to_datetime(frame[name], format="%Y-%m-%d").astype(DTYPES[kind])
        elif kind == "int":
            frame[name] = frame[name].astype("Int64" if schema.column(name).nullable else "int64")
        elif kind == "float":
            frame[name] = frame[name].astype(float)
    return schema.validate(frame)


@dataclass(frozen=True)
class Combined:
    """One source's standard table: rows_in == len(frame) + len(rejects)."""

    frame: pd.DataFrame
    rejects: pd.DataFrame  # line (empty), reason, detail, record, source_file
    rows_in: int


def combine_parts(parts: list[tuple[str, pd.DataFrame]], schema_name: str) -> Combined:
    """One table from the parts (file, frame) of a source; cross-file duplicates rejected, the
    row kept from the file that `precedence` puts first (whatever the files are named)."""
    from conditioners.schemas import SCHEMAS

    schema = SCHEMAS[schema_name]
    if not parts:
        empty = schema.empty()
        return Combined(empty, _rejects(empty, [], [], []), 0)
    ranked = precedence(parts, schema)
    frame = pd.concat(
        [p.assign(_file=f) for f, p, _ in ranked if len(p)] or [schema.empty().assign(_file="")],
        ignore_index=True,
    )
    values = frame[schema.names]
    same_row = values.duplicated(keep="first")
    same_key = values.duplicated(list(schema.key), keep="first") & ~same_row
    bad = same_row | same_key
    reasons = ["duplicate" if r else "conflicting_duplicate" for r in same_row[bad]]
    first = values.groupby(list(schema.key), dropna=False, sort=False).ngroup()
    winner = frame["_file"].groupby(first).transform("first")
    why = {f: w for f, _, w in ranked}
    details = [
        f"kept the row of {won} ({why[won]}; this file: {why[lost]})"
        for won, lost in zip(winner[bad], frame.loc[bad, "_file"], strict=True)
    ]
    rejects = _rejects(frame[bad], reasons, list(frame.loc[bad, "_file"]), details)
    good = values[~bad].sort_values(list(schema.key)).reset_index(drop=True)
    return Combined(schema.validate(good), rejects, len(frame))


def precedence(
    parts: list[tuple[str, pd.DataFrame]], schema: Schema
) -> list[tuple[str, pd.DataFrame, str]]:
    """The parts in the order their rows win a key delivered twice, each with why: the file
    whose rows reach the latest date first (a later delivery restates the weeks before it),
    then the one with more rows, then by content hash. File names and arrival order play no
    part, so renaming a file never changes the result."""
    dates = [c.name for c in schema.columns if c.kind == "date"]
    ranked = []
    for file, part in parts:
        latest = part[dates].max().max() if dates and len(part) else pd.NaT
        content = hashlib.sha256(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        day = "" if pd.isna(latest) else pd.Timestamp(latest).date().isoformat()
        why = f"latest date {day or '-'}, {len(part)} rows, content {content.hexdigest()[:12]}"
        ranked.append(((day, len(part), content.hexdigest()), file, part, why))
    ranked.sort(key=lambda r: r[0][2])  # the lowest hash first among equals (a stable sort)
    ranked.sort(key=lambda r: r[0][:2], reverse=True)
    return [(file, part, why) for _, file, part, why in ranked]


def _rejects(
    rows: pd.DataFrame, reasons: list[str], files: list[str], details: list[str]
) -> pd.DataFrame:
    records = [
        json.dumps({k: str(v) for k, v in r.items() if k != "_file"}, sort_keys=True)
        for r in rows.to_dict("records")
    ]
    return pd.DataFrame(
        {
            "line": [""] * len(rows),
            "reason": reasons,
            "detail": details,
            "record": records,
            "source_file": files,
        }
    )
