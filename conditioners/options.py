"""Profile options for exports of other shapes: rows aggregated into weeks (see docs/sources.md).

Kept apart from conditioners/profile.py so that the profile schema stays one page: these are the
declarative pieces the engine's steps in conditioners/transforms.py and conditioners/aggregate.py
read.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
)  # fmt: skip
How = Literal["sum", "mean", "max", "min", "first", "last"]
TEXT_HOW: frozenset[str] = frozenset({"first", "last"})
Negative = Literal["quarantine", "clip", "returns"]
Rounding = Literal["nearest", "down", "up"]


class Aggregate(BaseModel):
    """Rows of the same key (days, transactions) folded into one row per key.

    Weekly feeds: each date is first moved to its week (weeks begin on `week_start`), labelled
    by the Monday inside that week; rows of a week that begins before the file's first day or
    ends after its last are rejected as `partial_week` (unless `partial_weeks: keep`).
    `columns` says per non-key column how its values combine (in raw order for first and last);
    text columns default to `last`, numbers must be named.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    week_start: Weekday | None = None  # weekly feeds: the first day of a week (default monday)
    partial_weeks: Literal["reject", "keep"] = "reject"  # weeks the file covers only in part
    columns: dict[str, How] = {}
