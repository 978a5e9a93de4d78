"""Scoring step: forecasts for the coming weeks with each segment's model.

Each segment is scored by its `SegmentScorer` (the champion, resolved by the caller). A segment
without a usable model, or whose model fails to predict, gets the historical-average baseline,
and the `fallback` column says why; one segment's failure never stops the others.

Every row carries an 80 % interval and a median, `p10`, `p50`, `p90` (`ml.intervals`: the
conformal quantiles of the backtest residuals of the segment's model of that kind, or of that
kind over the region's segments where the segment has none).
"""

from __future__ import annotations

import hashlib
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
CHALLENGER_KEYS = ["region", "store_id", "product_id", "week_start", "horizon"]
CHALLENGER_COLUMNS = [*CHALLENGER_KEYS, "segment", "champion_version", "champion_forecast",
                      "challenger_version", "challenger_forecast"]  # fmt: skip
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
    return score_with_challengers(features, trained, scorers, {}, 0.0)[0]


def score_with_challengers(
    features: pd.DataFrame,
    trained: TrainedRegion,
    scorers: dict[str, SegmentScorer] | None,
    challengers: dict[str, SegmentScorer],
    share: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`score_region`, and where a segment has a challenger, the challenger's forecasts for
    the stores `challenger_stores` assigns to it: both forecasts per row of those stores in the
    second frame (CHALLENGER_COLUMNS), the challenger's served in the first."""
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
    side = _challenge(future, X, seg_names, challengers, share)
    future[list(intervals.COLUMNS)] = _intervals(future, trained.holdout)
    for column in ("forecast", "baseline_forecast", *intervals.COLUMNS):
        future[column] = np.round(future[column], 3)
    return future[FORECAST_COLUMNS], side


def challenger_stores(store_ids: pd.Series, share: float) -> np.ndarray:
    """True for the stores whose id hashes into the first `share` of [0, 1): the same stores
    in every run and segment, whatever else is scored."""
    hashed = [int(hashlib.sha256(str(s).encode()).hexdigest()[:8], 16) / 2**32 for s in store_ids]
    return np.asarray(hashed) < share


def _challenge(
    future: pd.DataFrame,
    X: pd.DataFrame,
    seg_names: pd.Series,
    challengers: dict[str, SegmentScorer],
    share: float,
) -> pd.DataFrame:
    """Score each challenger on its segment's assigned stores; serve its forecasts there."""
    frames = []
    assigned = challenger_stores(future["store_id"], share) if challengers else None
    for name, scorer in sorted(challengers.items()):
        rows = (seg_names == name).to_numpy() & assigned  # type: ignore[operator]
        if not rows.any() or scorer.estimator is None:
            continue
        try:
            forecast = np.asarray(scorer.estimator.predict(X[rows]), dtype=float)
            if forecast.shape != (int(rows.sum()),) or not np.isfinite(forecast).all():
                raise ValueError("forecasts are not one finite number per row")
        except Exception as exc:  # a failing challenger: its stores keep the champion
            log.warning("segment %s: challenger v%s failed: %s", name, scorer.version, exc)
            continue
        side = future.loc[rows, CHALLENGER_KEYS].copy()
        side["segment"] = name
        side["champion_version"] = future.loc[rows, "model_version"].to_numpy()
        side["champion_forecast"] = future.loc[rows, "forecast"].to_numpy()
        side["challenger_version"] = scorer.version
        side["challenger_forecast"] = forecast
        frames.append(side)
        future.loc[rows, "forecast"] = forecast
        served = {"model": scorer.kind, "model_version": scorer.version, "fallback": ""}
        for column, value in (served | {"trained_on": scorer.trained_on}).items():
            future.loc[rows, column] = value
        future.loc[rows, "stale"] = scorer.stale
    if not frames:
        return pd.DataFrame(columns=CHALLENGER_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    for column in ("champion_forecast", "challenger_forecast"):
        out[column] = np.round(out[column], 3)
    return out[CHALLENGER_COLUMNS]


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
