"""Training step: per segment, a rolling-origin backtest, then a refit on all history.

For each segment the ensemble (LASSO + embedding net, blended), its members and both
historical-average baselines forecast `backtest_origins` windows of H weeks at the end of the
history, each from a model fit only on the weeks before the window's origin. Every backtest row
gets an 80 % interval from the other windows' residuals (`ml.intervals`), so the metrics (in
the run report) include its coverage. The ensemble is then refit on every history week and
becomes the segment's model. If it cannot be fit, the LASSO alone is tried, then the trailing
historical average; the segment's note says why, and which members the blend used and why
(`members`: each member's validation record).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from demandops.core import telemetry
from demandops.core.pipeline_config import PipelineConfig
from ml import intervals, member_trial
from ml.ensemble import EnsembleForecaster
from ml.features import BASELINE_COLUMNS, CATEGORICAL_FEATURES, NUMERIC_FEATURES
from ml.fit_memo import FitMemo
from ml.member_trial import Trial
from ml.members import DEFAULT_MEMBERS, load_member
from ml.metrics import metrics_by
from ml.models import ColumnBaseline, LassoForecaster
from ml.segments import SEGMENT_COLUMNS, Segment, assign_segments, product_velocity, segments_of

log = logging.getLogger(__name__)

MIN_TRAIN_ROWS = 100
HOLDOUT_KEYS = ["store_id", "product_id", "week_start"]
MODEL_FEATURES = (*NUMERIC_FEATURES, *BASELINE_COLUMNS)


@dataclass(frozen=True)
class TrainParams:
    horizon_weeks: int
    backtest_origins: int
    velocity_threshold: float
    lasso_cv_folds: int
    lasso_calendar_slopes: bool = True  # per-product slopes on the calendar too (ml/models.py)
    ensemble_validation_weeks: int = 4  # each of the blend's backtest windows (ml/ensemble.py)
    ensemble_validation_windows: int = 3
    ensemble_objective: str = "wape"  # or "mape": see ml/ensemble.py
    ensemble_wape_tolerance: float = 0.05
    ensemble_volume_gate: float | None = None  # with "mape": see ml/ensemble.py
    nn_max_epochs: int = 30
    nn_warm_start: bool = True  # a segment's later net fits continue from its earlier ones
    nn_epoch_rows: int | None = 65_536  # training rows one net epoch samples at most; None: all
    nn_seeds: int = 3  # nets of different initial weights averaged
    random_state: int = 0
    ensemble_members: tuple[str, ...] = DEFAULT_MEMBERS  # "module:Class", see ml/members.py
    ensemble_trial: tuple[str, ...] = ()  # members joining where they win: ml/member_trial.py
    large_segment_rows: int | None = None  # a segment of more rows trains with `large_segment`
    large_segment: TrainParams | None = None

    @classmethod
    def from_config(cls, cfg: PipelineConfig, **overrides: Any) -> TrainParams:
        """The training parameters `config/pipeline.yaml` sets, `overrides` replacing some."""
        params = cls(
            horizon_weeks=cfg.horizon_weeks,
            backtest_origins=cfg.backtest_origins,
            velocity_threshold=cfg.velocity_threshold,
            lasso_cv_folds=cfg.lasso_cv_folds,
            lasso_calendar_slopes=cfg.lasso_calendar_slopes,
            ensemble_objective=cfg.ensemble_objective,
            ensemble_wape_tolerance=cfg.ensemble_wape_tolerance,
            ensemble_volume_gate=cfg.ensemble_volume_gate,
            ensemble_validation_windows=cfg.ensemble_validation_windows,
            ensemble_validation_weeks=cfg.ensemble_validation_weeks,
            nn_max_epochs=cfg.nn_max_epochs,
            nn_warm_start=cfg.nn_warm_start,
            nn_epoch_rows=cfg.nn_epoch_rows,
            nn_seeds=cfg.nn_seeds,
            ensemble_members=tuple(cfg.ensemble),
            ensemble_trial=tuple(cfg.ensemble_trial),
        )
        if cfg.large_segment_rows is not None:
            large = cls.from_config(cfg.for_large_segment(), **overrides)
            params = replace(params, large_segment_rows=cfg.large_segment_rows, large_segment=large)
        return replace(params, **overrides)

    def for_segment(self, rows: int) -> TrainParams:
        """The parameters a segment of `rows` training rows trains with."""
        if self.large_segment is None or self.large_segment_rows is None:
            return self
        return self.large_segment if rows > self.large_segment_rows else self


@dataclass
class SegmentModel:
    """The model that will forecast one segment, with why it was chosen."""

    segment: Segment
    kind: str  # "ensemble", "lasso" or "baseline"
    estimator: BaseEstimator
    n_rows: int
    note: str = ""
    members: list[dict[str, Any]] = field(default_factory=list)  # the blend's member checks


@dataclass
class TrainedRegion:
    region: str
    velocity: pd.Series  # product_id -> fast | slow, from the weeks before the first origin
    models: dict[str, SegmentModel]
    metrics: pd.DataFrame  # one row per segment × model over every backtest window
    holdout: pd.DataFrame  # actuals and every model's forecast in the backtest windows
    holdout_start: pd.Timestamp
    last_week: pd.Timestamp


def model_features(frame: pd.DataFrame) -> tuple[str, ...]:
    """The numeric model inputs: the standard features and any `event_*` columns present."""
    return (*MODEL_FEATURES, *sorted(c for c in frame.columns if c.startswith("event_")))


def lasso(params: TrainParams, features: tuple[str, ...] = MODEL_FEATURES) -> LassoForecaster:
    return LassoForecaster.for_segment(features, CATEGORICAL_FEATURES, params)


def ensemble(
    params: TrainParams,
    features: tuple[str, ...] = MODEL_FEATURES,
    fit_memo: FitMemo | None = None,
) -> EnsembleForecaster:
    """The configured members (`ensemble:` in config/pipeline.yaml), blended; `fit_memo` shares
    member fits between the ensembles of one segment (`ml.fit_memo`)."""
    return EnsembleForecaster(
        estimators=_members(params.ensemble_members, features, params),
        validation_weeks=params.ensemble_validation_weeks,
        validation_windows=params.ensemble_validation_windows,
        objective=params.ensemble_objective,
        wape_tolerance=params.ensemble_wape_tolerance,
        volume_gate=params.ensemble_volume_gate,
        fit_memo=fit_memo,
    )


def _members(
    paths: tuple[str, ...], features: tuple[str, ...], params: TrainParams
) -> list[tuple[str, BaseEstimator]]:
    """The named members at `paths` (``module:Class``), each set up for one segment."""
    members = map(load_member, paths)
    return [
        (m.forecaster_name, m.for_segment(features, CATEGORICAL_FEATURES, params)) for m in members
    ]


def baselines() -> dict[str, ColumnBaseline]:
    return {name: ColumnBaseline(name) for name in BASELINE_COLUMNS}


def backtest_origins(weeks: pd.Series, params: TrainParams) -> list[pd.Timestamp]:
    """The first week of each backtest window, oldest first; windows are H weeks long."""
    n_weeks = params.backtest_origins * params.horizon_weeks
    if len(weeks) <= n_weeks:
        raise ValueError(f"{len(weeks)} usable history weeks; the backtest alone needs {n_weeks}")
    return [weeks.iloc[-k * params.horizon_weeks] for k in range(params.backtest_origins, 0, -1)]


def train_region(features: pd.DataFrame, params: TrainParams) -> TrainedRegion:
    """Backtest and fit one model per segment of one region's feature table."""
    history = features[~features["is_future"] & features["units"].notna()]
    history = history.sort_values(["week_start", "store_id", "product_id"])
    weeks = history["week_start"].drop_duplicates().sort_values()
    origins = backtest_origins(weeks, params)
    velocity = product_velocity(_before(history, origins[0]), params.velocity_threshold)
    history = assign_segments(history, velocity)
    models: dict[str, SegmentModel] = {}
    predictions = []
    for segment in segments_of(history):
        part = history[_mask(history, segment)]
        with telemetry.step(
            "train_segment", region=segment.region, segment=segment.name, rows=len(part)
        ) as span:
            memo = FitMemo()
            holdout, model = train_segment(segment, part, origins, params, memo)
            predictions.append(holdout)
            models[segment.name] = model
            span.set(model=model.kind, member_fits=memo.misses)
    holdout = intervals.backtest(pd.concat(predictions, ignore_index=True))
    return TrainedRegion(
        region=str(history["region"].iloc[0]),
        velocity=velocity,
        models=models,
        metrics=metrics_by(holdout, [*SEGMENT_COLUMNS, "model"]),
        holdout=holdout,
        holdout_start=origins[0],
        last_week=weeks.iloc[-1],
    )


