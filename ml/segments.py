"""Segments: region × store format × product velocity. Every series lands in exactly one.

Velocity is a product's mean units per store-week over the training window, across the
stores of the region that carry it (zero weeks included): at or above the threshold the
product is "fast", below it "slow".
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

VELOCITIES = ("fast", "slow")
SEGMENT_COLUMNS = ["region", "store_format", "velocity"]


class Segment(NamedTuple):
    region: str
    store_format: str
    velocity: str

    @property
    def name(self) -> str:
        return ".".join(self)


def product_velocity(history: pd.DataFrame, threshold: float) -> pd.Series:
    """`fast` or `slow` per product_id from the mean units per store-week of `history`."""
    rate = history.groupby("product_id")["units"].mean()
    return rate.ge(threshold).map({True: "fast", False: "slow"}).rename("velocity")


def assign_segments(features: pd.DataFrame, velocity: pd.Series) -> pd.DataFrame:
    """`features` with a `velocity` column; products never seen in training count as slow."""
    out = features.drop(columns="velocity", errors="ignore")
    out["velocity"] = out["product_id"].map(velocity).fillna("slow")
    return out


def segments_of(frame: pd.DataFrame) -> list[Segment]:
    keys = frame[SEGMENT_COLUMNS].drop_duplicates().sort_values(SEGMENT_COLUMNS)
    return [Segment(*row) for row in keys.itertuples(index=False)]
