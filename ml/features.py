"""The weekly feature table: one row per store × product × week, history and the coming weeks.

Every lag and rolling feature of week t uses only units of weeks ≤ t − H (H = horizon), so the
same table serves training, holdout evaluation and forecasting 1..H weeks ahead without
leakage. Series are held as a dense store-product × week panel so features are vectorised.
Weeks in which a carried product shipped nothing count as 0 units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demandops.core.calendar import US_RETAIL_CALENDAR, HolidayCalendar, holiday_weeks
from ml.exogenous import EXOGENOUS_FEATURES

MIN_HISTORY_WEEKS = 13  # rows need this many weeks of lagged history to be used
LAGS = (0, 1, 2, 3)  # extra lags beyond H: lag_H, lag_H+1, ...
ROLLING_WINDOWS = (4, 13, 52)
NUMERIC_FEATURES = (
    *(f"log_lag_{k}" for k in LAGS),
    *(f"log_roll_mean_{w}" for w in ROLLING_WINDOWS),
    "log_same_cycle_mean",
    "log_same_cycle_mean_26w",
    "log_base_13w",
    "log_base_cycle_26w",
    "log_same_week_last_year",
    "log_same_season_last_year",
    "log_level",
    "log_level_shipped",
    "log_level_shipped_52w",
    "cycle_ship_share",
    "log_product_season",
    "woy_sin1",
    "woy_cos1",
    "woy_sin2",
    "woy_cos2",
    "holiday",
    "promo",
    "discount",
    "trend_years",
    "is_large",
    "log_sqft",
    *EXOGENOUS_FEATURES,  # weather, events, returns, demographics: added by ml/exogenous.py
)
BASELINE_COLUMNS = ("hist_avg", "same_woy_avg")
DISPERSION_COLUMN = "log_var_shipped"  # not a model input: used by the MAPE blend (ml/ensemble.py)
CATEGORICAL_FEATURES = ("store_id", "product_id", "category", "week_of_year", "week_parity")
CYCLE_WEEKS = 2  # delivery routes run on two-week cycles: slow movers ship every other week
_EPOCH = pd.Timestamp("1970-01-05")  # a Monday: week parity does not depend on the data


@dataclass(frozen=True)
class Panel:
    """Dense units per series (rows) × week (columns); NaN in the weeks to forecast."""

    keys: pd.DataFrame  # store_id, product_id
    weeks: pd.DatetimeIndex
    units: np.ndarray
    n_history: int


def build_panel(
    shipments: pd.DataFrame, last_week: pd.Timestamp, horizon: int, absent_is_zero: bool = True
) -> Panel:
    """Pivot long shipments into a panel from the first shipped week to `last_week` + horizon.

    A history week absent from `shipments` is 0 units (a delivery feed lists what shipped) or,
    with `absent_is_zero=False`, unknown (NaN: a scanner feed with gaps); unknown weeks are
    left out of every mean and are never training targets.
    """
    first_week = shipments["week_start"].min()
    weeks = pd.date_range(first_week, last_week + pd.Timedelta(weeks=horizon), freq="7D")
    n_history = len(weeks) - horizon
    keys = (
        shipments[["store_id", "product_id"]]
        .drop_duplicates()
        .sort_values(["store_id", "product_id"])
        .reset_index(drop=True)
    )
    row = pd.MultiIndex.from_frame(keys).get_indexer(
        pd.MultiIndex.from_frame(shipments[["store_id", "product_id"]])
    )
    col = ((shipments["week_start"] - first_week).dt.days // 7).to_numpy()
    units = np.full((len(keys), len(weeks)), np.nan)
    if absent_is_zero:
        units[:, :n_history] = 0.0
    units[row, col] = shipments["units"].to_numpy(dtype=float)
    return Panel(keys=keys, weeks=weeks, units=units, n_history=n_history)


def promoted_weeks(panel: Panel, promotions: pd.DataFrame) -> np.ndarray:
    """True where a series had a promotion that week, in the panel's shape."""
    promoted = np.zeros(panel.units.shape, dtype=bool)
    row = pd.MultiIndex.from_frame(panel.keys).get_indexer(
        pd.MultiIndex.from_frame(promotions[["store_id", "product_id"]])
    )
    col = panel.weeks.get_indexer(pd.DatetimeIndex(promotions["week_start"]))
    known = (row >= 0) & (col >= 0)
    promoted[row[known], col[known]] = True
    return promoted


