"""Promotion plan: promoted price per store × product × week, history and the coming weeks."""

from __future__ import annotations

from conditioners.columns import Frame
from conditioners.context import Context
from conditioners.table import RowSorter
from conditioners.weekly import weekly_rules


def rules(frame: Frame, rows: RowSorter, ctx: Context) -> None:
    weekly_rules(frame, rows, ctx, actuals=False)