def train_segment(
    segment: Segment,
    part: pd.DataFrame,
    origins: list[pd.Timestamp],
    params: TrainParams,
    fit_memo: FitMemo,
) -> tuple[pd.DataFrame, SegmentModel]:
    """One segment's backtest forecasts and final model, their ensembles sharing member fits
    through `fit_memo`; the members on trial are tried once, on the weeks before the first
    origin, so the backtest sees no later week."""
    _, trial = _segment_params(params, len(part), _before(part, origins[0]), fit_memo)
    holdout = backtest_segment(segment, part, origins, params, fit_memo, trial)
    return holdout, final_model(segment, part, params, fit_memo, trial)


def _mask(frame: pd.DataFrame, segment: Segment) -> pd.Series:
    return (
        (frame["region"] == segment.region)
        & (frame["store_format"] == segment.store_format)
        & (frame["velocity"] == segment.velocity)
    )


def backtest_segment(
    segment: Segment,
    part: pd.DataFrame,
    origins: list[pd.Timestamp],
    params: TrainParams,
    fit_memo: FitMemo | None = None,
    trial: Trial | None = None,
) -> pd.DataFrame:
    """Every model's forecasts of every backtest window, fit on the weeks before its origin (the
    windows' ensembles share member fits through `fit_memo`, a new one if not given); the
    members on trial are tried on the weeks before the first origin unless `trial` is given."""
    fit_memo = FitMemo() if fit_memo is None else fit_memo
    params, _ = _segment_params(params, len(part), _before(part, origins[0]), fit_memo, trial)
    frames = []
    for origin in origins:
        train = _before(part, origin)
        window = part[
            (part["week_start"] >= origin)
            & (part["week_start"] < origin + pd.Timedelta(weeks=params.horizon_weeks))
        ]
        keys = window[[*SEGMENT_COLUMNS, *HOLDOUT_KEYS, "units"]].assign(origin=origin)
        forecasts = window_forecasts(segment, train, window, params, fit_memo)
        for name, forecast in forecasts.items():
            frames.append(keys.assign(model=name, forecast=forecast))
    return pd.concat(frames, ignore_index=True)


