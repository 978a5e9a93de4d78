"""Rolling-origin backtest of one region's feature table (`demandops backtest`).

A protocol is `rounds` rounds, `step` weeks apart; in each, the models are fit on every week up
to a cut and forecast the `horizon` weeks that follow a `gap` of weeks after it, the last
round's last forecast week being the last week of history. The feature table must be built with
lags of at least gap + horizon weeks (`Protocol.lead`), so that no forecast sees a week after
its cut. Per round: product velocity from the training weeks, segments, and per segment the same
models the batch trains (every ensemble member, the ensemble, both historical-average
baselines; or the models a `forecaster` makes), optionally beside peers fit on the whole
round (LightGBM on the same features, the `bench` extra).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.boosting import LightGBMMedianForecaster
from ml.features import CATEGORICAL_FEATURES
from ml.fit_memo import FitMemo
from ml.metrics import metrics_by
from ml.segments import (
    SEGMENT_COLUMNS,
    Segment,
    assign_segments,
    product_velocity,
    segments_of,
)
from ml.train import HOLDOUT_KEYS, TrainParams, model_features, window_forecasts

PEER_LEAVES = 63  # the LightGBM peers' leaves a tree, whatever the round's rows
# a peer model of a whole round: (training rows, forecast rows, cut) -> forecasts
Peer = Callable[[pd.DataFrame, pd.DataFrame, pd.Timestamp], np.ndarray]
# the models of one segment in one round: (segment, training rows, forecast rows, params, the
# segment's member fits of earlier rounds) -> forecasts by model name; by default the batch's
# (ml.train.window_forecasts)
Forecaster = Callable[
    [Segment, pd.DataFrame, pd.DataFrame, TrainParams, FitMemo], dict[str, np.ndarray]
]


@dataclass(frozen=True)
class Protocol:
    rounds: int = 4
    horizon: int = 4  # weeks forecast in each round
    gap: int = 0  # weeks between the last training week and the first forecast week
    step: int = 4  # weeks between the cuts of consecutive rounds

    def __post_init__(self) -> None:
        if min(self.rounds, self.horizon, self.step) < 1 or self.gap < 0:
            raise ValueError("rounds, horizon and step must be at least 1, gap at least 0")

    @property
    def lead(self) -> int:
        """The shortest lag the features may use: the farthest forecast week's distance."""
        return self.gap + self.horizon

    def cuts(self, weeks: pd.DatetimeIndex) -> list[tuple[pd.Timestamp, pd.DatetimeIndex]]:
        """(last training week, forecast weeks) of every round, oldest first, counted in
        calendar weeks back from the last of `weeks` (weeks without data are still weeks)."""
        week = pd.Timedelta(weeks=1)
        last, first = weeks.max(), weeks.min()
        out = []
        for k in range(self.rounds - 1, -1, -1):
            end = last - k * self.step * week
            targets = pd.date_range(end - (self.horizon - 1) * week, end, freq="7D")
            out.append((targets[0] - (self.gap + 1) * week, targets))
        if out[0][0] <= first:
            span = (last - first) // week + 1
            needed = (self.rounds - 1) * self.step + self.lead + 1
            raise ValueError(f"{span} weeks of history; this protocol needs more than {needed}")
        return out


def rolling_origin(
    features: pd.DataFrame,
    protocol: Protocol,
    params: TrainParams,
    peers: dict[str, Peer] | None = None,
    forecaster: Forecaster = window_forecasts,
) -> pd.DataFrame:
    """Every model's forecast of every round's weeks: segment columns, keys, `round` (the cut),
    `units`, `model`, `forecast`. Segment models per segment, peers on the whole round."""
    history = features[~features["is_future"] & features["units"].notna()]
    history = history.sort_values(["week_start", "store_id", "product_id"])
    weeks = pd.DatetimeIndex(history["week_start"].drop_duplicates().sort_values())
    frames = []
    memos: dict[str, FitMemo] = defaultdict(FitMemo)  # rounds overlap: members fit once per cut
    for cut, targets in protocol.cuts(weeks):
        train = history[history["week_start"] <= cut]
        test = history[history["week_start"].isin(targets)]
        velocity = product_velocity(train, params.velocity_threshold)
        train, test = assign_segments(train, velocity), assign_segments(test, velocity)
        keys = test[[*SEGMENT_COLUMNS, *HOLDOUT_KEYS, "units"]].assign(round=cut)
        for segment in segments_of(train):
            rows = _in(test, segment)
            if rows.any():
                part = train[_in(train, segment)]
                found = forecaster(segment, part, test[rows], params, memos[segment.name])
                frames += [keys[rows].assign(model=m, forecast=f) for m, f in found.items()]
        for name, peer in (peers or {}).items():
            frames.append(keys.assign(model=name, forecast=peer(train, test, cut)))
    if not frames:
        raise ValueError("no round had a segment with both training and forecast weeks")
    return pd.concat(frames, ignore_index=True)


def _in(frame: pd.DataFrame, segment: Segment) -> pd.Series:
    return (
        (frame["region"] == segment.region)
        & (frame["store_format"] == segment.store_format)
        & (frame["velocity"] == segment.velocity)
    )


def summary(forecasts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics (MAPE, WAPE, RMSE, RMSE0, bias) per segment and model, and per model overall."""
    return metrics_by(forecasts, [*SEGMENT_COLUMNS, "model"]), metrics_by(forecasts, ["model"])


def lightgbm_peer(
    train: pd.DataFrame,
    test: pd.DataFrame,
    cut: pd.Timestamp | None = None,
    objective: str = "log",
    random_state: int = 0,
) -> np.ndarray:
    """LightGBM on the same features (store and product as categories) fit on the whole round,
    63 leaves a tree: on log1p(units) with squared error, the median trees
    (`ml.boosting.LightGBMMedianForecaster`); or with `objective="mape"` on units with
    LightGBM's MAPE objective. `random_state` seeds its row and column sampling."""
    columns = tuple(model_features(train))
    categories = tuple(c for c in CATEGORICAL_FEATURES if c in ("store_id", "product_id"))
    if objective != "mape":
        trees = LightGBMMedianForecaster(
            columns, categories, num_leaves=PEER_LEAVES, random_state=random_state
        )
        return trees.fit(train, train["units"]).predict(test)
    import lightgbm as lgb

    X, Xt = train[[*columns, *categories]].copy(), test[[*columns, *categories]].copy()
    for c in categories:
        X[c] = X[c].astype("category")
        Xt[c] = pd.Categorical(Xt[c], categories=X[c].cat.categories)
    model = lgb.LGBMRegressor(
        objective="mape", n_estimators=600, learning_rate=0.03, num_leaves=PEER_LEAVES,
        min_child_samples=20, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
        random_state=random_state, verbose=-1, n_jobs=1,
    )  # fmt: skip
    return np.clip(model.fit(X, train["units"]).predict(Xt), 0.0, None)