def lagged_window_mean(units: np.ndarray, lag: int, window: int) -> np.ndarray:
    """Mean of weeks t−lag−window+1 .. t−lag per cell, over the weeks that exist; NaN if none."""
    n_series, n_weeks = units.shape
    if window == 1:  # a shift: most calls, and a fifth of a production region's features
        return lagged(units, lag)
    values = np.nan_to_num(units, nan=0.0)
    present = (~np.isnan(units)).astype(float)
    pad = np.zeros((n_series, 1))
    csum = np.concatenate([pad, np.cumsum(values, axis=1)], axis=1)
    ccount = np.concatenate([pad, np.cumsum(present, axis=1)], axis=1)
    end = np.arange(n_weeks) - lag + 1  # exclusive end index into the cumulative sums
    start = np.clip(end - window, 0, None)
    end = np.clip(end, 0, None)
    total = csum[:, end] - csum[:, start]
    count = ccount[:, end] - ccount[:, start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)


def lagged(units: np.ndarray, lag: int) -> np.ndarray:
    """Each cell's value `lag` (≥ 0) weeks earlier; NaN where that week is before the first."""
    shifted = np.full(units.shape, np.nan)
    if lag < units.shape[1]:
        shifted[:, lag:] = units[:, : units.shape[1] - lag]
    return shifted