def window_forecasts(
    segment: Segment,
    train: pd.DataFrame,
    window: pd.DataFrame,
    params: TrainParams,
    fit_memo: FitMemo | None = None,
) -> dict[str, np.ndarray]:
    """Every model's forecasts of `window`, fit on `train` with the settings of a segment of its
    size; members on trial are tried on `train` (a round of `demandops backtest`)."""
    out: dict[str, np.ndarray] = {n: b.fit(train).predict(window) for n, b in baselines().items()}
    params, trial = _segment_params(params, len(train), train, fit_memo)
    if trial.note:
        log.info("segment %s, to %s: %s", segment.name, train["week_start"].max(), trial.note)
    try:
        blend = ensemble(params, model_features(train), fit_memo).fit(train, train["units"])
    except ValueError as exc:  # too few weeks or rows for the ensemble's validation split
        log.warning("segment %s: ensemble not evaluated at this origin: %s", segment.name, exc)
        return out
    out["ensemble"] = blend.predict(window)
    for name, member in blend.named_estimators_.items():
        out[name] = member.predict(window)
    return out


def final_model(
    segment: Segment,
    part: pd.DataFrame,
    params: TrainParams,
    fit_memo: FitMemo | None = None,
    trial: Trial | None = None,
) -> SegmentModel:
    """The ensemble fit on all history, else the LASSO, else the trailing average; the members
    on trial are tried on all history unless `trial` is given."""
    if len(part) < MIN_TRAIN_ROWS:
        note = f"{len(part)} history rows (< {MIN_TRAIN_ROWS}): historical average used"
        return SegmentModel(
            segment, "baseline", ColumnBaseline("hist_avg").fit(part), len(part), note
        )
    notes = [_large_note(params, len(part))]
    params, trial = _segment_params(params, len(part), part, fit_memo, trial)
    notes.append(trial.note)
    features = model_features(part)
    blend = ensemble(params, features, fit_memo)
    for kind, model in (("ensemble", blend), ("lasso", lasso(params, features))):
        try:
            fitted = model.fit(part, part["units"])
            note = _joined([*notes, getattr(fitted, "selection_note_", "")])
            members = getattr(fitted, "member_checks_", [])
            return SegmentModel(segment, kind, fitted, len(part), note, members)
        except ValueError as exc:
            notes.append(f"{kind} failed: {exc}")
    note = _joined([*notes, "historical average used"])
    return SegmentModel(segment, "baseline", ColumnBaseline("hist_avg").fit(part), len(part), note)


