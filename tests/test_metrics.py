"""Forecast metrics against hand-computed values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.metrics import (
    METRICS,
    REPORTED,
    bias,
    mape,
    metric_sums,
    metrics_by,
    metrics_from_sums,
    rmse,
    rmse0,
    score_all,
    wape,
)

# Mixed example with zero actuals.
ACTUAL = [0, 2, 4, 10, 0]
FORECAST = [1, 3, 2, 12, 0]
# err = f - a = [1, 1, -2, 2, 0]
MIXED = {
    "n_rows": 5,
    # rows with a > 0: |1|/2 = 0.5, |-2|/4 = 0.5, |2|/10 = 0.2 -> (0.5 + 0.5 + 0.2) / 3 = 0.4
    "mape": 0.4,
    # sum |err| = 1 + 1 + 2 + 2 + 0 = 6; sum a = 16 -> 6 / 16 = 0.375
    "wape": 0.375,
    # sum err^2 = 1 + 1 + 4 + 4 + 0 = 10 -> sqrt(10 / 5) = sqrt(2)
    "rmse": math.sqrt(2),
    # rows with a == 0 (first and last): err^2 = 1, 0 -> sqrt(1 / 2)
    "rmse0": math.sqrt(0.5),
    # sum err = 1 + 1 - 2 + 2 + 0 = 2 -> 2 / 16 = 0.125
    "bias": 0.125,
}

# Nothing sold: actual all 0.
ZERO_ACTUAL = [0, 0, 0]
ZERO_FORECAST = [1, 2, 2]
# err = [1, 2, 2]; sum err^2 = 1 + 4 + 4 = 9
ALL_ZERO = {
    "n_rows": 3,
    "mape": math.nan,  # no row with a > 0
    "wape": math.nan,  # sum a = 0
    "rmse": math.sqrt(3),  # sqrt(9 / 3)
    "rmse0": math.sqrt(3),  # every row has a == 0, so the same as rmse
    "bias": math.nan,  # sum a = 0
}

FUNCTIONS = [mape, wape, rmse, rmse0, bias]


def assert_scores(got: Mapping[str, Any], expected: Mapping[str, float]) -> None:
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, nan_ok=True), name


def test_metric_names() -> None:
    assert METRICS == ("mape", "wape", "rmse", "rmse0", "bias")
    assert [f.__name__ for f in FUNCTIONS] == list(METRICS)


def test_mixed_example_with_zeros() -> None:
    assert_scores(score_all(ACTUAL, FORECAST), MIXED)
    for function in FUNCTIONS:
        assert function(ACTUAL, FORECAST) == pytest.approx(MIXED[function.__name__])


@pytest.mark.parametrize(
    "convert",
    [list, np.array, pd.Series, lambda v: pd.Series(v, dtype="Int64")],
    ids=["list", "ndarray", "series", "nullable-int"],
)
def test_input_types_give_the_same_scores(convert) -> None:
    assert_scores(score_all(convert(ACTUAL), convert(FORECAST)), MIXED)


def test_all_zero_actuals() -> None:
    scores = score_all(ZERO_ACTUAL, ZERO_FORECAST)
    assert_scores(scores, ALL_ZERO)
    assert math.isnan(scores["mape"])
    assert math.isnan(scores["wape"])
    assert scores["rmse0"] == scores["rmse"]


def test_empty_input_is_all_nan() -> None:
    scores = score_all([], [])
    assert scores["n_rows"] == 0
    assert all(math.isnan(scores[name]) for name in METRICS)


def test_perfect_forecast_scores_zero() -> None:
    actual = [0, 3, 5, 0]
    scores = score_all(actual, list(actual))
    assert scores == {"n_rows": 4, **dict.fromkeys(METRICS, 0.0)}


@pytest.mark.parametrize("function", [*FUNCTIONS, score_all])
def test_nan_input_raises(function) -> None:
    with pytest.raises(ValueError, match=r"actual has 1 NaN"):
        function([1.0, np.nan, 2.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"forecast has 2 NaN"):
        function(pd.Series([1.0, 1.0, 2.0]), pd.Series([None, 1.0, None]))
    with pytest.raises(ValueError, match=r"actual has 1 NaN"):
        function(pd.Series([1, None], dtype="Int64"), [1.0, 1.0])


@pytest.mark.parametrize("function", [*FUNCTIONS, score_all])
def test_length_mismatch_raises(function) -> None:
    with pytest.raises(ValueError, match=r"actual has 3 rows but forecast has 2"):
        function([1, 2, 3], [1, 2])


def test_two_dimensional_input_raises() -> None:
    with pytest.raises(ValueError, match=r"1-D"):
        score_all(np.ones((1, 2)), np.ones((1, 2)))


def test_forecasting_low_lowers_mape_but_wape_catches_it() -> None:
    # Four slow sellers (1 unit each) and one fast seller (96): 100 units in all.
    actual = [1, 1, 1, 1, 96]
    # Unbiased but noisy: err = [2, 2, 2, 2, -8]
    honest = score_all(actual, [3, 3, 3, 3, 88])
    # mape = (2/1 * 4 + 8/96) / 5 = (8 + 1/12) / 5 = 97/60 ~ 1.617
    # wape = (2 * 4 + 8) / 100 = 0.16; bias = (8 - 8) / 100 = 0
    assert honest["mape"] == pytest.approx(97 / 60)
    assert honest["wape"] == pytest.approx(0.16)
    assert honest["bias"] == pytest.approx(0.0)

    # Halve everything: err = [-0.5] * 4 + [-48]
    halved = score_all(actual, [0.5, 0.5, 0.5, 0.5, 48])
    # mape = 0.5 on every row = 0.5; wape = (0.5 * 4 + 48) / 100 = 0.5; bias = -50 / 100
    assert halved["mape"] == pytest.approx(0.5)
    assert halved["wape"] == pytest.approx(0.5)
    assert halved["bias"] == pytest.approx(-0.5)

    # Forecast nothing: every row misses 100 % -> mape 1.0; wape = 100 / 100 = 1.0; bias -1
    nothing = score_all(actual, [0, 0, 0, 0, 0])
    assert nothing["mape"] == pytest.approx(1.0)
    assert nothing["wape"] == pytest.approx(1.0)
    assert nothing["bias"] == pytest.approx(-1.0)

    # MAPE ranks the low forecasts best; WAPE ranks them in the right order, worst last.
    assert halved["mape"] < nothing["mape"] < honest["mape"]
    assert honest["wape"] < halved["wape"] < nothing["wape"]


def two_store_frame() -> pd.DataFrame:
    """Store s1 is the mixed example, store s2 the all-zero one, rows interleaved."""
    rows = [
        ("s2", ZERO_ACTUAL[0], ZERO_FORECAST[0]),
        *[("s1", a, f) for a, f in zip(ACTUAL[:3], FORECAST[:3], strict=True)],
        ("s2", ZERO_ACTUAL[1], ZERO_FORECAST[1]),
        *[("s1", a, f) for a, f in zip(ACTUAL[3:], FORECAST[3:], strict=True)],
        ("s2", ZERO_ACTUAL[2], ZERO_FORECAST[2]),
    ]
    return pd.DataFrame(rows, columns=["store", "units", "forecast"])


def test_metrics_by_two_groups() -> None:
    frame = two_store_frame()
    out = metrics_by(frame, ["store"])
    assert list(out.columns) == ["store", "n_rows", *REPORTED]
    assert out["coverage80"].isna().all()  # no interval columns
    assert out["store"].tolist() == ["s1", "s2"]
    for expected, (_, row) in zip([MIXED, ALL_ZERO], out.iterrows(), strict=True):
        group = frame[frame["store"] == row["store"]]
        got = {name: row[name] for name in ["n_rows", *METRICS]}
        assert_scores(got, score_all(group["units"], group["forecast"]))
        assert_scores(got, expected)


def test_metrics_by_skips_empty_groups() -> None:
    frame = two_store_frame()
    frame["store"] = pd.Categorical(frame["store"], categories=["s0", "s1", "s2", "s3"])
    out = metrics_by(frame, ["store"])
    assert out["store"].tolist() == ["s1", "s2"]
    assert out["n_rows"].tolist() == [5, 3]


def test_metrics_by_several_columns() -> None:
    frame = two_store_frame().assign(region="east")
    out = metrics_by(frame, ["region", "store"])
    assert list(out.columns) == ["region", "store", "n_rows", *REPORTED]
    assert out[["region", "store"]].values.tolist() == [["east", "s1"], ["east", "s2"]]
    assert out["wape"].tolist()[0] == pytest.approx(MIXED["wape"])


def test_metrics_by_keeps_rows_with_a_missing_key() -> None:
    frame = two_store_frame()
    frame.loc[0, "store"] = None
    out = metrics_by(frame, ["store"])
    assert out["n_rows"].tolist() == [5, 2, 1]
    assert out["n_rows"].sum() == len(frame)


def test_metric_sums_of_parts_give_the_metrics_of_the_whole() -> None:
    """How the batch's overall metrics stream over regions: no concatenated holdout."""
    frame = two_store_frame().assign(p10=0.0, p90=3.0)
    parts = [metric_sums(frame.iloc[:3], ["store"]), metric_sums(frame.iloc[3:], ["store"])]
    summed = pd.concat(parts).groupby("store", sort=True).sum().reset_index()
    streamed = metrics_from_sums(summed, ["store"])
    pd.testing.assert_frame_equal(streamed, metrics_by(frame, ["store"]))


