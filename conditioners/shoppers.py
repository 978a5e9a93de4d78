"""Shoppers: demographics of each store's trade area (population, income, age, household)."""

from __future__ import annotations

import pandas as pd

from conditioners.context import Context, reject_unknown
from conditioners.table import RowSorter


def rules(frame: pd.DataFrame, rows: RowSorter, ctx: Context) -> None:
    reject_unknown(rows, frame["store_id"], ctx.store_ids(), "unknown_store")
    ages = frame["share_age_under_18"].fillna(0) + frame["share_age_60_plus"].fillna(0)
    rows.reject(ages > 1, "inconsistent_values", "age shares add up to more than 1")
