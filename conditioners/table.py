"""What conditioning produces, and how rows are sorted into good and rejected."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from json.encoder import encode_basestring

import numpy as np
import pandas as pd
import pyarrow as pa

from conditioners.columns import Coded
from conditioners.readers import Raw
from conditioners.schemas import SCHEMAS

REJECT_COLUMNS = ["line", "reason", "detail", "record"]
REJECT_SCHEMA = pa.schema([("line", pa.int64())] + [(c, pa.string()) for c in REJECT_COLUMNS[1:]])


@dataclass(frozen=True)
class Conditioned:
    """The result of conditioning one raw file: rows_in == len(frame) + len(rejects).

    Arrow tables; `frame` and `rejects` are the same as pandas, made when first asked for.
    """

    table: pa.Table  # standardized rows, in the source schema's Arrow types
    reject_table: pa.Table  # REJECT_SCHEMA: raw line, reason code, detail, raw record as JSON
    rows_in: int
    source: str  # the schema

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The standardized rows as pandas, in the schema's dtypes."""
        return SCHEMAS[self.source].to_frame(self.table)

    @cached_property
    def rejects(self) -> pd.DataFrame:
        return self.reject_table.to_pandas()


class RowSorter:
    """Collects the reasons rows are rejected; the first reason a row gets is the one kept."""

    def __init__(self, rows: int) -> None:
        self.code = np.zeros(rows, dtype=np.int16)  # 0: good, else 1 + index in reasons
        self.good = np.ones(rows, dtype=bool)
        self.reasons: list[tuple[str, str]] = []

    def reject(self, mask: np.ndarray, reason: str, detail: str = "") -> None:
        hit = np.flatnonzero(mask & self.good)
        if hit.size:
            self.reasons.append((reason, detail))
            self.code[hit] = len(self.reasons)
            self.good[hit] = False

    def reject_values(self, column: Coded, *checks: tuple[np.ndarray, str, str]) -> None:
        """Reject the rows whose value of `column` fails a check (a mask per distinct value,
        reason, detail); the first check a value fails is its rows' reason."""
        failed = np.zeros(len(column.values), dtype=np.int8)
        for number, (mask, _, _) in enumerate(checks, start=1):
            failed[(failed == 0) & mask] = number
        if not failed.any():
            return
        per_row = column.spread(failed)
        hit = np.flatnonzero((per_row > 0) & self.good)
        for number in np.unique(per_row[hit]):
            _, reason, detail = checks[number - 1]
            self.reasons.append((reason, detail))
            self.code[hit[per_row[hit] == number]] = len(self.reasons)
        self.good[hit] = False

    def rejects(self, raws: Sequence[Raw]) -> pa.Table:
        """The rejected rows of the raw files (whose rows, in order, are the sorter's)."""
        bad = np.flatnonzero(self.code > 0)
        lines = np.concatenate([r.lines for r in raws]) if raws else np.zeros(0, np.int64)
        codes = self.code[bad] - 1
        reasons = np.array([r for r, _ in self.reasons] or [""], dtype=object)
        details = np.array([d for _, d in self.reasons] or [""], dtype=object)
        return pa.table(
            [
                pa.array(lines[bad], pa.int64()),
                pa.array(reasons[codes], pa.string()),
                pa.array(details[codes], pa.string()),
                pa.array(_json_records(raws, bad) if bad.size else [], pa.string()),
            ],
            schema=REJECT_SCHEMA,
        )


def _json_records(raws: Sequence[Raw], rows: np.ndarray) -> list[str]:
    """The records at `rows` (indices into the files' rows, one after the other) as JSON
    objects with sorted keys, as `json.dumps(record, ensure_ascii=False, sort_keys=True)`
    writes them; made a column at a time, all files at once when their columns are the same."""
    if len({(tuple(r.table.column_names), r.encoding) for r in raws}) > 1:
        records, start = [], 0
        for raw in raws:
            end = start + raw.table.num_rows
            records += _json_records([raw], rows[(rows >= start) & (rows < end)] - start)
            start = end
        return records
    values = Raw(pa.concat_tables([r.table for r in raws]), rows, raws[0].encoding).values(rows)
    names = sorted(values)
    if not names:
        return ["{}"] * rows.size
    keys = [encode_basestring(n) + ": " for n in names]
    columns = [
        [k + encode_basestring(v) for v in values[n]] for k, n in zip(keys, names, strict=True)
    ]
    return ["{" + ", ".join(fields) + "}" for fields in zip(*columns, strict=True)]
