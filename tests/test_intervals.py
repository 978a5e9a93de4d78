"""Conformal P10/P50/P90 from backtest residuals: the quantiles, the leave-one-window-out
backtest intervals and their coverage, and the intervals on forecast rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import intervals
from ml.metrics import metrics_by
from ml.score import _intervals


def test_offsets_are_the_conformal_order_statistics() -> None:
    residuals = np.array([0.4, -0.3, 0.1, -0.1, 0.0, 0.2, -0.2, 0.3, -0.4])  # n = 9
    # lower: the ⌊10 · 0.1⌋ = 1st smallest; median: the ⌈5⌉th; upper: the ⌈9⌉th
    assert intervals.offsets(residuals) == (-0.4, 0.0, 0.4)
    assert intervals.offsets(np.array([np.nan])) is None


def test_intervals_are_relative_so_volume_does_not_matter() -> None:
    quantiles = (-0.2, 0.0, 0.3)
    small, large = (
        intervals.apply(np.array([99.0]), quantiles),
        intervals.apply(np.array([99_999.0]), quantiles),
    )
    np.testing.assert_allclose(small[0] + 1, 100 * np.exp(quantiles))
    np.testing.assert_allclose((large[0] + 1) / 1e5, np.exp(quantiles))
    assert (intervals.apply(np.array([0.0]), (-1.0, 0.0, 1.0)) >= 0).all()


def _holdout(n_series: int, origins: int, sigma: float, level: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = n_series * origins * 4
    forecast = level * np.exp(rng.normal(0, 0.5, rows))
    return pd.DataFrame(
        {
            "region": "r",
            "store_format": "large",
            "velocity": "fast",
            "model": "ensemble",
            "origin": np.repeat(np.arange(origins), n_series * 4),
            "units": np.round(forecast * np.exp(rng.normal(0, sigma, rows))),
            "forecast": forecast,
        }
    )


@pytest.mark.parametrize("level", [20.0, 100_000.0])
def test_backtest_intervals_cover_about_80_percent_of_rows_they_did_not_see(level: float) -> None:
    holdout = intervals.backtest(_holdout(200, 3, 0.3, level, seed=1))
    assert (holdout["p10"] <= holdout["p50"]).all() and (holdout["p50"] <= holdout["p90"]).all()
    coverage = metrics_by(holdout, ["model"])["coverage80"].iloc[0]
    assert 0.75 <= coverage <= 0.86
    # each origin's interval comes from the other origins' residuals only
    one = intervals.backtest(_holdout(50, 1, 0.3, level, seed=2))
    assert one[list(intervals.COLUMNS)].isna().all(axis=None)


def test_the_table_has_one_row_per_segment_and_model() -> None:
    holdout = pd.concat(
        [
            _holdout(30, 3, 0.1, 50.0, seed=3),
            _holdout(30, 3, 0.6, 50.0, seed=4).assign(model="lasso"),
        ]
    )
    table = intervals.table(holdout).set_index("model")
    assert list(table.index) == ["ensemble", "lasso"]
    width = table["q90"] - table["q10"]
    assert width["lasso"] > 3 * width["ensemble"]  # six times the noise: a wider interval
    assert table["n"].tolist() == [360, 360]


def test_forecast_rows_take_their_segment_and_kind_else_the_kind_else_every_model() -> None:
    holdout = pd.concat(
        [
            _holdout(30, 3, 0.1, 50.0, seed=5),  # r.large.fast, ensemble: narrow
            _holdout(30, 3, 0.6, 50.0, seed=6).assign(model="hist_avg", velocity="slow"),
        ]
    )
    future = pd.DataFrame(
        {
            "region": "r",
            "store_format": ["large", "small", "large"],
            "velocity": ["fast", "fast", "fast"],
            "model": ["ensemble", "baseline", "lasso"],
            "forecast": [100.0, 100.0, 100.0],
        }
    )
    values = _intervals(future, holdout)
    assert np.isfinite(values).all()
    quantiles = intervals.table(holdout).set_index("model")[["q10", "q50", "q90"]]
    expected = intervals.apply(np.array([100.0]), quantiles.loc["ensemble"].to_numpy())
    np.testing.assert_allclose(values[0], expected[0])
    hist = intervals.apply(np.array([100.0]), quantiles.loc["hist_avg"].to_numpy())
    np.testing.assert_allclose(values[1], hist[0])  # the unseen segment: hist_avg's, pooled
    assert values[1, 2] - values[1, 0] > values[2, 2] - values[2, 0] > values[0, 2] - values[0, 0]


def test_without_a_backtest_the_interval_is_unknown() -> None:
    future = pd.DataFrame({"region": ["r"], "store_format": ["large"], "velocity": ["fast"],
                           "model": ["ensemble"], "forecast": [10.0]})  # fmt: skip
    assert np.isnan(_intervals(future, pd.DataFrame())).all()
