"""The feature table: vectorised windows against a naive loop, the panel, and no leakage."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd
import pytest

from demandops.core.lake import Lake
from demandops.core.settings import DEFAULT_CONFIG_DIR, load_settings
from demandops.pipeline.steps import (
    Reference,
    RegionInputs,
    condition_reference,
    condition_region,
    features_for_region,
    read_features,
    read_table,
)
from demandops.sample.data import SampleSpec, generate
from ml.exogenous import add_exogenous_features
from ml.features import (
    BASELINE_COLUMNS,
    LAGS,
    MIN_HISTORY_WEEKS,
    NUMERIC_FEATURES,
    ROLLING_WINDOWS,
    _shipped_features,
    build_features,
    build_panel,
    lagged_window_mean,
)

SPEC = SampleSpec(products=4, weeks=70, store_scale=0.5)
REGION = "pnw"
# the Sunday ending the last week of history: later actuals are quarantined as future_date
AS_OF = pd.Timestamp(SPEC.start) + pd.Timedelta(weeks=SPEC.weeks, days=-1)
BASELINE_WINDOW = 13
HISTORY_FEATURES = [
    *(f"log_lag_{k}" for k in LAGS),
    *(f"log_roll_mean_{w}" for w in ROLLING_WINDOWS),
    "log_same_week_last_year",
    *BASELINE_COLUMNS,
]
KEY = ["store_id", "product_id", "week_start"]


# -- lagged_window_mean ----------------------------------------------------------------------


def _naive_window_mean(units: np.ndarray, lag: int, window: int) -> np.ndarray:
    out = np.full(units.shape, np.nan)
    for i in range(units.shape[0]):
        for t in range(units.shape[1]):
            values = [
                units[i, s]
                for s in range(t - lag - window + 1, t - lag + 1)
                if 0 <= s < units.shape[1] and not np.isnan(units[i, s])
            ]
            if values:
                out[i, t] = sum(values) / len(values)
    return out


@pytest.fixture(scope="module")
def random_units() -> np.ndarray:
    rng = np.random.default_rng(12345)
    units = rng.poisson(6.0, size=(5, 24)).astype(float)
    units[rng.random(units.shape) < 0.1] = np.nan  # scattered missing weeks
    units[:, -4:] = np.nan  # the weeks to forecast
    units[2, :] = np.nan  # a series with no data at all
    return units


@pytest.mark.parametrize(
    ("lag", "window"),
    [
        (0, 1),
        (1, 1),
        (4, 1),
        (24, 1),
        (30, 1),
        (4, 4),
        (2, 13),
        (0, 52),
        (7, 3),
        (10, 10),
        (23, 2),
        (30, 5),
    ],
)
def test_lagged_window_mean_matches_a_naive_loop(
    random_units: np.ndarray, lag: int, window: int
) -> None:
    got = lagged_window_mean(random_units, lag, window)
    want = _naive_window_mean(random_units, lag, window)
    assert got.shape == random_units.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


def test_a_one_week_window_is_the_value_lag_weeks_earlier_exactly() -> None:
    units = np.array([[0.1, 0.7, np.nan, 1e-9, 3.3], [2.5, np.nan, 0.2, 0.3, 1e12]])
    got = lagged_window_mean(units, 2, 1)
    np.testing.assert_array_equal(got[:, 2:], units[:, :3])
    assert np.isnan(got[:, :2]).all()


def test_lagged_window_mean_is_nan_before_any_data_and_does_not_change_its_input() -> None:
    units = np.array([[1.0, 2.0, 3.0, 4.0, np.nan]])
    before = units.copy()
    got = lagged_window_mean(units, 2, 2)
    # week t averages weeks t-3 .. t-2: none, none, [1], [1, 2], [2, 3]
    np.testing.assert_allclose(got, [[np.nan, np.nan, 1.0, 1.5, 2.5]], equal_nan=True)
    np.testing.assert_array_equal(units, before)


# -- build_panel ---------------------------------------------------------------------------


def _weeks(*index: int) -> list[pd.Timestamp]:
    return [pd.Timestamp("2018-01-01") + pd.Timedelta(weeks=i) for i in index]


def _hand_shipments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "store_id": ["B", "A", "A", "A"],
            "product_id": ["P1", "P1", "P1", "P2"],
            "week_start": _weeks(1, 0, 2, 3),
            "units": [4, 5, 3, 1],
        }
    )


def test_build_panel_fills_absent_history_with_zero_and_the_future_with_nan() -> None:
    panel = build_panel(_hand_shipments(), _weeks(3)[0], horizon=2)
    assert panel.keys.to_dict("list") == {
        "store_id": ["A", "A", "B"],
        "product_id": ["P1", "P2", "P1"],
    }
    assert list(panel.weeks) == _weeks(0, 1, 2, 3, 4, 5)
    assert panel.n_history == 4
    nan = np.nan
    expected = np.array(
        [
            [5.0, 0.0, 3.0, 0.0, nan, nan],
            [0.0, 0.0, 0.0, 1.0, nan, nan],
            [0.0, 4.0, 0.0, 0.0, nan, nan],
        ]
    )
    np.testing.assert_array_equal(panel.units, expected)


def test_build_panel_counts_quiet_weeks_up_to_last_week_as_history() -> None:
    # nothing shipped in week 4, but it is the last observed week: it is history with 0 units
    panel = build_panel(_hand_shipments(), _weeks(4)[0], horizon=3)
    assert panel.n_history == 5
    assert len(panel.weeks) == 8
    assert panel.weeks[panel.n_history - 1] == _weeks(4)[0]
    assert (panel.units[:, 4] == 0).all()
    assert np.isnan(panel.units[:, 5:]).all()
    assert not np.isnan(panel.units[:, :5]).any()


# -- the feature table from sample data ----------------------------------------------------


@dataclass(frozen=True)
class Frames:
    """The conditioned feeds the feature table is built from (as in steps.features_for_region)."""

    shipments: pd.DataFrame
    promotions: pd.DataFrame
    stores: pd.DataFrame
    products: pd.DataFrame
    shoppers: pd.DataFrame
    weather: pd.DataFrame
    events: pd.DataFrame
    returns: pd.DataFrame


@dataclass(frozen=True)
class Conditioned:
    lake: Lake
    ref: Reference
    inputs: RegionInputs


@pytest.fixture(scope="module")
def conditioned(tmp_path_factory: pytest.TempPathFactory) -> Conditioned:
    """One region's sample raw data through the real conditioning steps."""
    lake = Lake(str(tmp_path_factory.mktemp("features") / "lake"))
    generate(lake, load_settings(DEFAULT_CONFIG_DIR, env="dev").select_regions([REGION]), SPEC)
    ref = condition_reference(lake, [REGION], as_of=AS_OF)
    return Conditioned(lake, ref, condition_region(lake, REGION, ref, horizon=4))


