"""Store attributes: one row per store with its region, zip code, format and size."""

from __future__ import annotations

from conditioners.columns import Frame
from conditioners.context import Context
from conditioners.schemas import STORE_FORMATS
from conditioners.table import RowSorter


def rules(frame: Frame, rows: RowSorter, ctx: Context) -> None:
    region, store_format = frame.coded("region"), frame.coded("store_format")
    zip_code = frame.coded("zip_code")
    if ctx.regions is not None:
        rows.reject_values(region, (~region.isin(ctx.regions), "unknown_region", ""))
    rows.reject_values(store_format, (~store_format.isin(STORE_FORMATS), "bad_store_format", ""))
    rows.reject_values(zip_code, (~zip_code.fullmatch(r"\d{5}"), "bad_zip_code", ""))
