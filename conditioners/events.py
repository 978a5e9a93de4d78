"""Events: holidays, local events and promotions, each with a scope (national, region, zip,
store), dates (end inclusive) and an optional product."""

from __future__ import annotations

import pandas as pd

from conditioners.context import Context
from conditioners.schemas import EVENT_SCOPES
from conditioners.table import RowSorter


def rules(frame: pd.DataFrame, rows: RowSorter, ctx: Context) -> None:
    rows.reject(~frame["scope"].isin(EVENT_SCOPES), "bad_scope")
    if ctx.regions is not None:
        region = frame["scope"] == "region"
        rows.reject(region & ~frame["scope_id"].isin(ctx.regions), "unknown_region")
    zip_scope = frame["scope"] == "zip"
    rows.reject(zip_scope & ~frame["scope_id"].str.fullmatch(r"\d{5}"), "bad_zip_code")
    rows.reject(frame["end_date"] < frame["start_date"], "bad_date_range")
