"""Rules shared by the weekly store × product feeds (shipments, returns, promotions)."""

from __future__ import annotations

import numpy as np

from conditioners.columns import Frame, day_of_week
from conditioners.context import Context, reject_unknown
from conditioners.table import RowSorter


def weekly_rules(frame: Frame, rows: RowSorter, ctx: Context, actuals: bool) -> None:
    """Monday weeks, known stores and products; actuals may not be dated after `as_of`."""
    week = frame.coded("week_start")
    rows.reject_values(week, (day_of_week(week.values) != 0, "not_monday", ""))
    if actuals and ctx.as_of is not None:
        rows.reject_values(week, (week.values > np.datetime64(ctx.as_of), "future_date", ""))
    reject_unknown(rows, frame.coded("store_id"), ctx.store_ids(), "unknown_store")
    reject_unknown(rows, frame.coded("product_id"), ctx.product_ids(), "unknown_product")
