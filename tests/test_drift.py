"""Drift statistics against hand-computed values, and the per-feature drift table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from demandops.core.lake import Lake
from demandops.core.pipeline_config import DriftConfig
from demandops.core.settings import Settings
from demandops.monitoring.drift import categorical_psi, feature_drift, ks, numeric_psi, psi
from demandops.pipeline import steps

HALF_TO_QUARTER = 0.25 * math.log(2) + 0.25 * math.log(1.5)  # shares (.5, .5) -> (.25, .75)


def test_psi_of_shares_by_hand() -> None:
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(HALF_TO_QUARTER)
    assert psi(np.array([0.2, 0.8]), np.array([0.2, 0.8])) == 0
    # an empty bin counts as 1e-4: (1e-4 - 1) ln(1e-4) twice
    assert psi(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(
        2 * (1 - 1e-4) * math.log(1e4)
    )


def test_numeric_psi_bins_on_reference_quantiles() -> None:
    # 2 bins split at the reference median 2.5: reference (2, 2) rows, current (1, 3) rows
    reference = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan])
    current = pd.Series([1.0, 3.0, 4.0, 5.0])
    assert numeric_psi(reference, current, bins=2) == pytest.approx(HALF_TO_QUARTER)


def test_categorical_psi_by_hand() -> None:
    reference = pd.Series(["a", "a", "b", "b"])
    assert categorical_psi(reference, pd.Series(["a", "b", "b", "b"])) == pytest.approx(
        HALF_TO_QUARTER
    )
    assert categorical_psi(reference, pd.Series(["c", "c"])) > 10  # a category never seen


def test_ks_by_hand_and_against_scipy() -> None:
    # empirical CDFs differ by at most 0.25 (at 2, 3 and 4)
    assert ks(pd.Series([1.0, 2, 3, 4]), pd.Series([1.0, 3, 4, 5])) == pytest.approx(0.25)
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 300), rng.normal(0.4, 1.2, 70)
    assert ks(pd.Series(a), pd.Series(b)) == pytest.approx(ks_2samp(a, b).statistic)


STORES = [f"S{i}" for i in range(10)]


def _features(shift: float) -> pd.DataFrame:
    weeks = pd.date_range("2024-01-01", periods=24, freq="W-MON")
    rng = np.random.default_rng(1)
    rows = []
    for store in STORES:
        for i, week in enumerate(weeks):
            future = i >= 20
            rows.append(
                {
                    "store_id": store,
                    "product_id": "P1",
                    "week_start": week,
                    "units": np.nan if future else float(rng.poisson(20 if i < 16 else 60)),
                    "is_future": future,
                    "stable": float(rng.normal()),
                    "moving": float(rng.normal() + (shift if future else 0)),
                    "trend": float(i),
                    "store_format": "large" if store != "S0" or not future else "small",
                }
            )
    return pd.DataFrame(rows)


def test_feature_drift_flags_what_moved_and_only_that() -> None:
    config = DriftConfig(reference_weeks=8, bins=4, exclude=["trend"])
    table = feature_drift(_features(shift=5.0), config).set_index("feature")
    assert set(table.index) == {"stable", "moving", "store_format", "units"}
    assert table.loc["moving", "alert"] and table.loc["moving", "ks"] == 1.0
    reason = table.loc["moving", "reason"]
    assert isinstance(reason, str) and "psi" in reason and "ks 1.000" in reason
    assert not table.loc["stable", "alert"]
    assert table.loc["store_format", "kind"] == "categorical"
    assert table.loc["store_format", "alert"]  # S0 became small in the scoring batch
    # target: the last 4 weeks of actuals (mean 60) against the 8 before them (mean 20)
    assert table.loc["units", "kind"] == "target" and table.loc["units", "alert"]
    assert table.loc["units", "n_reference"] == 8 * 10 and table.loc["units", "n_current"] == 4 * 10
    assert table.loc["moving", "n_reference"] == 8 * 10 and table.loc["moving", "n_current"] == 40
    quiet = feature_drift(_features(shift=0.0), config).set_index("feature")
    assert not quiet.loc["moving", "alert"]


WEATHER = ["temp_max_c", "temp_anomaly_c", "log_precip_mm", "snow_days"]


@pytest.fixture
def sample_features(settings: Settings, small_lake: Lake) -> pd.DataFrame:
    """pnw's feature table on the small sample: forecast weeks in July, history from 2017."""
    ref = steps.condition_reference(small_lake, settings.region_ids())
    inputs = steps.condition_region(small_lake, "pnw", ref, settings.pipeline.horizon_weeks)
    features = steps.features_for_region(small_lake, "pnw", ref, inputs, settings.pipeline)
    return steps.read_features(small_lake, features)


def test_seasonal_features_do_not_alert_on_the_season_but_on_a_real_shift(
    settings: Settings, sample_features: pd.DataFrame
) -> None:
    config = settings.pipeline.drift  # the defaults of config/pipeline.yaml
    table = feature_drift(sample_features, config).set_index("feature")
    seasonal = table.loc[config.seasonal]
    assert (seasonal["reference"] == "same_weeks_last_year").all()
    assert not seasonal["alert"].any() and (seasonal["shift"] < config.shift_alert).all()
    assert (table.drop(index=config.seasonal)["reference"] == "recent").all()
    # against the last 13 weeks (spring) with PSI / KS, the July weather alerts
    recent = config.model_copy(update={"seasonal": []})
    assert feature_drift(sample_features, recent).set_index("feature").loc[WEATHER, "alert"].any()

    future = sample_features["is_future"]
    fahrenheit = sample_features.copy()  # a forecast feed sent in °F under the °C column
    fahrenheit.loc[future, "temp_max_c"] = fahrenheit.loc[future, "temp_max_c"] * 9 / 5 + 32
    heatwave = sample_features.copy()  # coming weeks 8 °C hotter than a year ago
    heatwave.loc[future, "temp_max_c"] += 8.0
    for shifted in (fahrenheit, heatwave):
        row = feature_drift(shifted, config).set_index("feature").loc["temp_max_c"]
        assert row["alert"] and row["reason"].startswith("shift ") and row["shift"] >= 1.5
    storm = sample_features.copy()
    storm.loc[future, "log_precip_mm"] += np.log1p(30.0)  # 30 mm more rain every week
    assert feature_drift(storm, config).set_index("feature").loc["log_precip_mm", "alert"]
