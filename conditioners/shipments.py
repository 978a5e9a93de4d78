"""Shipments: a distributor's weekly export of units shipped per store and item.

Raw shape: `Store, Item, Week Ending, Units` with Sunday week-ending dates as M/D/Y.
Standard: `store_id, product_id, week_start (Monday), units`. A store × product × week that is
absent means nothing was shipped (0 units); the feature step fills those weeks.
"""

from __future__ import annotations

import pandas as pd

from conditioners.schemas import SHIPMENTS
from conditioners.table import Conditioned, RowSorter, parse_int, read_raw_csv

RAW_COLUMNS = ["Store", "Item", "Week Ending", "Units"]


def condition_shipments(
    data: bytes,
    file: str,
    known_stores: set[str],
    known_products: set[str],
    last_week: pd.Timestamp | None = None,
) -> Conditioned:
    """Standardize one shipments export; `last_week` (a Monday) rejects rows dated after it."""
    raw = read_raw_csv(data, file, RAW_COLUMNS)
    rows = RowSorter(raw)
    week_ending = pd.to_datetime(raw["Week Ending"].str.strip(), format="%m/%d/%Y", errors="coerce")
    week_start = week_ending - pd.Timedelta(days=6)
    units = parse_int(raw["Units"])
    store, product = raw["Store"].str.strip(), raw["Item"].str.strip()
    rows.reject(week_ending.isna(), "bad_date")
    rows.reject(week_ending.dt.day_of_week != 6, "not_week_ending_sunday")
    if last_week is not None:
        rows.reject(week_start > last_week, "future_week")
    rows.reject(units.isna(), "bad_units")
    rows.reject(units < 0, "negative_units")
    rows.reject(~store.isin(known_stores), "unknown_store")
    rows.reject(~product.isin(known_products), "unknown_product")
    rows.reject(raw.duplicated(keep="first"), "duplicate")
    key = pd.DataFrame({"s": store, "p": product, "w": week_start})
    rows.reject(key.duplicated(keep="first") & rows.good, "conflicting_duplicate")
    good = rows.good
    frame = pd.DataFrame(
        {
            "store_id": store[good],
            "product_id": product[good],
            "week_start": week_start[good],
            "units": units[good].astype("int64"),
        }
    ).sort_values(["store_id", "product_id", "week_start"])
    return rows.result(SHIPMENTS.validate(frame))
