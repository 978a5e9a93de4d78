"""What conditioning one file may know besides its bytes: the reference data it checks against.

Every field is optional: a check whose reference is missing is not made (e.g. Dominick's data
has no store list, so its shipments are not checked for unknown stores).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from conditioners.columns import Coded
from conditioners.table import RowSorter
from demandops.core.limits import InputLimits


@dataclass(frozen=True)
class Context:
    stores: pd.DataFrame | None = None  # conditioned stores: store_id, region, zip_code, ...
    products: pd.DataFrame | None = None  # conditioned products: product_id, pack_size, ...
    regions: frozenset[str] | None = None  # known region ids
    region: str | None = None  # the region partition being conditioned, if any
    as_of: pd.Timestamp | None = None  # actuals dated after this day are `future_date`
    limits: InputLimits = field(default_factory=InputLimits)  # what a raw file may hold

    def pack_sizes(self) -> pd.Series:
        if self.products is None:
            return pd.Series(dtype=float)
        return self.products.set_index("product_id")["pack_size"].astype(float)

    def store_ids(self) -> set[str] | None:
        """Stores a row may name: those of the partition's region, or all; None: no check."""
        if self.stores is None:
            return None
        stores = self.stores
        if self.region is not None:
            stores = stores[stores["region"] == self.region]
        return set(stores["store_id"])

    def product_ids(self) -> set[str] | None:
        return None if self.products is None else set(self.products["product_id"])


def reject_unknown(rows: RowSorter, ids: Coded, known: set[str] | None, reason: str) -> None:
    """Reject rows whose identifier is not in `known` (no check when `known` is None)."""
    if known is not None:
        rows.reject_values(ids, (~ids.isin(known), reason, ""))
