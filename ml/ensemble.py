"""A weighted blend of forecasters, the weights fit on a time-based validation window.

`fit` holds out the most recent `validation_weeks` weeks, fits every member on the weeks
before, and picks the convex weights (a grid with step `weight_step`) that minimise WAPE on the
held-out weeks; then it refits every member on all the data. WAPE, not MAPE, picks the weights
so that a blend cannot improve its score by forecasting low.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted


class EnsembleForecaster(RegressorMixin, BaseEstimator):
    """Blend of `estimators` (a list of (name, estimator)), weights fit on recent weeks."""

    def __init__(
        self,
        estimators: list[tuple[str, BaseEstimator]] | None = None,
        time_column: str = "week_start",
        validation_weeks: int = 8,
        weight_step: float = 0.05,
    ) -> None:
        self.estimators = estimators
        self.time_column = time_column
        self.validation_weeks = validation_weeks
        self.weight_step = weight_step

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> EnsembleForecaster:
        if not self.estimators:
            raise ValueError("EnsembleForecaster needs at least one (name, estimator)")
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
        self.weights_ = _best_weights(y[late], val_preds, self.weight_step)
        self.validation_wape_ = _wape(y[late], val_preds @ self.weights_)
        self.estimators_ = [clone(est).fit(X, y) for _, est in self.estimators]
        self.named_estimators_ = {
            name: est for (name, _), est in zip(self.estimators, self.estimators_, strict=True)
        }
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        preds = np.column_stack([est.predict(X) for est in self.estimators_])
        return np.clip(preds @ self.weights_, 0.0, None)


def _wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    total = actual.sum()
    return float(np.abs(forecast - actual).sum() / total) if total > 0 else float("inf")


def _best_weights(actual: np.ndarray, preds: np.ndarray, step: float) -> np.ndarray:
    """Convex weights on a grid minimising WAPE; ties go to the earlier candidate."""
    n = preds.shape[1]
    ticks = np.round(np.arange(0.0, 1.0 + step / 2, step), 10)
    best, best_w = np.inf, np.full(n, 1.0 / n)
    for head in itertools.product(ticks, repeat=n - 1):
        last = 1.0 - sum(head)
        if last < -1e-9:
            continue
        w = np.array([*head, max(last, 0.0)])
        score = _wape(actual, preds @ w)
        if score < best - 1e-12:
            best, best_w = score, w
    return best_w
