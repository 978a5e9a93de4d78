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
    """The result of conditioning one raw file:
    rows_in == len(frame) + rows_aggregated + len(rejects).

    Arrow tables; `frame` and `rejects` are the same as pandas, made when first asked for.
    """

    table: pa.Table  # standardized rows, in the source schema's Arrow types
    reject_table: pa.Table  # REJECT_SCHEMA: raw line, reason code, detail, raw record as JSON
    rows_in: int
    source: str  # the schema
    rows_aggregated: int = 0  # raw rows folded into another row of their key (`aggregate:`)
    returns: pa.Table | None = None  # returns booked from negative shipments (returns schema)

    def rejected_share(self) -> float:
        """The share of the rows rejected for what they hold: every reason but `future_date`
        (rows not due yet), `skipped` (rows the profile does not want) and `partial_week`."""
        if not self.rows_in:
            return 0.0
        reasons = self.reject_table.column("reason").to_numpy(zero_copy_only=False)
        bad = ~np.isin(reasons, ["future_date", "skipped", "partial_week"])
        return float(np.count_nonzero(bad)) / self.rows_in

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The standardized rows as pandas, in the schema's dtypes."""
        return SCHEMAS[self.source].to_frame(self.table)

    @cached_property
    def rejects(self) -> pd.DataFrame:
        return self.reject_table.to_pandas()


class RowSorter:
    """Collects the reasons rows are rejected; the first reason a row gets is the one kept.

    Checks of distinct values wait until the rows are next looked at, and then each column's
    checks are spread to its rows at once (one gather a column, not one a check)."""

    _NONE = np.iinfo(np.int16).max  # a value that passed every check

    def __init__(self, rows: int) -> None:
        self.code = np.zeros(rows, dtype=np.int16)  # 0: good, else 1 + index in reasons
        self._good = np.ones(rows, dtype=bool)
        self.reasons: list[tuple[str, str]] = []
        self._waiting: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # codes, first reason

    @property
    def good(self) -> np.ndarray:
        """Per row: not rejected."""
        self._spread()
        return self._good

    def reject(self, mask: np.ndarray, reason: str, detail: str = "") -> None:
        hit = np.flatnonzero(mask & self.good)
        if hit.size:
            self.reasons.append((reason, detail))
            self.code[hit] = len(self.reasons)
            self._good[hit] = False

    def reject_values(self, column: Coded, *checks: tuple[np.ndarray, str, str]) -> None:
        """Reject the rows whose value of `column` fails a check (a mask per distinct value,
        reason, detail); the first check a value fails is its rows' reason."""
        first = np.full(len(column.values), self._NONE, dtype=np.int16)
        for mask, reason, detail in checks:
            if mask.any():
                self.reasons.append((reason, detail))
                first[(first == self._NONE) & mask] = len(self.reasons)
        if (first == self._NONE).all():
            return
        waiting = self._waiting.get(id(column.codes))
        if waiting is not None and waiting[1].size != first.size:
            self._spread()
            waiting = None
        if waiting is not None:
            first = np.minimum(waiting[1], first)
        self._waiting[id(column.codes)] = (column.codes, first)  # the entry keeps the id's array

    def _spread(self) -> None:
        if not self._waiting:
            return
        columns = iter(self._waiting.values())
        codes, first = next(columns)
        reason = first[codes]
        for codes, first in columns:
            np.minimum(reason, first[codes], out=reason)
        self._waiting.clear()
        hit = np.flatnonzero((reason != self._NONE) & self._good)
        self.code[hit] = reason[hit]
        self._good[hit] = False

    def rejects(self, raws: Sequence[Raw]) -> pa.Table:
        """The rejected rows of the raw files (whose rows, in order, are the sorter's)."""
        self._spread()
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
