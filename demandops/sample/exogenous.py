"""The sample's exogenous drivers: daily weather per zip, events, and shopper demographics.

Deterministic from the seed; the demand model in sample_data.py responds to them (hot weeks
lift beverages, snow keeps shoppers home, local events lift their zip's stores, richer and
bigger trade areas buy more), so they are worth having as features.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

# log-units effect per °C of weekly temperature anomaly, by category
TEMP_EFFECT = {"beverages": 0.05, "juice": 0.03, "snacks": 0.015, "dairy": 0.0, "bakery": -0.01}
SNOW_DAY_EFFECT = -0.05  # per day with snow in the week
EVENT_LIFT = 0.30  # log-units lift in a week with a local event in the store's zip
REGIONAL_HOLIDAY_LIFT = 0.12
EVENT_KINDS = ("sports", "festival", "school")


@dataclass(frozen=True)
class Weather:
    daily: pd.DataFrame  # zip_code, date, tmax_c, tmin_c, precip_mm, snow_mm
    weekly_anomaly: pd.DataFrame  # zip_code × week_start: temperature anomaly, °C
    weekly_snow_days: pd.DataFrame  # zip_code × week_start


LOG_POPULATION, LOG_INCOME = 10.3, 11.0  # means of the log trade-area population and income


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def simulate_weather(zips: list[str], first_day: pd.Timestamp, days: int, seed: int) -> Weather:
    """Daily weather per zip: a climate (mean, seasonal swing) plus persistent anomalies."""
    date = pd.date_range(first_day, periods=days, freq="D")
    doy = date.day_of_year.to_numpy()
    frames, anomalies, snows = [], {}, {}
    for z in zips:
        rng = rng_for(seed, "weather", z)
        mean, swing = rng.uniform(12, 24), rng.uniform(6, 14)
        climate = mean + swing * np.cos(2 * np.pi * (doy - 200) / 365.25)
        shock = rng.normal(0, 2.2, days)
        anomaly = np.zeros(days)
        for i in range(1, days):
            anomaly[i] = 0.85 * anomaly[i - 1] + shock[i]
        tmax = climate + anomaly
        tmin = tmax - rng.uniform(6, 11, days)
        wet = rng.random(days) < 0.3
        precip = np.where(wet, rng.gamma(1.2, 6.0, days), 0.0)
        snow = np.where(tmax < 3, precip * 8.0, 0.0)
        frames.append(
            pd.DataFrame(
                {
                    "zip_code": z,
                    "date": date,
                    "tmax_c": tmax.round(1),
                    "tmin_c": tmin.round(1),
                    "precip_mm": precip.round(1),
                    "snow_mm": snow.round(0),
                }
            )
        )
        weekly = pd.DataFrame({"a": anomaly, "s": snow > 0}, index=date).resample(
            "W-MON", label="left", closed="left"
        )
        anomalies[z] = weekly["a"].mean()
        snows[z] = weekly["s"].sum()
    return Weather(
        daily=pd.concat(frames, ignore_index=True),
        weekly_anomaly=pd.DataFrame(anomalies).T,
        weekly_snow_days=pd.DataFrame(snows).T,
    )


def local_events(zips: list[str], week_index: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    """Local events per zip: about one week in twelve, 1-3 days, starting on Fri-Sun."""
    rows = []
    for z in zips:
        rng = rng_for(seed, "events", z)
        for w in week_index[rng.random(len(week_index)) < 1 / 12]:
            kind = EVENT_KINDS[int(rng.integers(0, len(EVENT_KINDS)))]
            start = w + pd.Timedelta(days=int(rng.integers(4, 7)))
            length = int(rng.integers(1, 4))
            end = min(start + pd.Timedelta(days=length - 1), w + pd.Timedelta(days=6))
            rows.append((z, kind, f"{kind.title()} {z} {start:%Y-%m-%d}", start, end, w))
    return pd.DataFrame(
        rows, columns=["zip_code", "kind", "name", "start_date", "end_date", "week_start"]
    )


def regional_holidays(regions: list[str], week_index: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    """One regional holiday a year per region (a state's own holiday), on a fixed date."""
    rows = []
    for r in regions:
        rng = rng_for(seed, "holiday", r)
        month, day = int(rng.integers(3, 11)), int(rng.integers(1, 28))
        for year in sorted(set(week_index.year)):
            d = pd.Timestamp(year=year, month=month, day=day)
            w = d - pd.Timedelta(days=d.day_of_week)
            if week_index[0] <= w <= week_index[-1]:
                rows.append((r, f"{r.upper()} Day", d, w))
    return pd.DataFrame(rows, columns=["region", "name", "date", "week_start"])


def demographics(stores: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Trade-area demographics per store, each drawn from its own store's random stream."""
    rows = []
    for store_id in stores["store_id"]:
        rng = rng_for(seed, "demographics", str(store_id))
        under18 = rng.uniform(0.16, 0.28)
        rows.append(
            {
                "store_id": store_id,
                "population": int(np.round(np.exp(rng.normal(LOG_POPULATION, 0.5)))),
                "median_income": float(np.round(np.exp(rng.normal(LOG_INCOME, 0.3)), -2)),
                "share_age_under_18": round(under18, 3),
                "share_age_60_plus": round(rng.uniform(0.12, 0.30), 3),
                "household_size": round(1.9 + 3.5 * under18 + rng.normal(0, 0.1), 2),
            }
        )
    return pd.DataFrame(rows)


def demographic_effect(demo: pd.DataFrame) -> np.ndarray:
    """Log-units effect of a store's trade area: population and income raise demand (each
    standardized by the distribution it is drawn from, so a store's effect is its own)."""
    population = (np.log(demo["population"].to_numpy(dtype=float)) - LOG_POPULATION) / 0.5
    income = (np.log(demo["median_income"].to_numpy(dtype=float)) - LOG_INCOME) / 0.3
    return 0.10 * population + 0.08 * income
