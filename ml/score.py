"""Scoring step: forecasts for the coming weeks with each segment's model.

Each segment is scored by its `SegmentScorer` (the champion, resolved by the caller). A segment
without a usable model, or whose model fails to predict, gets the historical-average baseline,
and the `fallback` column says why; one segment's failure never stops the others.

Every row carries an 80 % interval and a median, `p10`, `p50`, `p90` (`ml.intervals`: the
conformal quantiles of the backtest residuals of the segment's model of that kind, or of that
kind over the region's segments where the segment has none).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from demandops.core import telemetry
from ml import intervals
from ml.models import ColumnBaseline
from ml.segments import assign_segments
from ml.train import TrainedRegion

log = logging.getLogger(__name__)

FORECAST_COLUMNS = [
    "region",
    "store_id",
    "product_id",
    "week_start",
    "horizon",
    "store_format",
    "velocity",
    "forecast",
    "baseline_forecast",
    "model",
    "model_version",
    "trained_on",
    "stale",
    "fallback",
    *intervals.COLUMNS,
]
BACKTEST_MODEL = {"ensemble": "ensemble", "lasso": "lasso", "baseline": "hist_avg"}


@dataclass(frozen=True)
class SegmentScorer:
    """What forecasts one segment: a fitted estimator, or None for the baseline."""

    kind: str
    estimator: BaseEstimator | None
    version: str = ""  # the registry's model version, "" when unregistered
    run_id: str = ""  # the registry's training run
    trained_on: str = ""  # ISO date the model was fit
    stale: bool = False
    fallback: str = ""  # why the baseline forecasts, if it does


def scorers_of(trained: TrainedRegion) -> dict[str, SegmentScorer]:
    """Every segment scored by the model trained with it (no registry)."""
    return {name: SegmentScorer(m.kind, m.estimator) for name, m in trained.models.items()}


def score_region(
    features: pd.DataFrame,
    trained: TrainedRegion,
    scorers: dict[str, SegmentScorer] | None = None,
) -> pd.DataFrame:
    """One forecast per store × product × future week; unseen segments get the baseline."""
    scorers = scorers_of(trained) if scorers is None else scorers
    future = assign_segments(features[features["is_future"]], trained.velocity)
    future = future.sort_values(["store_id", "product_id", "week_start"]).reset_index(drop=True)
    X = future
    future["horizon"] = ((future["week_start"] - trained.last_week).dt.days // 7).astype(int)
    future["baseline_forecast"] = ColumnBaseline("hist_avg").fit(X).predict(X)
    future["forecast"] = future["baseline_forecast"]
    future["model"] = "baseline"
    future["model_version"] = ""
    future["trained_on"] = ""
    future["stale"] = False
    future["fallback"] = "no model for this segment"
    seg_names = future["region"] + "." + future["store_format"] + "." + future["velocity"]
    for name in sorted(set(seg_names)):
        rows = (seg_names == name).to_numpy()
        with telemetry.step(
            "score_segment", region=name.split(".")[0], segment=name, rows=int(rows.sum())
        ) as span:
            _score_segment(future, X, rows, name, scorers.get(name))
            first = future.loc[rows, ["model", "fallback"]].iloc[0]
            span.set(model=first["model"], fallback=first["fallback"])
    future[list(intervals.COLUMNS)] = _intervals(future, trained.holdout)
    for column in ("forecast", "baseline_forecast", *intervals.COLUMNS):
        future[column] = np.round(future[column], 3)
    return future[FORECAST_COLUMNS]


def _intervals(future: pd.DataFrame, holdout: pd.DataFrame) -> np.ndarray:
    """rows × (P10, P50, P90) of the forecasts, from the backtest residuals of each row's
    segment and kind of model; that kind over every segment where the segment has none, and
    every model's residuals for a kind the backtest has not seen; NaN without a backtest."""
    if holdout.empty:
        return np.full((len(future), 3), np.nan)
    table = intervals.table(holdout)
    keys = future[["region", "store_format", "velocity"]].assign(
        model=future["model"].map(BACKTEST_MODEL).fillna(future["model"])
    )
    q = ["q10", "q50", "q90"]
    found = keys.merge(table, on=intervals.KEYS, how="left")[q]
    for model, rows in keys.groupby("model").indices.items():
        missing = np.asarray(rows)[found["q10"].iloc[rows].isna().to_numpy()]
        pooled = _pooled(holdout[holdout["model"] == model]) if missing.size else None
        if pooled is not None:
            found.iloc[missing] = pooled
    still = found["q10"].isna().to_numpy()
    if still.any() and (everything := _pooled(holdout)) is not None:
        found.iloc[np.flatnonzero(still)] = everything  # a kind never backtested: every model's
    values = np.full((len(future), 3), np.nan)
    known = found["q10"].notna().to_numpy()
    forecast = future["forecast"].to_numpy(dtype=float)
    values[known] = intervals.apply(forecast[known], found[known].to_numpy())
    return values


def _pooled(part: pd.DataFrame) -> tuple[float, float, float] | None:
    actual, forecast = part["units"].to_numpy(dtype=float), part["forecast"].to_numpy(dtype=float)
    return intervals.offsets(intervals.residuals(actual, forecast))


def _score_segment(
    future: pd.DataFrame, X: pd.DataFrame, rows: np.ndarray, name: str, scorer: SegmentScorer | None
) -> None:
    """Forecast the `rows` of one segment in place with its scorer; the baseline if it fails."""
    if scorer is None:
        return
    future.loc[rows, "model_version"] = scorer.version
    future.loc[rows, "trained_on"] = scorer.trained_on
    future.loc[rows, "stale"] = scorer.stale
    future.loc[rows, "fallback"] = scorer.fallback
    if scorer.estimator is None:
        return
    try:
        forecast = np.asarray(scorer.estimator.predict(X[rows]), dtype=float)
        if forecast.shape != (int(rows.sum()),) or not np.isfinite(forecast).all():
            raise ValueError("forecasts are not one finite number per row")
    except Exception as exc:  # any model failure: this segment falls back, others go on
        log.warning("segment %s: scoring failed, baseline used: %s", name, exc)
        future.loc[rows, "fallback"] = f"scoring failed: {type(exc).__name__}: {exc}"[:200]
        return
    future.loc[rows, "forecast"] = forecast
    future.loc[rows, "model"] = scorer.kind
