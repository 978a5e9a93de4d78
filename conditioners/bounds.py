"""Plausibility checks of standard values once made: whole numbers whole, quantities within
the schema's bounds and the configured plausible ones (`out_of_range`), dates within the
configured plausible range (`bad_date`): units of 1e18 or a shipment dated 9999-12-31 are
rejected row by row, never trained on."""

from __future__ import annotations

import numpy as np

from conditioners.columns import Coded, Frame
from conditioners.schemas import Column, Schema
from conditioners.table import RowSorter
from demandops.core.limits import InputLimits

INT_TOLERANCE = 1e-3  # whole-number columns accept e.g. exp(log units) = 12.0002


def check_bounds(rows: RowSorter, frame: Frame, schema: Schema, limits: InputLimits) -> None:
    """Reject the rows whose numbers or dates fail a check (each distinct value checked once)."""
    for col in schema.columns:
        if col.kind == "str":
            continue
        column = frame.columns[col.name]
        coded = column if isinstance(column, Coded) else Coded(np.arange(column.size), column)
        if col.kind == "date":
            rows.reject_values(
                coded, (limits.implausible_dates(coded.values), "bad_date", col.name)
            )
        else:
            rows.reject_values(coded, *_number_checks(coded.values, col, limits))


def _number_checks(
    values: np.ndarray, col: Column, limits: InputLimits
) -> list[tuple[np.ndarray, str, str]]:
    low, high = _bounds(col, limits)
    checks = []
    with np.errstate(invalid="ignore"):
        if col.kind == "int":
            whole = np.abs(values - np.round(values)) <= INT_TOLERANCE
            checks.append((~np.isnan(values) & ~whole, "bad_number", col.name))
        if low is not None:
            below = values < low
            negative = below & (values < 0) & (col.min_value == 0)
            checks.append((negative, "negative_value", col.name))
            checks.append((below, "out_of_range", col.name))
        if high is not None:
            checks.append((values > high, "out_of_range", col.name))
        checks.append((np.isinf(values), "out_of_range", col.name))
    return checks


def _bounds(col: Column, limits: InputLimits) -> tuple[float | None, float | None]:
    """The tighter of the schema's bounds and the configured plausible ones."""
    low, high = limits.bounds_of(col.name)
    lows = [b for b in (col.min_value, low) if b is not None]
    highs = [b for b in (col.max_value, high) if b is not None]
    return (max(lows) if lows else None), (min(highs) if highs else None)
