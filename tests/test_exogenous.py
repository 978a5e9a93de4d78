"""Exogenous features: forecasts for future weeks, observations for history, returns only with
lag ≥ H, events known ahead, demographics per store — every value finite."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.exogenous import EXOGENOUS_FEATURES, add_exogenous_features

H = 2
WEEKS = pd.date_range("2020-01-06", periods=10, freq="7D")
FUTURE = WEEKS[-H:]
STORES = pd.DataFrame({"store_id": ["A", "B"], "region": "r", "zip_code": ["11111", "22222"]})
SHOPPERS = pd.DataFrame(
    {
        "store_id": ["A"],
        "population": pd.array([20000], dtype="Int64"),
        "median_income": [60000.0],
        "share_age_under_18": [0.2],
        "share_age_60_plus": [0.2],
        "household_size": [2.5],
    }
)


def _frame() -> pd.DataFrame:
    keys = pd.MultiIndex.from_product(
        [["A", "B"], ["P"], WEEKS], names=["store_id", "product_id", "week_start"]
    )
    frame = keys.to_frame(index=False)
    frame["is_future"] = frame["week_start"].isin(FUTURE)
    return frame


def _weather() -> pd.DataFrame:
    days = pd.date_range(WEEKS[0], WEEKS[-1] + pd.Timedelta(days=6))
    obs = pd.DataFrame({"zip_code": "11111", "date": days, "kind": "observed", "issued": pd.NaT})
    obs["tmax_c"] = np.where(days >= FUTURE[0], 50.0, 10.0)  # "observations" of the future: unused
    fc = obs[obs["date"] >= FUTURE[0]].assign(kind="forecast", issued=FUTURE[0], tmax_c=30.0)
    old = fc.assign(issued=FUTURE[0] - pd.Timedelta(days=7), tmax_c=20.0)  # an older forecast
    weather = pd.concat([obs, fc, old], ignore_index=True)
    return weather.assign(tmin_c=0.0, precip_mm=1.0, snow_mm=0.0)


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start_date": [WEEKS[3] + pd.Timedelta(days=4), FUTURE[1]],
            "end_date": [WEEKS[3] + pd.Timedelta(days=5), FUTURE[1]],
            "scope": ["zip", "national"],
            "scope_id": ["11111", "US"],
            "kind": ["festival", "holiday"],
            "name": ["Fair", "Day"],
            "product_id": ["", ""],
            "value": [1.0, 1.0],
        }
    )


def _returns(extra_week: pd.Timestamp | None = None) -> pd.DataFrame:
    r = pd.DataFrame(
        {"store_id": "A", "product_id": "P", "week_start": WEEKS[:-H], "units_returned": 1}
    )
    if extra_week is not None:
        r.loc[r["week_start"] == extra_week, "units_returned"] = 1000
    return r


def _features(returns: pd.DataFrame | None = None) -> pd.DataFrame:
    out, names = add_exogenous_features(
        _frame(), STORES, SHOPPERS, _weather(), _events(),
        _returns() if returns is None else returns, H,
    )  # fmt: skip
    assert names == list(EXOGENOUS_FEATURES)
    assert np.isfinite(out[names].to_numpy(dtype=float)).all()
    return out.set_index(["store_id", "week_start"])


def test_future_weeks_use_the_latest_forecast_history_uses_observations() -> None:
    f = _features()
    assert (f.loc[("A", slice(None)), "temp_max_c"].loc[("A", WEEKS[:-H])] == 10.0).all()
    future = pd.MultiIndex.from_tuples([("A", w) for w in FUTURE])
    assert (f.loc[future, "temp_max_c"] == 30.0).all()
    assert f.loc[("A", WEEKS[0]), "log_precip_mm"] == np.log1p(7.0)


def test_returns_enter_only_with_a_lag_of_at_least_h() -> None:
    base = _features()["log_returns_roll_13"]
    spike = WEEKS[4]
    changed = _features(_returns(spike))["log_returns_roll_13"]
    differs = (base != changed).groupby(level="week_start").any()
    assert not differs[differs.index < spike + pd.Timedelta(weeks=H)].any()
    assert differs[spike + pd.Timedelta(weeks=H)]


def test_events_are_known_ahead_and_match_their_scope() -> None:
    f = _features()
    assert f.loc[("A", WEEKS[3]), "local_event_days"] == 2.0
    assert f.loc[("B", WEEKS[3]), "local_event_days"] == 0.0  # another zip
    assert f.loc[("A", WEEKS[3]), "local_event"] == 1.0  # any event day in the week
    assert f.loc[("B", WEEKS[3]), "local_event"] == 0.0
    assert set(f["local_event"]) == {0.0, 1.0}
    assert ((f["local_event"] == 1.0) == (f["local_event_days"] > 0)).all()
    assert f.loc[("B", FUTURE[1]), "holiday_events"] == 1.0  # national, in a future week


def test_missing_demographics_and_weather_get_neutral_values() -> None:
    f = _features()
    assert f.loc[("B", WEEKS[0]), "log_median_income"] == np.log(60000.0)  # the median store
    assert f.loc[("B", WEEKS[0]), "temp_anomaly_c"] == 0.0  # zip 22222 has no weather
