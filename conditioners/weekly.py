"""Rules shared by the weekly store × product feeds (shipments, returns, promotions)."""

from __future__ import annotations

import pandas as pd

from conditioners.context import Context, reject_unknown
from conditioners.table import RowSorter


def weekly_rules(frame: pd.DataFrame, rows: RowSorter, ctx: Context, actuals: bool) -> None:
    """Monday weeks, known stores and products; actuals may not be dated after `as_of`."""
    rows.reject(frame["week_start"].dt.day_of_week != 0, "not_monday")
    if actuals and ctx.as_of is not None:
        rows.reject(frame["week_start"] > ctx.as_of, "future_date")
    reject_unknown(rows, frame["store_id"], ctx.store_ids(), "unknown_store")
    reject_unknown(rows, frame["product_id"], ctx.product_ids(), "unknown_product")
