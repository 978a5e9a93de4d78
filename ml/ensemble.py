"""A weighted blend of forecasters, the weights fit on a time-based validation window.

`fit` holds out the most recent `validation_weeks` weeks, fits every member on the weeks
before, and picks the convex weights (a grid with step `weight_step`) that minimise the
`objective` on the held-out weeks; then it refits every member on all the data.

The objective is WAPE by default, so that a blend cannot improve its score by forecasting low.
With `objective="mape"` the weights minimise MAPE instead, and the blend is also multiplied by
the factor `scale_` (≤ 1) that minimises the validation MAPE while keeping the validation WAPE
within `wape_tolerance` (relative) of the unscaled blend's. The members fit log units and so
forecast roughly the median; MAPE's optimum lies lower still (under-forecasting a row costs at
most 100 %, over-forecasting is unbounded), so this trades bias for MAPE: the validation bias
is kept in `validation_bias_` and every backtest reports it beside MAPE and WAPE. Under-
forecasting costs a direct-store-delivery business stockouts; choose "mape" only when MAPE is
the measure that counts, and bound the WAPE it may give up.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from ml.metrics import bias, mape, wape

OBJECTIVES = ("wape", "mape")
SCALES = np.round(np.arange(0.50, 1.0001, 0.01), 2)  # the factors `objective="mape"` may pick


class EnsembleForecaster(RegressorMixin, BaseEstimator):
    """Blend of `estimators` (a list of (name, estimator)), weights fit on recent weeks."""

    def __init__(
        self,
        estimators: list[tuple[str, BaseEstimator]] | None = None,
        time_column: str = "week_start",
        validation_weeks: int = 8,
        weight_step: float = 0.05,
        objective: str = "wape",
        wape_tolerance: float = 0.05,
    ) -> None:
        self.estimators = estimators
        self.time_column = time_column
        self.validation_weeks = validation_weeks
        self.weight_step = weight_step
        self.objective = objective
        self.wape_tolerance = wape_tolerance

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> EnsembleForecaster:
        if not self.estimators:
            raise ValueError("EnsembleForecaster needs at least one (name, estimator)")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r}: choose one of {', '.join(OBJECTIVES)}")
        y = np.asarray(y, dtype=float)
        weeks = np.sort(X[self.time_column].unique())
        if len(weeks) <= self.validation_weeks:
            raise ValueError(
                f"{len(weeks)} weeks of data; the validation window alone needs "
                f"{self.validation_weeks} and the members need more"
            )
        late = (X[self.time_column] >= weeks[-self.validation_weeks]).to_numpy()
        val_preds = np.column_stack(
            [clone(est).fit(X[~late], y[~late]).predict(X[late]) for _, est in self.estimators]
        )
        self.validation_actual_, self.validation_predictions_ = y[late], val_preds
        self._blend()
        self.estimators_ = [clone(est).fit(X, y) for _, est in self.estimators]
        self.named_estimators_ = {
            name: est for (name, _), est in zip(self.estimators, self.estimators_, strict=True)
        }
        self.n_features_in_ = X.shape[1]
        return self

    def _blend(self) -> None:
        """Weights (and with "mape" the scale) from the members' validation forecasts."""
        actual, preds = self.validation_actual_, self.validation_predictions_
        score = _mape if self.objective == "mape" else _wape
        self.weights_ = _best_weights(actual, preds, self.weight_step, score)
        blend = preds @ self.weights_
        self.scale_ = 1.0
        if self.objective == "mape":
            self.scale_ = _mape_scale(actual, blend, self.wape_tolerance)
        self.validation_wape_ = _wape(actual, blend * self.scale_)
        self.validation_mape_ = _mape(actual, blend * self.scale_)
        self.validation_bias_ = bias(actual, blend * self.scale_)

    def reblended(self, objective: str) -> EnsembleForecaster:
        """A copy blended for `objective`, sharing the fitted members: what fitting with that
        objective gives (the members do not depend on it), without fitting them again."""
        check_is_fitted(self, "estimators_")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
        other = copy.copy(self)
        other.objective = objective
        other._blend()
        return other

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        preds = np.column_stack([est.predict(X) for est in self.estimators_])
        return np.clip(preds @ self.weights_ * self.scale_, 0.0, None)


def _wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """`ml.metrics.wape`, +inf where undefined so that any defined score beats it."""
    return _or_inf(wape(actual, forecast))


def _mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """`ml.metrics.mape`, +inf where undefined so that any defined score beats it."""
    return _or_inf(mape(actual, forecast))


def _or_inf(score: float) -> float:
    return float("inf") if np.isnan(score) else score


def _mape_scale(actual: np.ndarray, forecast: np.ndarray, wape_tolerance: float) -> float:
    """The factor in SCALES with the lowest MAPE whose WAPE stays within the tolerance."""
    ceiling = _wape(actual, forecast) * (1.0 + wape_tolerance)
    best, best_scale = _mape(actual, forecast), 1.0
    for scale in SCALES:
        scaled = forecast * scale
        score = _mape(actual, scaled)
        if score < best - 1e-12 and _wape(actual, scaled) <= ceiling:
            best, best_scale = score, float(scale)
    return best_scale


def _best_weights(
    actual: np.ndarray,
    preds: np.ndarray,
    step: float,
    score: Callable[[np.ndarray, np.ndarray], float] = _wape,
) -> np.ndarray:
    """Convex weights on a grid minimising `score`; ties go to the earlier candidate."""
    n = preds.shape[1]
    ticks = np.round(np.arange(0.0, 1.0 + step / 2, step), 10)
    best, best_w = np.inf, np.full(n, 1.0 / n)
    for head in itertools.product(ticks, repeat=n - 1):
        last = 1.0 - sum(head)
        if last < -1e-9:
            continue
        w = np.array([*head, max(last, 0.0)])
        current = score(actual, preds @ w)
        if current < best - 1e-12:
            best, best_w = current, w
    return best_w
