"""Shoppers: demographics of each store's trade area (population, income, age, household)."""

from __future__ import annotations

import numpy as np

from conditioners.columns import Frame
from conditioners.context import Context, reject_unknown
from conditioners.table import RowSorter


def rules(frame: Frame, rows: RowSorter, ctx: Context) -> None:
    reject_unknown(rows, frame.coded("store_id"), ctx.store_ids(), "unknown_store")
    young, old = frame.array("share_age_under_18"), frame.array("share_age_60_plus")
    ages = np.where(np.isnan(young), 0, young) + np.where(np.isnan(old), 0, old)
    rows.reject(ages > 1, "inconsistent_values", "age shares add up to more than 1")