@pytest.fixture(scope="module")
def frames(conditioned: Conditioned) -> Frames:
    """The conditioned feeds, read back typed by their schemas."""
    lake, ref, inputs = conditioned.lake, conditioned.ref, conditioned.inputs
    # the sample's dirt was quarantined, not fed to the features
    assert inputs.shipments.manifest["rows_rejected"] > 0
    datasets = {**ref.datasets(), **inputs.datasets()}
    return Frames(
        **{f.name: read_table(lake, datasets[f.name], f"{f.name}.csv") for f in fields(Frames)}
    )


def _features(frames: Frames, shipments: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The feature table as the batch builds it: history features, then the exogenous ones."""
    panel = build_panel(shipments, frames.shipments["week_start"].max(), horizon)
    table = build_features(
        panel, frames.stores, frames.products, frames.promotions, horizon, BASELINE_WINDOW
    )
    table, _ = add_exogenous_features(
        table,
        frames.stores,
        frames.shoppers,
        frames.weather,
        frames.events,
        frames.returns,
        horizon,
    )
    return table


def test_the_feature_table_here_is_the_one_the_batch_writes(
    conditioned: Conditioned, frames: Frames
) -> None:
    cfg = load_settings(DEFAULT_CONFIG_DIR, env="dev").pipeline
    assert cfg.baseline_window_weeks == BASELINE_WINDOW
    c = conditioned
    written = features_for_region(c.lake, REGION, c.ref, c.inputs, cfg)
    table = _features(frames, frames.shipments, cfg.horizon_weeks)
    pd.testing.assert_frame_equal(
        read_features(c.lake, written), table, check_dtype=False, check_index_type=False
    )


def test_feature_table_has_one_row_per_series_and_usable_week(frames: Frames) -> None:
    horizon = 4
    feats = _features(frames, frames.shipments, horizon)
    assert not feats.duplicated(KEY).any()
    n_series = len(frames.shipments[["store_id", "product_id"]].drop_duplicates())
    first = frames.shipments["week_start"].min()
    # a row needs MIN_HISTORY_WEEKS weeks at or before t - H
    first_usable = first + pd.Timedelta(weeks=MIN_HISTORY_WEEKS - 1 + horizon)
    assert feats["week_start"].min() == first_usable
    n_weeks = SPEC.weeks + horizon - (MIN_HISTORY_WEEKS - 1 + horizon)
    assert len(feats) == n_series * n_weeks
    assert set(feats["region"]) == {REGION}
    assert feats["store_format"].isin(["large", "small"]).all()


def test_history_units_match_the_shipments_with_absent_weeks_as_zero(frames: Frames) -> None:
    feats = _features(frames, frames.shipments, 4)
    history = feats[~feats["is_future"]]
    merged = history[[*KEY, "units"]].merge(
        frames.shipments, on=KEY, how="left", suffixes=("", "_shipped")
    )
    assert (merged["units"] == merged["units_shipped"].fillna(0)).all()
    assert (merged["units_shipped"].isna()).any()  # some weeks really were filled with 0


def test_lag_features_look_back_exactly_h_weeks(frames: Frames) -> None:
    horizon = 3
    feats = _features(frames, frames.shipments, horizon).set_index(KEY).sort_index()
    earlier = feats.reset_index()
    earlier["week_start"] = earlier["week_start"] + pd.Timedelta(weeks=horizon)
    joined = feats.join(earlier.set_index(KEY)["units"].rename("units_h_ago"), how="inner")
    assert len(joined) > 100
    np.testing.assert_allclose(joined["log_lag_0"], np.log1p(joined["units_h_ago"]))


def test_series_level_is_the_mean_log_of_every_week_up_to_t_minus_h(frames: Frames) -> None:
    horizon = 3
    feats = _features(frames, frames.shipments, horizon)
    panel = build_panel(frames.shipments, frames.shipments["week_start"].max(), horizon)
    row = feats[~feats["is_future"]].iloc[-1]
    series = panel.keys.index[
        (panel.keys["store_id"] == row["store_id"])
        & (panel.keys["product_id"] == row["product_id"])
    ][0]
    t = panel.weeks.get_loc(row["week_start"])
    assert isinstance(t, int)  # the weeks are unique
    expected = np.log1p(panel.units[series, : t - horizon + 1]).mean()
    assert row["log_level"] == pytest.approx(expected)


def test_product_season_pools_the_products_stores_from_weeks_up_to_t_minus_h(
    frames: Frames,
) -> None:
    """Same season of earlier years (±2 weeks, outer two at half weight) over the yearly mean."""
    horizon = 4
    feats = _features(frames, frames.shipments, horizon)
    panel = build_panel(frames.shipments, frames.shipments["week_start"].max(), horizon)
    row = feats[~feats["is_future"]].iloc[-1]
    t = panel.weeks.get_loc(row["week_start"])
    assert isinstance(t, int)  # the weeks are unique
    weights = {-2: 0.5, -1: 1.0, 0: 1.0, 1: 1.0, 2: 0.5}
    season, yearly = [], []
    for s in panel.keys.index[panel.keys["product_id"] == row["product_id"]]:
        units = panel.units[s]
        same = {
            o: [units[t - 52 * k - o] for k in range(1, 4) if t - 52 * k - o >= 0] for o in weights
        }
        season.append(sum(w * np.mean(same[o]) for o, w in weights.items()) / 4.0)
        yearly.append(units[max(0, t - horizon - 51) : t - horizon + 1].mean())
    expected = np.log1p(np.mean(season)) - np.log1p(np.mean(yearly))
    assert row["log_product_season"] == pytest.approx(expected)
    a_year_on = feats["week_start"] >= panel.weeks[52 + 2]  # every offset has an earlier year
    assert (feats.loc[a_year_on, "log_product_season"] != 0).all()
    assert (feats.loc[feats["week_start"] < panel.weeks[52 - 2], "log_product_season"] == 0).all()


@pytest.mark.parametrize("horizon", [1, 3, 4])
def test_shipped_features_match_a_plain_loop(random_units: np.ndarray, horizon: int) -> None:
    """Share of shipping weeks at the same point of the two-week cycle (13 cycles, lags ≥ H);
    mean log1p over the weeks that shipped."""
    units = random_units.copy()
    units[0, ::2] = 0.0  # delivered every other week
    units[3, :10] = 0.0  # nothing shipped at first
    got = _shipped_features(units, horizon)
    first = horizon + horizon % 2  # the smallest even lag ≥ H
    for i in range(units.shape[0]):
        for t in range(units.shape[1]):
            same = [units[i, t - first - 2 * k] for k in range(13) if t - first - 2 * k >= 0]
            known = [u for u in same if not np.isnan(u)]
            share = np.mean([u > 0 for u in known]) if known else 1.0
            assert got["cycle_ship_share"][i, t] == pytest.approx(share), (i, t)
            end = max(0, t - horizon + 1)
            for name, start in (("log_level_shipped", 0), ("log_level_shipped_52w", end - 52)):
                shipped = [np.log1p(u) for u in units[i, max(0, start) : end] if u > 0]
                level = np.mean(shipped) if shipped else np.nan
                assert got[name][i, t] == pytest.approx(level, nan_ok=True), (name, i, t)
            shipped = [np.log1p(u) for u in units[i, :end] if u > 0]
            spread = np.var(shipped) if shipped else 0.0
            got_spread = got["log_var_shipped"][i, t]
            assert got_spread == pytest.approx(spread, abs=1e-9), (i, t)
    assert set(np.unique(got["cycle_ship_share"][0, 20:])) == {0.0, 1.0}


def test_a_slow_movers_delivery_weeks_have_a_ship_share_near_one(frames: Frames) -> None:
    feats = _features(frames, frames.shipments, 4)
    history = feats[~feats["is_future"] & (feats["week_start"] >= feats["week_start"].min())]
    shipped = history["units"] > 0
    share = history["cycle_ship_share"]
    assert share[shipped].mean() > 0.9  # slow movers in their delivery weeks, fast movers
    slow = history["product_id"].isin(["P002", "P004"])  # every other product is slow
    assert share[slow & ~shipped].mean() < 0.1  # a slow mover's off weeks
    level = history.loc[shipped, ["log_level", "log_level_shipped"]]
    assert (level["log_level_shipped"] >= level["log_level"] - 1e-12).all()


def test_shipped_features_do_not_see_weeks_after_t_minus_h(frames: Frames) -> None:
    """A slow mover that stops shipping at t0: its shipped features move from t0 + H, not before."""
    horizon, ship = 4, frames.shipments
    t0 = ship["week_start"].min() + pd.Timedelta(weeks=40)
    series = (ship["store_id"] == ship["store_id"].iloc[0]) & (ship["product_id"] == "P002")
    stopped = ship[~(series & (ship["week_start"] >= t0))]
    columns = ["cycle_ship_share", "log_level_shipped", "log_level_shipped_52w", "log_var_shipped"]
    before = _features(frames, ship, horizon).set_index(KEY).sort_index()[columns]
    after = _features(frames, stopped, horizon).set_index(KEY).sort_index()[columns]
    weeks = before.index.get_level_values("week_start")
    cutoff = t0 + pd.Timedelta(weeks=horizon)
    pd.testing.assert_frame_equal(before[weeks < cutoff], after[weeks < cutoff])
    own = (ship["store_id"].iloc[0], "P002")
    later = before.loc[own].index >= cutoff + pd.Timedelta(weeks=2)
    share_before = before.loc[own, "cycle_ship_share"][later]
    share_after = after.loc[own, "cycle_ship_share"][later]
    delivery = share_before > 0.5
    assert delivery.sum() >= 5
    assert (share_after[delivery] < share_before[delivery]).all()
    assert (share_after[~delivery] == share_before[~delivery]).all()


def test_future_rows_cover_exactly_the_horizon_with_finite_features(frames: Frames) -> None:
    horizon = 4
    feats = _features(frames, frames.shipments, horizon)
    last_week = frames.shipments["week_start"].max()
    future = feats[feats["is_future"]]
    expected_weeks = [last_week + pd.Timedelta(weeks=h) for h in range(1, horizon + 1)]
    n_series = len(frames.shipments[["store_id", "product_id"]].drop_duplicates())
    assert len(future) == n_series * horizon
    for _, weeks in future.groupby(["store_id", "product_id"])["week_start"]:
        assert sorted(weeks) == expected_weeks
    assert future["units"].isna().all()
    assert np.isfinite(future[[*NUMERIC_FEATURES, *BASELINE_COLUMNS]].to_numpy(dtype=float)).all()
    history = feats[~feats["is_future"]]
    assert history["week_start"].max() == last_week
    assert history["units"].notna().all()
    assert np.isfinite(history[[*NUMERIC_FEATURES, *BASELINE_COLUMNS]].to_numpy(dtype=float)).all()
    assert future["promo"].sum() > 0  # the promotion plan reaches into the coming weeks


@pytest.mark.parametrize(("t0_index", "horizon"), [(15, 4), (40, 1), (60, 4), (50, 2)])
def test_no_leakage_from_week_t0_into_earlier_forecasts(
    frames: Frames, t0_index: int, horizon: int
) -> None:
    """Changing units from week t0 on may not move any feature of a week before t0 + H."""
    ship = frames.shipments
    t0 = ship["week_start"].min() + pd.Timedelta(weeks=t0_index)
    fast = ship.groupby("product_id")["units"].mean().idxmax()
    assert isinstance(fast, str)
    at_t0 = ship[(ship["product_id"] == fast) & (ship["week_start"] == t0)]
    assert len(at_t0) > 0
    store = at_t0["store_id"].iloc[0]
    series = (ship["store_id"] == store) & (ship["product_id"] == fast)
    changed = ship.copy()
    later = series & (ship["week_start"] >= t0)
    changed.loc[later, "units"] = changed.loc[later, "units"] * 3 + 11

    before = _features(frames, ship, horizon).set_index(KEY).sort_index()
    after = _features(frames, changed, horizon).set_index(KEY).sort_index()
    assert before.index.equals(after.index)
    columns = [*NUMERIC_FEATURES, *BASELINE_COLUMNS]

    # the target itself did change from t0 on ...
    weeks = before.index.get_level_values("week_start")
    own = (before.index.get_level_values("store_id") == store) & (
        before.index.get_level_values("product_id") == fast
    )
    same = (before["units"] == after["units"]) | (before["units"].isna() & after["units"].isna())
    shipped_from_t0 = own & (weeks >= t0) & (before["units"] > 0).to_numpy()
    assert shipped_from_t0.sum() >= 2
    assert ((~same).to_numpy() == shipped_from_t0).all()

    # ... but no feature of a week before t0 + H moved
    cutoff = t0 + pd.Timedelta(weeks=horizon)
    pd.testing.assert_frame_equal(
        before.loc[weeks < cutoff, columns], after.loc[weeks < cutoff, columns]
    )
    # no other product's series moved at all; the product's other stores only in the
    # product-level seasonal index, which pools the product's series (and only from t0 + H)
    product = before.index.get_level_values("product_id") == fast
    pd.testing.assert_frame_equal(before.loc[~product, columns], after.loc[~product, columns])
    own_only = [c for c in columns if c != "log_product_season"]
    pd.testing.assert_frame_equal(before.loc[~own, own_only], after.loc[~own, own_only])

    # at t0 + H the change is visible to every window that ends at t0
    row = (store, fast, cutoff)
    for col in ["log_lag_0", *(f"log_roll_mean_{w}" for w in ROLLING_WINDOWS), "hist_avg"]:
        assert after.loc[row, col] > before.loc[row, col], col
    # log_lag_k first sees it k weeks later
    for k in LAGS:
        row_k = (store, fast, cutoff + pd.Timedelta(weeks=k))
        if row_k in before.index:
            assert after.loc[row_k, f"log_lag_{k}"] != before.loc[row_k, f"log_lag_{k}"]
            if k > 0:
                row_k_early = (store, fast, cutoff + pd.Timedelta(weeks=k - 1))
                assert (
                    after.loc[row_k_early, f"log_lag_{k}"]
                    == before.loc[row_k_early, f"log_lag_{k}"]
                )
    # the same week last year first sees it 52 weeks later
    row_52 = (store, fast, t0 + pd.Timedelta(weeks=52))
    if row_52 in before.index:
        assert after.loc[row_52, "same_woy_avg"] != before.loc[row_52, "same_woy_avg"]
        assert (
            after.loc[row_52, "log_same_week_last_year"]
            != before.loc[row_52, "log_same_week_last_year"]
        )


def test_changing_only_the_future_promotion_plan_leaves_history_features(frames: Frames) -> None:
    horizon = 4
    promo = frames.promotions
    last_week = frames.shipments["week_start"].max()
    base = _features(frames, frames.shipments, horizon)
    trimmed = replace(frames, promotions=promo[promo["week_start"] <= last_week])
    without_plan = _features(trimmed, frames.shipments, horizon)
    history = ~base["is_future"]
    columns = [*NUMERIC_FEATURES, *BASELINE_COLUMNS]
    pd.testing.assert_frame_equal(base.loc[history, columns], without_plan.loc[history, columns])
    assert base.loc[~history, "promo"].sum() > 0
    assert without_plan.loc[~history, "promo"].sum() == 0