def test_metrics_by_overall() -> None:
    frame = two_store_frame().rename(columns={"units": "y", "forecast": "yhat"})
    out = metrics_by(frame, [], actual="y", forecast="yhat")
    assert list(out.columns) == ["n_rows", *REPORTED]
    assert len(out) == 1
    got = {name: out.loc[0, name] for name in ["n_rows", *METRICS]}
    assert_scores(got, score_all(frame["y"], frame["yhat"]))
    # err = [1, 1, -2, 2, 0] (s1) + [1, 2, 2] (s2); sum a = 16
    expected = {
        "n_rows": 8,
        "mape": 0.4,  # s2 has no row with a > 0, so s1's rows only
        "wape": 11 / 16,  # (6 + 5) / 16
        "rmse": math.sqrt(19 / 8),  # (10 + 9) / 8
        "rmse0": math.sqrt(2),  # a == 0 rows: err^2 = 1, 0, 1, 4, 4 -> 10 / 5
        "bias": 7 / 16,  # (2 + 5) / 16
    }
    assert_scores(got, expected)


def test_metrics_by_empty_frame() -> None:
    frame = two_store_frame().iloc[:0]
    assert metrics_by(frame, ["store"]).empty
    overall = metrics_by(frame, [])
    assert overall["n_rows"].tolist() == [0]
    assert overall[list(METRICS)].isna().all(axis=None)


def test_metrics_by_nan_raises() -> None:
    frame = two_store_frame()
    frame.loc[2, "forecast"] = np.nan
    with pytest.raises(ValueError, match=r"forecast has 1 NaN"):
        metrics_by(frame, ["store"])


def test_metrics_by_measures_the_coverage_of_the_80_percent_interval() -> None:
    frame = two_store_frame()
    frame["p10"] = frame["forecast"] - 1.0
    frame["p90"] = frame["forecast"] + 1.0
    out = metrics_by(frame, ["store"]).set_index("store")
    # s1: |err| = 1, 1, 2, 2, 0 -> 3 of 5 within ±1; s2: 1, 2, 2 -> 1 of 3
    assert out.loc["s1", "coverage80"] == pytest.approx(3 / 5)
    assert out.loc["s2", "coverage80"] == pytest.approx(1 / 3)
    assert metrics_by(frame, [])["coverage80"].tolist() == [pytest.approx(4 / 8)]
