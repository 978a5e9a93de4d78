"""Store attributes: one row per store with its region, zip code, format and size."""

from __future__ import annotations

import pandas as pd

from conditioners.context import Context
from conditioners.schemas import STORE_FORMATS
from conditioners.table import RowSorter


def rules(frame: pd.DataFrame, rows: RowSorter, ctx: Context) -> None:
    if ctx.regions is not None:
        rows.reject(~frame["region"].isin(ctx.regions), "unknown_region")
    rows.reject(~frame["store_format"].isin(STORE_FORMATS), "bad_store_format")
    rows.reject(~frame["zip_code"].str.fullmatch(r"\d{5}"), "bad_zip_code")
