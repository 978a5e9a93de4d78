"""Promotion plan: promoted price per store × product × week, history and the coming weeks."""

from __future__ import annotations

import pandas as pd

from conditioners.schemas import PROMOTIONS
from conditioners.table import Conditioned, RowSorter, read_raw_csv


def condition_promotions(
    data: bytes, file: str, known_stores: set[str], known_products: set[str]
) -> Conditioned:
    raw = read_raw_csv(data, file, PROMOTIONS.names)
    rows = RowSorter(raw)
    week = pd.to_datetime(raw["week_start"].str.strip(), format="%Y-%m-%d", errors="coerce")
    price = pd.to_numeric(raw["promo_price"], errors="coerce")
    rows.reject(week.isna(), "bad_date")
    rows.reject(week.dt.day_of_week != 0, "not_week_start_monday")
    rows.reject(price.isna() | (price < 0), "bad_price")
    rows.reject(~raw["store_id"].isin(known_stores), "unknown_store")
    rows.reject(~raw["product_id"].isin(known_products), "unknown_product")
    key = raw[["store_id", "product_id", "week_start"]]
    rows.reject(key.duplicated(keep="first"), "duplicate")
    good = rows.good
    frame = pd.DataFrame(
        {
            "store_id": raw.loc[good, "store_id"],
            "product_id": raw.loc[good, "product_id"],
            "week_start": week[good],
            "promo_price": price[good].astype(float),
        }
    ).sort_values(["store_id", "product_id", "week_start"])
    return rows.result(PROMOTIONS.validate(frame))
