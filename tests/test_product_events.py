"""Product-level events (deals, feature ads, prices) as known-ahead features; panels with gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.features import build_panel, lagged_window_mean
from ml.product_events import (
    KEYS,
    add_product_event_features,
    product_event_weeks,
)
from ml.train import MODEL_FEATURES, model_features

MONDAY = pd.Timestamp("2020-01-06")


def _events(rows: list[tuple[str, str, str, str, int, float]]) -> pd.DataFrame:
    """(scope, scope_id, product_id, kind, weeks long, value) starting on MONDAY."""
    return pd.DataFrame(
        {
            "start_date": MONDAY,
            "end_date": [MONDAY + pd.Timedelta(days=7 * n - 1) for *_, n, _ in rows],
            "scope": [r[0] for r in rows],
            "scope_id": [r[1] for r in rows],
            "kind": [r[3] for r in rows],
            "name": [r[3] for r in rows],
            "product_id": [r[2] for r in rows],
            "value": [r[5] for r in rows],
        }
    )


def _frame() -> pd.DataFrame:
    weeks = [MONDAY + pd.Timedelta(weeks=k) for k in range(3)]
    return pd.DataFrame(
        [(s, p, w) for s in ("S1", "S2") for p in ("A", "B") for w in weeks],
        columns=["store_id", "product_id", "week_start"],
    )


def test_each_kind_becomes_a_column_over_the_weeks_it_spans() -> None:
    events = _events(
        [
            ("store", "S1", "A", "deal", 2, 1.0),
            ("store", "S1", "A", "feature", 1, 0.5),
            ("store", "S2", "B", "deal", 1, 1.0),
            ("national", "US", "", "holiday", 1, 1.0),  # not product-level: left out
        ]
    )
    weekly = product_event_weeks(events)
    assert set(weekly.columns) == {
        "store_id",
        "product_id",
        "week_start",
        "event_deal",
        "event_feature",
    }
    out, names = add_product_event_features(_frame(), events)
    assert names == ["event_deal", "event_feature", "event_others_deal", "event_others_feature"]
    s1a = out[(out["store_id"] == "S1") & (out["product_id"] == "A")]
    assert s1a["event_deal"].tolist() == [1.0, 1.0, 0.0]
    assert s1a["event_feature"].tolist() == [0.5, 0.0, 0.0]
    assert out.loc[out["store_id"] == "S2", "event_deal"].sum() == 1.0
    assert len(out) == len(_frame())


def test_prices_give_log_price_and_price_relative_to_the_store_week() -> None:
    events = _events(
        [
            ("store", "S1", "A", "price", 3, 2.0),
            ("store", "S1", "B", "price", 3, 8.0),
        ]
    )
    out, names = add_product_event_features(_frame(), events)
    assert names == [
        "event_price",
        "event_relative_price",
        "event_price_vs_usual",
        "event_price_vs_cheapest_rival",
        "event_cheaper_rivals",
    ]
    s1 = out[out["store_id"] == "S1"].set_index("product_id")
    # log 2 and log 8 around their mean log 4: ∓ log 2
    assert s1.loc[["A"], "event_relative_price"].tolist() == pytest.approx([-np.log(2)] * 3)
    assert s1.loc[["B"], "event_price"].tolist() == pytest.approx([np.log(8)] * 3)
    # store S2 has no prices: the mean log price, and no relative difference
    s2 = out[out["store_id"] == "S2"]
    assert s2["event_price"].tolist() == pytest.approx([np.log(4)] * 6)
    assert (s2["event_relative_price"] == 0).all()


def test_price_against_the_series_usual_price_uses_only_weeks_up_to_t_minus_h() -> None:
    weeks = [MONDAY + pd.Timedelta(weeks=k) for k in range(4)]
    frame = pd.DataFrame({"store_id": "S1", "product_id": "A", "week_start": weeks})
    prices = [1.0, 2.0, 4.0, 8.0]
    events = pd.concat(
        [
            _events([("store", "S1", "A", "price", 1, p)]).assign(
                start_date=w, end_date=w + pd.Timedelta(days=6)
            )
            for w, p in zip(weeks, prices, strict=True)
        ],
        ignore_index=True,
    )
    out, names = add_product_event_features(frame.iloc[::-1], events, horizon=2)
    assert "event_price_vs_usual" in names
    vs_usual = out.set_index("week_start").sort_index()["event_price_vs_usual"]
    log2 = np.log(2)
    # weeks 0 and 1 have no week ≤ t − 2: no deviation; week 2 against week 0, week 3 against 0..1
    assert vs_usual.tolist() == pytest.approx([0.0, 0.0, 2 * log2, 3 * log2 - log2 / 2])
    later = events.copy()
    later.loc[3, "value"] = 100.0  # a different price in the last week moves only that week
    moved = add_product_event_features(frame, later, horizon=2)[0]["event_price_vs_usual"]
    assert moved.iloc[:3].tolist() == pytest.approx(vs_usual.iloc[:3].tolist())


def test_rival_prices_on_the_shelf_match_a_plain_loop() -> None:
    """Rivals: the other products of the category in the store that week."""
    rng = np.random.default_rng(5)
    weeks = [MONDAY + pd.Timedelta(weeks=k) for k in range(4)]
    frame = pd.DataFrame(
        [(s, p, w) for s in ("S1", "S2") for p in "ABCDEF" for w in weeks], columns=KEYS
    )
    category = {p: "juice" if p < "F" else "milk" for p in "ABCDEF"}  # F: no rival
    frame["category"] = frame["product_id"].map(category)
    alone = (frame["store_id"] == "S2") & (frame["week_start"] == MONDAY)
    only_a = alone & (frame["product_id"] == "A")
    priced = frame[((rng.random(len(frame)) > 0.3) & ~alone) | only_a]
    events = _events(
        [("store", s, p, "price", 1, float(rng.choice([1.0, 2.0, 3.0])))  # ties are frequent
         for s, p in priced[KEYS[:2]].to_numpy()]
    )  # fmt: skip
    events["start_date"] = priced["week_start"].to_numpy()
    events["end_date"] = events["start_date"] + pd.Timedelta(days=6)
    out, _ = add_product_event_features(frame, events)  # rows unpriced, one priced alone
    price = {
        (e["scope_id"], e["product_id"], e["start_date"]): np.log(e["value"])
        for e in events.to_dict("records")
    }
    for row in out.itertuples():
        own = price.get((row.store_id, row.product_id, row.week_start))
        rivals = [
            v
            for (s, p, w), v in price.items()
            if (s, w) == (row.store_id, row.week_start)
            and p != row.product_id
            and category[p] == row.category
        ]
        versus = own - min(rivals) if own is not None and rivals else 0.0
        cheaper = sum(v < own for v in rivals) if own is not None else 0
        assert row.event_price_vs_cheapest_rival == pytest.approx(versus)
        assert row.event_cheaper_rivals == cheaper


def test_other_products_events_in_the_store_week_match_a_plain_loop() -> None:
    rng = np.random.default_rng(11)
    frame = _frame().assign(units=rng.integers(1, 50, len(_frame())).astype(float))
    c = frame[frame["product_id"] == "A"].assign(product_id="C")
    frame = pd.concat([frame, c], ignore_index=True)
    rows = frame[rng.random(len(frame)) > 0.4]
    events = _events(
        [("store", s, p, k, 1, float(rng.integers(1, 3))) for s, p in rows[KEYS[:2]].to_numpy()
         for k in ("deal", "feature")]
    )  # fmt: skip
    events["start_date"] = np.repeat(rows["week_start"].to_numpy(), 2)
    events["end_date"] = events["start_date"] + pd.Timedelta(days=6)
    out, names = add_product_event_features(frame, events)
    assert names[-2:] == ["event_others_deal", "event_others_feature"]
    value = {
        (e["scope_id"], e["product_id"], e["start_date"], e["kind"]): e["value"]
        for e in events.to_dict("records")
    }
    for row in out.itertuples():
        for kind in ("deal", "feature"):
            want = sum(
                value.get((row.store_id, p, row.week_start, kind), 0.0)
                for p in ("A", "B", "C")
                if p != row.product_id
            )
            assert getattr(row, f"event_others_{kind}") == want
    # the same week's planned events only: other weeks' events and every week's sales move nothing
    week = MONDAY + pd.Timedelta(weeks=1)
    moved_events = events.assign(value=events["value"].where(events["start_date"] == week, 9.0))
    moved, _ = add_product_event_features(frame.assign(units=0.0), moved_events)
    same = out["week_start"] == week
    others = ["event_others_deal", "event_others_feature"]
    assert moved.loc[same, others].to_numpy() == pytest.approx(out.loc[same, others].to_numpy())


def test_no_product_events_adds_nothing() -> None:
    events = _events([("region", "pnw", "", "festival", 1, 1.0)])
    out, names = add_product_event_features(_frame(), events)
    assert names == [] and list(out.columns) == list(_frame().columns)


def test_event_columns_become_model_features() -> None:
    frame = _frame().assign(event_deal=0.0, event_price=1.0, other=2.0)
    assert model_features(frame) == (*MODEL_FEATURES, "event_deal", "event_price")


def test_panel_with_gaps_keeps_unknown_weeks_out_of_the_means() -> None:
    shipments = pd.DataFrame(
        {
            "store_id": "S1",
            "product_id": "A",
            "week_start": [MONDAY + pd.Timedelta(weeks=k) for k in (0, 1, 3)],
            "units": [10, 20, 40],
        }
    )
    last = MONDAY + pd.Timedelta(weeks=3)
    zero = build_panel(shipments, last, horizon=1)
    gaps = build_panel(shipments, last, horizon=1, absent_is_zero=False)
    assert zero.units[0, :4].tolist() == [10, 20, 0, 40]
    assert np.isnan(gaps.units[0, 2]) and np.isnan(gaps.units[0, 4])
    # mean of weeks 0..3 seen from week 4 (lag 1, window 4): 70/4 with zeros, 70/3 with gaps
    assert lagged_window_mean(zero.units, 1, 4)[0, 4] == pytest.approx(70 / 4)
    assert lagged_window_mean(gaps.units, 1, 4)[0, 4] == pytest.approx(70 / 3)
