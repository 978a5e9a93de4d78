"""Helpers for the conditioning tests: the shipped profiles and small reference contexts."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

from conditioners.context import Context
from conditioners.engine import condition
from conditioners.profile import Profile, load_profiles
from conditioners.table import Conditioned

ROOT = Path(__file__).resolve().parent.parent
DOMINICKS = ROOT.parent / "shared" / "data" / "dominicks_oj"  # beside the clone, as CI has it

STORES = pd.DataFrame(
    {
        "store_id": ["S1", "S2", "T1"],
        "region": ["pnw", "pnw", "tx"],
        "zip_code": ["98101", "98402", "75201"],
        "store_format": ["large", "small", "large"],
        "sqft": [40000, 12000, 50000],
    }
)
PRODUCTS = pd.DataFrame(
    {
        "product_id": ["P1", "P2"],
        "category": ["juice", "dairy"],
        "pack_size": [12, 6],
        "regular_price": [2.5, 3.0],
    }
)
CTX = Context(
    stores=STORES,
    products=PRODUCTS,
    regions=frozenset({"pnw", "tx"}),
    region="pnw",
    as_of=pd.Timestamp("2020-01-05"),
)


@cache
def profiles() -> dict[str, Profile]:
    return load_profiles(ROOT / "config" / "sources")


def run(profile: str, data: bytes, ctx: Context = CTX, file: str = "raw/test") -> Conditioned:
    result = condition(data, file, profiles()[profile], ctx)
    assert result.rows_in == len(result.frame) + len(result.rejects)  # nothing is lost
    return result


def reasons(result: Conditioned) -> dict[int, str]:
    """Rejected line -> reason."""
    return dict(zip(result.rejects["line"], result.rejects["reason"], strict=True))
