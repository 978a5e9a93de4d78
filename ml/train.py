"""Training step: per segment, a time-based holdout evaluation, then a refit on all history.

For each segment the LASSO and both historical-average baselines forecast the holdout weeks
(each week from data available H weeks before it); their metrics go in the run report. The
LASSO is then refit on every history week and becomes the segment's model. A segment too small
to fit, or whose fit fails, keeps the trailing historical average and says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd
from sklearn.base import BaseEstimator, clone

from ml.features import BASELINE_COLUMNS, NUMERIC_FEATURES
from ml.metrics import metrics_by
from ml.models import ColumnBaseline, LassoForecaster
from ml.segments import SEGMENT_COLUMNS, Segment, assign_segments, product_velocity, segments_of

log = logging.getLogger(__name__)

MIN_TRAIN_ROWS = 100
HOLDOUT_KEYS = ["store_id", "product_id", "week_start"]


@dataclass(frozen=True)
class TrainParams:
    horizon_weeks: int
    holdout_weeks: int
    velocity_threshold: float
    lasso_cv_folds: int


@dataclass
class SegmentModel:
    """The model that will forecast one segment, with why it was chosen."""

    segment: Segment
    kind: str  # "lasso" or "baseline"
    estimator: BaseEstimator
    n_rows: int
    note: str = ""


@dataclass
class TrainedRegion:
    region: str
    velocity: pd.Series  # product_id -> fast | slow, from the training window
    models: dict[str, SegmentModel]
    metrics: pd.DataFrame  # one row per segment × model on the holdout
    holdout: pd.DataFrame  # actuals and every model's forecast of the holdout weeks
    holdout_start: pd.Timestamp
    last_week: pd.Timestamp
    features: list[str] = field(default_factory=lambda: list(NUMERIC_FEATURES))


def candidates(params: TrainParams) -> dict[str, BaseEstimator]:
    return {
        "lasso": LassoForecaster(n_splits=params.lasso_cv_folds),
        "hist_avg": ColumnBaseline("hist_avg"),
        "same_woy_avg": ColumnBaseline("same_woy_avg"),
    }


def train_region(features: pd.DataFrame, params: TrainParams) -> TrainedRegion:
    """Evaluate and fit one model per segment of one region's feature table."""
    history = features[~features["is_future"]].sort_values(["week_start", "store_id", "product_id"])
    weeks = history["week_start"].drop_duplicates().sort_values()
    if len(weeks) <= params.holdout_weeks:
        raise ValueError(
            f"{len(weeks)} usable history weeks; the holdout alone needs {params.holdout_weeks}"
        )
    holdout_start = weeks.iloc[-params.holdout_weeks]
    train_window = history[history["week_start"] < holdout_start]
    velocity = product_velocity(train_window, params.velocity_threshold)
    history = assign_segments(history, velocity)
    region = str(history["region"].iloc[0])
    models: dict[str, SegmentModel] = {}
    predictions = []
    for segment in segments_of(history):
        part = history[_mask(history, segment)]
        models[segment.name], holdout = _train_segment(segment, part, holdout_start, params)
        predictions.append(holdout)
    holdout = pd.concat(predictions, ignore_index=True)
    return TrainedRegion(
        region=region,
        velocity=velocity,
        models=models,
        metrics=metrics_by(holdout, [*SEGMENT_COLUMNS, "model"]),
        holdout=holdout,
        holdout_start=holdout_start,
        last_week=weeks.iloc[-1],
    )


def _mask(frame: pd.DataFrame, segment: Segment) -> pd.Series:
    return (
        (frame["region"] == segment.region)
        & (frame["store_format"] == segment.store_format)
        & (frame["velocity"] == segment.velocity)
    )


def _train_segment(
    segment: Segment, part: pd.DataFrame, holdout_start: pd.Timestamp, params: TrainParams
) -> tuple[SegmentModel, pd.DataFrame]:
    """The segment's final model, and every candidate's forecasts of the holdout weeks."""
    train = part[part["week_start"] < holdout_start]
    holdout = part[part["week_start"] >= holdout_start]
    columns = [*NUMERIC_FEATURES, *BASELINE_COLUMNS]
    predictions = []
    for name, estimator in candidates(params).items():
        try:
            fitted = clone(estimator).fit(train[columns], train["units"])
            forecast = fitted.predict(holdout[columns])
        except ValueError as exc:  # too few rows for the model or its cross-validation
            log.warning("segment %s: %s could not be evaluated: %s", segment.name, name, exc)
            continue
        predictions.append(
            holdout[[*SEGMENT_COLUMNS, *HOLDOUT_KEYS, "units"]].assign(
                model=name, forecast=forecast
            )
        )
    return _final_model(segment, part, params), pd.concat(predictions, ignore_index=True)


def _final_model(segment: Segment, part: pd.DataFrame, params: TrainParams) -> SegmentModel:
    X = part[[*NUMERIC_FEATURES, *BASELINE_COLUMNS]]
    if len(part) < MIN_TRAIN_ROWS:
        note = f"{len(part)} history rows (< {MIN_TRAIN_ROWS}): historical average used"
        return SegmentModel(segment, "baseline", ColumnBaseline().fit(X), len(part), note)
    try:
        lasso = candidates(params)["lasso"].fit(X, part["units"])
    except ValueError as exc:
        note = f"LASSO failed ({exc}): historical average used"
        return SegmentModel(segment, "baseline", ColumnBaseline().fit(X), len(part), note)
    return SegmentModel(segment, "lasso", lasso, len(part))
