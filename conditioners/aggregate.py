"""Finer-grained rows (days, transactions) folded into one row per key (`aggregate:` profiles).

Weekly feeds first move each date to its week: weeks begin on the profile's `week_start` day
and are labelled by the Monday inside them (Sunday-to-Saturday weeks by the Monday after their
Sunday). Then the good rows of one file that share a key become one row: each non-key column
combined as the profile says (sum, mean, max, min, first, last, in raw order), units booked as
returns summed. Every raw row is then out (the first row of its key carries the result),
aggregated into it, or rejected.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from conditioners.columns import Coded, Frame, day_of_week
from conditioners.options import WEEKDAYS, Aggregate
from conditioners.schemas import Schema
from conditioners.table import RowSorter
from conditioners.transforms import RETURNED


def align_weeks(
    frame: Frame, aggregate: Aggregate | None, schema: Schema, rows: RowSorter, file_no: np.ndarray
) -> None:
    """Move the dates of a weekly feed's `week_start` to the Monday labelling their week, and
    reject the rows of weeks their file covers only in part (`partial_week`)."""
    if aggregate is None or "week_start" not in schema.key:
        return
    column = frame.coded("week_start")
    days = column.values.astype("datetime64[D]")
    first = WEEKDAYS.index(aggregate.week_start or "monday")
    begins = days - ((day_of_week(column.values) - first) % 7).astype("timedelta64[D]")
    aligned = begins + np.timedelta64((0 - first) % 7, "D")
    frame.columns["week_start"] = Coded(column.codes, aligned.astype("datetime64[ns]"))
    if aggregate.partial_weeks == "keep" or not len(file_no):
        return
    per_row = pd.Series(column.spread(days))
    span = per_row.groupby(file_no).agg(["min", "max"])
    low, high = span["min"].to_numpy()[file_no], span["max"].to_numpy()[file_no]
    start = column.spread(begins)
    with np.errstate(invalid="ignore"):
        partial = (start < low) | (start + np.timedelta64(6, "D") > high)
    rows.reject(partial & ~np.isnat(start), "partial_week", "week_start")


def aggregate_rows(
    frame: Frame, good: np.ndarray, key: np.ndarray, aggregate: Aggregate, schema: Schema
) -> np.ndarray:
    """The rows kept (the first good row of each key, in key order); the frame's non-key
    columns hold each key's combined values at those rows. `key`: one int64 per row, equal
    exactly where the file and key columns are."""
    order = good[np.argsort(key[good], kind="stable")]  # by key, raw order within a key
    if not order.size:
        return order
    in_order = key[order]
    new = np.r_[True, in_order[1:] != in_order[:-1]]
    group, kept = np.cumsum(new) - 1, order[new]
    hows = {c.name: "last" for c in schema.columns if c.name not in schema.key}
    hows |= dict(aggregate.columns)
    if RETURNED in frame:
        hows[RETURNED] = "sum"
    for name, how in hows.items():
        column = frame.columns[name]
        if isinstance(column, Coded) and not isinstance(column.values, np.ndarray):
            frame.columns[name] = _text(column, order, group, kept, how)
        else:
            frame.columns[name] = _numbers(frame.array(name), order, group, kept, how)
    return kept


def _text(column: Coded, order: np.ndarray, group: np.ndarray, kept: np.ndarray, how: str) -> Coded:
    pick = pd.Series(column.codes[order]).groupby(group).agg(how).to_numpy()
    codes = column.codes.copy()
    codes[kept] = pick
    return Coded(codes, column.values)


def _numbers(
    values: np.ndarray, order: np.ndarray, group: np.ndarray, kept: np.ndarray, how: str
) -> np.ndarray:
    grouped = pd.Series(values[order]).groupby(group)
    combined = grouped.sum(min_count=1) if how == "sum" else grouped.agg(how)
    out = values.copy()
    out[kept] = combined.to_numpy(dtype=values.dtype)
    return out