def _segment_params(
    params: TrainParams,
    rows: int,
    trial_rows: pd.DataFrame,
    fit_memo: FitMemo | None,
    trial: Trial | None = None,
) -> tuple[TrainParams, Trial]:
    """The settings of a segment of `rows` history rows, with the members on trial that joined
    among its ensemble's (tried on `trial_rows` unless `trial` is given), and the trial."""
    params = params.for_segment(rows)
    if trial is None:
        trial = run_trial(trial_rows, params, fit_memo)
    return _with_joined(params, trial), trial


def _before(part: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    return part[part["week_start"] < origin]


def run_trial(part: pd.DataFrame, params: TrainParams, fit_memo: FitMemo | None = None) -> Trial:
    """The verdicts on `params.ensemble_trial`'s members, fit beside the ensemble's members on
    `part` and scored on its first validation window (`ml.member_trial`)."""
    if not params.ensemble_trial:
        return Trial()
    features = model_features(part)
    trial = _members(params.ensemble_trial, features, params)
    try:
        found = member_trial.verdicts(
            ensemble(params, features, fit_memo), trial, part, part["units"]
        )
    except ValueError as exc:  # too few weeks for a validation window: the members alone
        return Trial(note=f"trial not run ({exc})")
    joined = tuple(path for path, v in zip(params.ensemble_trial, found, strict=True) if v.joined)
    return Trial(joined, _joined([v.note() for v in found]))


def _with_joined(params: TrainParams, trial: Trial) -> TrainParams:
    """`params` with the trial's winners among the ensemble's members and none left on trial."""
    members = (*params.ensemble_members, *trial.joined)
    return replace(params, ensemble_members=members, ensemble_trial=())


def _joined(notes: list[str]) -> str:
    return "; ".join(n for n in notes if n)


def _large_note(params: TrainParams, rows: int) -> str:
    """What the model card says of a segment trained with `large_segment`'s settings."""
    if params.for_segment(rows) is params:
        return ""
    limit = params.large_segment_rows
    return f"{rows} rows > large_segment_rows ({limit}): trained with large_segment's settings"
