"""Product catalogue: category, pack size and regular price per product (no rules beyond the
schema's types and bounds)."""

from __future__ import annotations

import pandas as pd

from conditioners.context import Context
from conditioners.table import RowSorter


def rules(frame: pd.DataFrame, rows: RowSorter, ctx: Context) -> None:
    """Products are checked by the schema alone."""
