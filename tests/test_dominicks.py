"""Dominick's orange juice data (../shared/data/dominicks_oj, read in place) through its
profiles: counts as its README gives them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conditioners.context import Context
from conditioners.engine import condition
from conditioners.profile import load_profiles
from tests.sources import DOMINICKS, ROOT

PROFILES = load_profiles(ROOT / "config" / "sources" / "dominicks")
YX = DOMINICKS / "yx.csv.gz"


def test_shipments_913_series_106139_rows_and_monday_weeks() -> None:
    data = YX.read_bytes()
    result = condition(data, "dominicks_oj/yx.csv.gz", PROFILES["dominicks_shipments"], Context())
    frame = result.frame
    assert result.rows_in == len(frame) == 106_139 and result.rejects.empty
    assert frame.groupby(["store_id", "product_id"]).ngroups == 913
    assert frame["store_id"].nunique() == 83 and frame["product_id"].nunique() == 11
    assert (frame["week_start"].dt.day_of_week == 0).all()
    # week 40 starts Thursday 1990-06-14: labelled by the Monday three days before
    assert frame["week_start"].min() == pd.Timestamp("1990-06-11")
    assert frame["week_start"].max() == pd.Timestamp("1990-06-11") + pd.Timedelta(weeks=120)
    raw = pd.read_csv(YX).sort_values(["store", "brand", "week"])
    first = raw.iloc[0]
    got = frame[(frame["store_id"] == str(int(first["store"]))) & (frame["product_id"] == "1")]
    assert got["units"].iloc[0] == round(np.exp(first["logmove"]))


def test_store_demographics_and_promotion_events() -> None:
    demo = condition(
        (DOMINICKS / "storedemo.csv").read_bytes(),
        "dominicks_oj/storedemo.csv",
        PROFILES["dominicks_shoppers"],
        Context(),
    )
    assert len(demo.frame) == 83 and demo.rejects.empty
    assert demo.frame["median_income"].between(10_000, 200_000).all()
    assert demo.frame["population"].isna().all()  # not in this data set: kept missing
    data = YX.read_bytes()
    for kind in ("deal", "feature"):
        events = condition(data, "yx.csv.gz", PROFILES[f"dominicks_events_{kind}"], Context())
        assert len(events.frame) == 106_139 and events.rejects.empty
        assert set(events.frame["scope"]) == {"store"} and set(events.frame["kind"]) == {kind}
        assert ((events.frame["end_date"] - events.frame["start_date"]).dt.days == 6).all()
        assert events.frame["value"].between(0, 1).all() and events.frame["value"].max() == 1


def test_prices_read_each_rows_own_brand_column() -> None:
    data = YX.read_bytes()
    prices = condition(data, "yx.csv.gz", PROFILES["dominicks_events_price"], Context())
    assert len(prices.frame) == 106_139 and prices.rejects.empty
    raw = pd.read_csv(YX)
    own = raw.to_numpy()[
        np.arange(len(raw)), raw.columns.get_indexer(pd.Index("price" + raw["brand"].astype(str)))
    ]
    got = prices.frame.set_index(["scope_id", "product_id", "start_date"])["value"]
    want = pd.Series(
        own.astype(float),
        index=pd.MultiIndex.from_arrays(
            [raw["store"].astype(str), raw["brand"].astype(str),
             pd.Timestamp("1989-09-11") + pd.to_timedelta(7 * (raw["week"] - 1), unit="D")]
        ),
    )  # fmt: skip
    np.testing.assert_allclose(got.reindex(want.index).to_numpy(), want.to_numpy())
