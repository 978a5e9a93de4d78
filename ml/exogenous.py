"""Exogenous features from the conditioned weather, events, returns and shoppers feeds.

Leakage rules, the same as for lags: weather is a forecast for future weeks (the latest
forecast issued before the first future week) and an observation for history weeks; events are
planned, so a week's own events are known ahead; returns are realized quantities, so week t
only sees returns of weeks ≤ t − H; demographics are static per store.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EXOGENOUS_FEATURES = (
    "temp_max_c",
    "temp_anomaly_c",
    "log_precip_mm",
    "snow_days",
    "local_event_days",
    "local_event",
    "holiday_events",
    "log_returns_roll_13",
    "log_population",
    "log_median_income",
    "share_age_under_18",
    "share_age_60_plus",
    "household_size",
)
RETURNS_WINDOW = 13
DEMOGRAPHICS = ("share_age_under_18", "share_age_60_plus", "household_size")


def add_exogenous_features(
    frame: pd.DataFrame,
    stores: pd.DataFrame,
    shoppers: pd.DataFrame,
    weather: pd.DataFrame,
    events: pd.DataFrame,
    returns: pd.DataFrame,
    horizon: int,
) -> tuple[pd.DataFrame, list[str]]:
    """`frame` (store_id, product_id, week_start, is_future) with EXOGENOUS_FEATURES added.

    Missing values become neutral ones (a store without demographics gets the median, a week
    without weather its zip's climate), so every column is finite.
    """
    keys = frame[["store_id", "week_start"]].merge(
        stores[["store_id", "zip_code", "region"]], on="store_id", how="left"
    )
    future_start = frame.loc[frame["is_future"], "week_start"].min()
    out = frame.copy()
    weekly = weekly_weather(weather, future_start)
    w = keys.merge(weekly, on=["zip_code", "week_start"], how="left")
    for col in ("temp_max_c", "temp_anomaly_c", "log_precip_mm", "snow_days"):
        out[col] = w[col].to_numpy()
    out["temp_max_c"] = out["temp_max_c"].fillna(out["temp_max_c"].mean())
    out = out.fillna({"temp_anomaly_c": 0.0, "log_precip_mm": 0.0, "snow_days": 0.0})
    ev = event_weeks(events, stores)
    e = keys.merge(ev, on=["store_id", "week_start"], how="left")
    out["local_event_days"] = e["local_event_days"].fillna(0.0).to_numpy()
    out["local_event"] = (out["local_event_days"] > 0).astype(float)  # a lift, however long
    out["holiday_events"] = e["holiday_events"].fillna(0.0).to_numpy()
    out["log_returns_roll_13"] = _lagged_returns(frame, returns, horizon)
    out = _add_demographics(out, shoppers)
    out["temp_max_c"] = out["temp_max_c"].fillna(0.0)
    return out, list(EXOGENOUS_FEATURES)


def weekly_weather(weather: pd.DataFrame, future_start: pd.Timestamp | None) -> pd.DataFrame:
    """Per zip × week: mean max temperature, its anomaly to the zip's climate, precipitation,
    snow days. Weeks before `future_start` from observations, from it on from forecasts."""
    obs = weather[weather["kind"] == "observed"]
    fc = weather[weather["kind"] == "forecast"]
    if future_start is not None and len(fc):
        fc = fc[fc["issued"] <= future_start]
        fc = fc[fc["issued"] == fc.groupby("zip_code")["issued"].transform("max")]
        fc = fc[fc["date"] >= future_start]
        obs = obs[obs["date"] < future_start]
    daily = pd.concat([obs, fc], ignore_index=True)
    if daily.empty:
        return pd.DataFrame(
            columns=["zip_code", "week_start", "temp_max_c", "temp_anomaly_c", "log_precip_mm",
                     "snow_days"]
        )  # fmt: skip
    daily = daily.assign(
        week_start=daily["date"] - pd.to_timedelta(daily["date"].dt.day_of_week, unit="D"),
        snowy=(daily["snow_mm"] > 0).astype(float),
    )
    weekly = daily.groupby(["zip_code", "week_start"], as_index=False).agg(
        temp_max_c=("tmax_c", "mean"), precip=("precip_mm", "sum"), snow_days=("snowy", "sum")
    )
    weekly["log_precip_mm"] = np.log1p(weekly.pop("precip"))
    weekly["temp_anomaly_c"] = weekly["temp_max_c"] - _climate(obs, weekly)
    return weekly


def _climate(obs: pd.DataFrame, weekly: pd.DataFrame) -> np.ndarray:
    """Each zip's annual temperature cycle (two harmonics, least squares over observations)."""

    def design(dates: pd.Series) -> np.ndarray:
        a = 2 * np.pi * dates.dt.day_of_year.to_numpy() / 365.25
        return np.column_stack(
            [np.ones(len(a)), np.sin(a), np.cos(a), np.sin(2 * a), np.cos(2 * a)]
        )

    climate = np.full(len(weekly), np.nan)
    good = obs.dropna(subset=["tmax_c"])
    for z, days in good.groupby("zip_code"):
        if len(days) < 30:
            continue
        coef, *_ = np.linalg.lstsq(design(days["date"]), days["tmax_c"].to_numpy(), rcond=None)
        rows = (weekly["zip_code"] == z).to_numpy()
        mid = weekly.loc[rows, "week_start"] + pd.Timedelta(days=3)
        climate[rows] = design(mid) @ coef
    return climate


def event_weeks(events: pd.DataFrame, stores: pd.DataFrame) -> pd.DataFrame:
    """Per store × week: days of local events (zip or store scope) and holidays in the feed."""
    ev = events[events["product_id"].fillna("").astype(str) == ""]
    ev = ev[ev["value"] > 0]
    if ev.empty:
        return pd.DataFrame(
            columns=["store_id", "week_start", "local_event_days", "holiday_events"]
        )
    days = ev.loc[ev.index.repeat((ev["end_date"] - ev["start_date"]).dt.days + 1)].copy()
    days["date"] = days["start_date"] + pd.to_timedelta(days.groupby(level=0).cumcount(), "D")
    days["week_start"] = days["date"] - pd.to_timedelta(days["date"].dt.day_of_week, unit="D")
    s = stores[["store_id", "region", "zip_code"]]
    matched = pd.concat(
        [
            days[days["scope"] == "national"].merge(s, how="cross"),
            days[days["scope"] == "region"].merge(s, left_on="scope_id", right_on="region"),
            days[days["scope"] == "zip"].merge(s, left_on="scope_id", right_on="zip_code"),
            days[days["scope"] == "store"].merge(s, left_on="scope_id", right_on="store_id"),
        ],
        ignore_index=True,
    )
    holiday = matched["kind"] == "holiday"
    matched["local_event_days"] = (~holiday).astype(float)
    matched["holiday_events"] = holiday.astype(float)
    per_week = matched.groupby(["store_id", "week_start"], as_index=False)[
        ["local_event_days", "holiday_events"]
    ].sum()
    per_week["holiday_events"] = per_week["holiday_events"].clip(upper=1.0)
    return per_week


def _lagged_returns(frame: pd.DataFrame, returns: pd.DataFrame, horizon: int) -> np.ndarray:
    """log1p of the mean weekly returns over weeks t−H−12 … t−H of each series."""
    if returns.empty:
        return np.zeros(len(frame))
    weeks = pd.date_range(
        min(returns["week_start"].min(), frame["week_start"].min()),
        frame["week_start"].max(),
        freq="7D",
    )
    wide = returns.pivot_table(
        index=["store_id", "product_id"], columns="week_start", values="units_returned",
        aggfunc="sum",
    ).reindex(columns=weeks, fill_value=0).fillna(0.0)  # fmt: skip
    last_actual = returns["week_start"].max()
    rolled = wide.T.rolling(RETURNS_WINDOW, min_periods=1).mean()
    rolled[rolled.index > last_actual] = np.nan  # no realized returns there yet
    shifted = rolled.shift(horizon).T  # week t sees weeks ≤ t − H
    long = shifted.stack().reset_index()
    long.columns = ["store_id", "product_id", "week_start", "r"]
    merged = frame[["store_id", "product_id", "week_start"]].merge(
        long, on=["store_id", "product_id", "week_start"], how="left"
    )
    return np.log1p(merged["r"].fillna(0.0).to_numpy())


def _add_demographics(frame: pd.DataFrame, shoppers: pd.DataFrame) -> pd.DataFrame:
    demo = shoppers.set_index("store_id")
    values = pd.DataFrame(index=demo.index)
    values["log_population"] = np.log(demo["population"].astype(float))
    values["log_median_income"] = np.log(demo["median_income"].astype(float))
    for col in DEMOGRAPHICS:
        values[col] = demo[col].astype(float)
    values = values.fillna(values.median()).fillna(0.0)
    joined = values.reindex(frame["store_id"])
    for col in values.columns:
        frame[col] = (
            joined[col].fillna(values[col].median() if len(values) else 0.0).fillna(0.0).to_numpy()
        )
    return frame
