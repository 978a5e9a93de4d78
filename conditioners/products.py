"""Product catalogue: category, pack size and regular price per product."""

from __future__ import annotations

import pandas as pd

from conditioners.schemas import PRODUCTS
from conditioners.table import Conditioned, RowSorter, parse_int, read_raw_csv


def condition_products(data: bytes, file: str) -> Conditioned:
    raw = read_raw_csv(data, file, PRODUCTS.names)
    rows = RowSorter(raw)
    pack = parse_int(raw["pack_size"])
    price = pd.to_numeric(raw["regular_price"], errors="coerce")
    rows.reject(raw["product_id"].str.strip() == "", "missing_product_id")
    rows.reject(pack.isna() | (pack < 1), "bad_pack_size")
    rows.reject(price.isna() | (price < 0), "bad_price")
    rows.reject(raw["product_id"].str.strip().duplicated(), "duplicate")
    good = rows.good
    frame = pd.DataFrame(
        {
            "product_id": raw.loc[good, "product_id"].str.strip(),
            "category": raw.loc[good, "category"].str.strip().str.lower(),
            "pack_size": pack[good].astype("int64"),
            "regular_price": price[good].astype(float),
        }
    ).sort_values("product_id")
    return rows.result(PRODUCTS.validate(frame))