def _same_cycle_mean(units: np.ndarray, horizon: int, cycles: int = 4) -> np.ndarray:
    """Mean of the last `cycles` weeks at the same point of the delivery cycle, lag ≥ H."""
    first = -(-horizon // CYCLE_WEEKS) * CYCLE_WEEKS  # smallest multiple of the cycle ≥ H
    lags = np.stack([lagged_window_mean(units, first + CYCLE_WEEKS * k, 1) for k in range(cycles)])
    count = (~np.isnan(lags)).sum(axis=0)
    total = np.nansum(lags, axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


SeasonSums = dict[int, tuple[np.ndarray, np.ndarray]]  # offset -> (sum, count) of known weeks
SEASON_WEIGHTS = {-2: 0.5, -1: 1.0, 0: 1.0, 1: 1.0, 2: 0.5}  # of `_product_season`


def _same_week_sums(units: np.ndarray, horizon: int, offsets: tuple[int, ...]) -> SeasonSums:
    """Per offset o, the sum and count of the known weeks at lags 52k + o that are ≥ H."""
    sums: SeasonSums = {}
    for o in offsets:
        lags = [52 * k + o for k in range(1, units.shape[1] // 52 + 1) if 52 * k + o >= horizon]
        values = np.stack([lagged_window_mean(units, lag, 1) for lag in lags] or [units * np.nan])
        sums[o] = (np.nansum(values, axis=0), (~np.isnan(values)).sum(axis=0).astype(float))
    return sums


def _same_week_mean(sums: SeasonSums, offsets: tuple[int, ...]) -> np.ndarray:
    """Mean of the same week (± `offsets`) in earlier years, from `_same_week_sums`; NaN if none."""
    total = np.sum([sums[o][0] for o in offsets], axis=0)
    count = np.sum([sums[o][1] for o in offsets], axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _product_season(panel: Panel, sums: SeasonSums, yearly: np.ndarray) -> np.ndarray:
    """Per product, how its weeks around this week of year sold against its yearly mean.

    Pooled over the product's series (stores) in the panel: log1p of the mean units of the
    same season in earlier years (weeks ±2 around the same week, the outer two at half weight,
    so every delivery phase counts equally) less log1p of `yearly`, the mean of the 52 weeks to
    t − H. 0 where no earlier year is known. One product's seasonal curve, measured on every
    store. `sums` are the `_same_week_sums` of every offset in SEASON_WEIGHTS.
    """
    parts = [w * _same_week_mean(sums, (o,)) for o, w in SEASON_WEIGHTS.items()]
    around: np.ndarray = np.sum(parts, axis=0) / sum(SEASON_WEIGHTS.values())
    known = ~np.isnan(around) & ~np.isnan(yearly)
    codes, products = pd.factorize(panel.keys["product_id"])
    shape = (len(products), panel.units.shape[1])
    season, year, count = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    np.add.at(season, codes, np.where(known, around, 0.0))
    np.add.at(year, codes, np.where(known, yearly, 0.0))
    np.add.at(count, codes, known.astype(float))
    n = np.maximum(count, 1.0)
    index = np.where(count > 0, np.log1p(season / n) - np.log1p(year / n), 0.0)
    return index[codes]


def _shipped_features(units: np.ndarray, horizon: int) -> dict[str, np.ndarray]:
    """What a series ships when it ships, from weeks ≤ t − H.

    `cycle_ship_share`: the share of the last 13 weeks at the same point of the two-week
    delivery cycle (lags ≥ H) with units > 0 — about 0 in the off weeks of a series delivered
    every other week, 1 in its delivery weeks and for a series that ships weekly; 1 before any
    history. `log_level_shipped`: the mean log1p(units) over the weeks with units > 0 (the
    level on delivery weeks, which `log_level` halves for an every-other-week series), and
    `log_level_shipped_52w` the same over the last 52 weeks (a whole seasonal cycle, centred
    half a year back rather than halfway through the history: it follows a trend); NaN before
    any shipment (filled like every lagged feature). `log_var_shipped` (DISPERSION_COLUMN):
    the variance of log1p(units) over the weeks that shipped, all history — how far the
    series' sales swing from week to week; 0 before two shipments.
    """
    shipped = np.where(np.isnan(units), np.nan, (units > 0).astype(float))
    share = _same_cycle_mean(shipped, horizon, cycles=13)
    positive = np.where(units > 0, np.log1p(units), np.nan)
    level = lagged_window_mean(positive, horizon, units.shape[1])
    square = lagged_window_mean(positive**2, horizon, units.shape[1])
    return {
        "cycle_ship_share": np.where(np.isnan(share), 1.0, share),
        "log_level_shipped": level,
        "log_level_shipped_52w": lagged_window_mean(positive, horizon, 52),
        DISPERSION_COLUMN: np.nan_to_num(np.clip(square - level**2, 0.0, None)),
    }


def build_features(
    panel: Panel,
    stores: pd.DataFrame,
    products: pd.DataFrame,
    promotions: pd.DataFrame,
    horizon: int,
    baseline_window: int,
    holidays: HolidayCalendar = US_RETAIL_CALENDAR,
) -> pd.DataFrame:
    """The long feature table for every series and week that has enough lagged history
    (`holidays`: the region's holiday calendar)."""
    u = panel.units
    grid: dict[str, np.ndarray] = {"units": u}
    for k in LAGS:
        grid[f"log_lag_{k}"] = np.log1p(lagged_window_mean(u, horizon + k, 1))
    rolling = {w: lagged_window_mean(u, horizon, w) for w in ROLLING_WINDOWS}
    for w, mean in rolling.items():
        grid[f"log_roll_mean_{w}"] = np.log1p(mean)
    grid["log_same_cycle_mean"] = np.log1p(_same_cycle_mean(u, horizon))
    grid["log_same_cycle_mean_26w"] = np.log1p(_same_cycle_mean(u, horizon, cycles=13))
    # the level without promotion lifts: means over the weeks that had no promotion
    regular = np.where(promoted_weeks(panel, promotions), np.nan, u)
    base = {
        "log_base_13w": lagged_window_mean(regular, horizon, 13),
        "log_base_cycle_26w": _same_cycle_mean(regular, horizon, cycles=13),
    }
    fallback = np.expm1(grid["log_roll_mean_13"])
    for name, values in base.items():
        grid[name] = np.log1p(np.where(np.isnan(values), fallback, values))
    # the series' level: mean log1p units over every known week ≤ t − H
    grid["log_level"] = lagged_window_mean(np.log1p(u), horizon, u.shape[1])
    grid.update(_shipped_features(u, horizon))
    grid["hist_avg"] = lagged_window_mean(u, horizon, baseline_window)
    sums = _same_week_sums(u, horizon, tuple(SEASON_WEIGHTS))  # every offset used below
    same_woy = _same_week_mean(sums, (0,))
    grid["same_woy_avg"] = np.where(np.isnan(same_woy), grid["hist_avg"], same_woy)
    grid["log_same_week_last_year"] = np.where(
        np.isnan(same_woy), grid["log_roll_mean_52"], np.log1p(same_woy)
    )
    around = _same_week_mean(sums, (-CYCLE_WEEKS, 0, CYCLE_WEEKS))
    grid["log_same_season_last_year"] = np.where(
        np.isnan(around), grid["log_roll_mean_52"], np.log1p(around)
    )
    grid["log_product_season"] = _product_season(panel, sums, rolling[52])
    grid["history_weeks"] = np.broadcast_to(np.arange(len(panel.weeks)) - horizon + 1, u.shape)

    n_series, n_weeks = u.shape
    frame = pd.DataFrame({name: values.reshape(-1) for name, values in grid.items()})
    frame.insert(0, "week_start", np.tile(panel.weeks.to_numpy(), n_series))
    for col in ("product_id", "store_id"):
        frame.insert(0, col, np.repeat(panel.keys[col].to_numpy(), n_weeks))
    frame["is_future"] = np.tile(np.arange(n_weeks) >= panel.n_history, n_series)
    frame = frame[frame["history_weeks"] >= MIN_HISTORY_WEEKS].drop(columns="history_weeks")
    frame = _add_calendar(frame, panel.weeks, holidays)
    frame = _add_attributes(frame, stores, products)
    frame = _add_promotions(frame, promotions, products).reset_index(drop=True)
    return _fill_gaps(frame)


def _fill_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Lagged features of weeks whose lags fall in data gaps fall back to the yearly level."""
    level = frame["log_roll_mean_52"].fillna(0.0)
    lagged = [c for c in (*NUMERIC_FEATURES, *BASELINE_COLUMNS) if c in frame.columns]
    for column in lagged:
        if frame[column].isna().any():
            fallback = level if column.startswith("log_") else np.expm1(level)
            frame[column] = frame[column].fillna(fallback)
    return frame


def _add_calendar(
    frame: pd.DataFrame, weeks: pd.DatetimeIndex, holidays: HolidayCalendar
) -> pd.DataFrame:
    woy = weeks.isocalendar().week.to_numpy(dtype=float)
    angle = 2 * np.pi * woy / 52.1775
    per_week = pd.DataFrame(
        {
            "week_start": weeks,
            "week_of_year": woy.astype(int),
            "week_parity": ((weeks - _EPOCH).days.to_numpy() // 7) % CYCLE_WEEKS,
            "woy_sin1": np.sin(angle),
            "woy_cos1": np.cos(angle),
            "woy_sin2": np.sin(2 * angle),
            "woy_cos2": np.cos(2 * angle),
            "holiday": holiday_weeks(weeks, holidays).astype(float),
            "trend_years": (weeks - weeks[0]).days.to_numpy() / 365.25,
        }
    )
    return frame.merge(per_week, on="week_start", how="left")


def _add_attributes(
    frame: pd.DataFrame, stores: pd.DataFrame, products: pd.DataFrame
) -> pd.DataFrame:
    store_cols = stores[["store_id", "region", "store_format", "sqft"]]
    frame = frame.merge(store_cols, on="store_id", how="left", validate="many_to_one")
    frame = frame.merge(
        products[["product_id", "category"]], on="product_id", how="left", validate="many_to_one"
    )
    frame["is_large"] = (frame["store_format"] == "large").astype(float)
    frame["log_sqft"] = np.log(frame.pop("sqft").astype(float))
    return frame


def _add_promotions(
    frame: pd.DataFrame, promotions: pd.DataFrame, products: pd.DataFrame
) -> pd.DataFrame:
    frame = frame.merge(
        promotions[["store_id", "product_id", "week_start", "promo_price"]],
        on=["store_id", "product_id", "week_start"],
        how="left",
        validate="one_to_one",
    )
    regular = frame["product_id"].map(products.set_index("product_id")["regular_price"])
    frame["promo"] = frame["promo_price"].notna().astype(float)
    discount = 1.0 - frame.pop("promo_price").astype(float) / regular
    frame["discount"] = discount.fillna(0.0).clip(0.0, 1.0)
    return frame
