"""Combine the conditioned parts of one source (one per raw file) into one standard table.

Parts are taken in file order; a row whose key an earlier file already delivered is a
`duplicate` (same values: e.g. a file sent again) or a `conflicting_duplicate` (other values),
and goes to the rejects with the file it came from. The result is sorted by the key, so the
same parts always give the same bytes.
"""

from __future__ import annotations

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
    """One table from the parts (file, frame) of a source; cross-file duplicates rejected."""
    from conditioners.schemas import SCHEMAS

    schema = SCHEMAS[schema_name]
    if not parts:
        empty = schema.empty()
        return Combined(empty, _rejects(empty, [], []), 0)
    frame = pd.concat(
        [p.assign(_file=f) for f, p in parts if len(p)] or [schema.empty().assign(_file="")],
        ignore_index=True,
    )
    values = frame[schema.names]
    same_row = values.duplicated(keep="first")
    same_key = values.duplicated(list(schema.key), keep="first") & ~same_row
    bad = same_row | same_key
    reasons = ["duplicate" if r else "conflicting_duplicate" for r in same_row[bad]]
    rejects = _rejects(frame[bad], reasons, list(frame.loc[bad, "_file"]))
    good = values[~bad].sort_values(list(schema.key)).reset_index(drop=True)
    return Combined(schema.validate(good), rejects, len(frame))


def _rejects(rows: pd.DataFrame, reasons: list[str], files: list[str]) -> pd.DataFrame:
    records = [
        json.dumps({k: str(v) for k, v in r.items() if k != "_file"}, sort_keys=True)
        for r in rows.to_dict("records")
    ]
    return pd.DataFrame(
        {
            "line": [""] * len(rows),
            "reason": reasons,
            "detail": ["delivered again in a later file"] * len(rows),
            "record": records,
            "source_file": files,
        }
    )
