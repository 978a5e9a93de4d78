"""Store attributes: one row per store with its region, zip code, format and size."""

from __future__ import annotations

import pandas as pd

from conditioners.schemas import STORE_FORMATS, STORES
from conditioners.table import Conditioned, RowSorter, parse_int, read_raw_csv


def condition_stores(data: bytes, file: str, known_regions: set[str]) -> Conditioned:
    raw = read_raw_csv(data, file, STORES.names)
    rows = RowSorter(raw)
    sqft = parse_int(raw["sqft"])
    fmt = raw["store_format"].str.strip().str.lower()
    rows.reject(raw["store_id"].str.strip() == "", "missing_store_id")
    rows.reject(~raw["region"].isin(known_regions), "unknown_region")
    rows.reject(~fmt.isin(STORE_FORMATS), "bad_store_format")
    rows.reject(~raw["zip_code"].str.fullmatch(r"\d{5}"), "bad_zip_code")
    rows.reject(sqft.isna() | (sqft < 0), "bad_sqft")
    rows.reject(raw["store_id"].str.strip().duplicated(), "duplicate")
    good = rows.good
    frame = pd.DataFrame(
        {
            "store_id": raw.loc[good, "store_id"].str.strip(),
            "region": raw.loc[good, "region"],
            "zip_code": raw.loc[good, "zip_code"],
            "store_format": fmt[good],
            "sqft": sqft[good].astype("int64"),
        }
    ).sort_values("store_id")
    return rows.result(STORES.validate(frame))
