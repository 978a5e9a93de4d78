"""Product catalogue: category, pack size and regular price per product (no rules beyond the
schema's types and bounds)."""

from __future__ import annotations

from conditioners.columns import Frame
from conditioners.context import Context
from conditioners.table import RowSorter


def rules(frame: Frame, rows: RowSorter, ctx: Context) -> None:
    """Products are checked by the schema alone."""
