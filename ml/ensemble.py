"""A weighted blend of forecasters, the weights fit on a time-based validation window.

`fit` holds out the most recent `validation_weeks` weeks, fits every member on the weeks
before, and picks the convex weights (a grid with step `weight_step`) that minimise the
`objective` on the held-out weeks; then it refits every member on all the data.

The objective is WAPE by default, so that a blend cannot improve its score by forecasting low.
With `objective="mape"` the weights minimise MAPE instead, and the blend is shrunk: the members
fit log units and so forecast roughly the median, and MAPE's optimum lies lower (under-
forecasting a row costs at most 100 %, over-forecasting is unbounded) — for a log-normal error
of variance σ², exp(−σ²) times the median. So a row's forecast is multiplied by
`scale_ · exp(−dispersion_coef_ · d)`, d the row's `dispersion_column` (by default the
series' variance of log units over its history, `log_var_shipped`: a series whose sales swing
more is shrunk more), the two factors chosen on a grid to minimise the validation MAPE while
keeping the validation WAPE within `wape_tolerance` (relative) of the unshrunk blend's. Without
that column in the data, `dispersion_coef_` is 0 and one factor scales every row.

This trades bias for MAPE: the validation bias is kept in `validation_bias_` and every
backtest reports it beside MAPE and WAPE. Under-forecasting costs a direct-store-delivery
business stockouts; choose "mape" only when MAPE is the measure that counts, and bound the WAPE
it may give up.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from ml.features import DISPERSION_COLUMN
from ml.metrics import bias, check_objective, mape, wape

SCALES = np.round(np.arange(0.50, 1.5001, 0.01), 2)  # the factors `objective="mape"` may pick
DISPERSION_COEFS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)  # and the shrinkages


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
        dispersion_column: str | None = DISPERSION_COLUMN,
    ) -> None:
        self.estimators = estimators
        self.time_column = time_column
        self.validation_weeks = validation_weeks
        self.weight_step = weight_step
        self.objective = objective
        self.wape_tolerance = wape_tolerance
        self.dispersion_column = dispersion_column

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> EnsembleForecaster:
        if not self.estimators:
            raise ValueError("EnsembleForecaster needs at least one (name, estimator)")
        check_objective(self.objective)
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
        self.uses_dispersion_ = self.dispersion_column in X.columns
        self.validation_dispersion_ = self._dispersion(X[late])
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
        self.scale_, self.dispersion_coef_ = 1.0, 0.0
        if self.objective == "mape":
            self.scale_, self.dispersion_coef_ = _mape_shrinkage(
                actual, blend, self.validation_dispersion_, self.wape_tolerance
            )
        shrunk = blend * self._shrinkage(self.validation_dispersion_)
        self.validation_wape_ = _wape(actual, shrunk)
        self.validation_mape_ = _mape(actual, shrunk)
        self.validation_bias_ = bias(actual, shrunk)

    def __setstate__(self, state: dict[str, object]) -> None:
        """Models pickled before the dispersion shrinkage scale every row by `scale_` alone."""
        if "scale_" in state:
            state = {"uses_dispersion_": False, "dispersion_coef_": 0.0, **state}
        state = {"dispersion_column": None, **state}
        super().__setstate__(state)  # type: ignore[misc]

    def _dispersion(self, X: pd.DataFrame) -> np.ndarray:
        """Each row's `dispersion_column` (0 where the fit data had no such column)."""
        if not self.uses_dispersion_:
            return np.zeros(len(X))
        if self.dispersion_column not in X.columns:
            raise ValueError(
                f"the data has no column {self.dispersion_column!r}; the model was fit with it"
            )
        return np.nan_to_num(X[self.dispersion_column].to_numpy(dtype=float))

    def _shrinkage(self, dispersion: np.ndarray) -> np.ndarray:
        return self.scale_ * np.exp(-self.dispersion_coef_ * dispersion)

    def reblended(
        self, objective: str, members: tuple[str, ...] | None = None
    ) -> EnsembleForecaster:
        """A copy blended for `objective`, sharing the fitted members: what fitting with that
        objective gives (the members do not depend on it), without fitting them again.
        `members` (names) keeps only those members, as if the others had not been configured."""
        check_is_fitted(self, "estimators_")
        check_objective(objective)
        configured = list(self.estimators or [])
        names = [name for name, _ in configured]
        keep = names if members is None else list(members)
        unknown = sorted(set(keep) - set(names))
        if unknown or not keep:
            raise ValueError(f"members {unknown or keep}: choose among {', '.join(names)}")
        index = [names.index(name) for name in keep]
        other = copy.copy(self)
        other.objective = objective
        other.estimators = [configured[i] for i in index]
        other.estimators_ = [self.estimators_[i] for i in index]
        other.named_estimators_ = {name: self.named_estimators_[name] for name in keep}
        other.validation_predictions_ = self.validation_predictions_[:, index]
        other._blend()
        return other

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        preds = np.column_stack([est.predict(X) for est in self.estimators_])
        return np.clip(preds @ self.weights_ * self._shrinkage(self._dispersion(X)), 0.0, None)


def _wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """`ml.metrics.wape`, +inf where undefined so that any defined score beats it."""
    return _or_inf(wape(actual, forecast))


def _mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """`ml.metrics.mape`, +inf where undefined so that any defined score beats it."""
    return _or_inf(mape(actual, forecast))


def _or_inf(score: float) -> float:
    return float("inf") if np.isnan(score) else score


def _mape_shrinkage(
    actual: np.ndarray, forecast: np.ndarray, dispersion: np.ndarray, wape_tolerance: float
) -> tuple[float, float]:
    """(scale, coefficient) from SCALES × DISPERSION_COEFS with the lowest MAPE of
    `forecast · scale · exp(−coefficient · dispersion)` whose WAPE stays within the tolerance;
    (1, 0) if none beats the forecast itself. Ties go to the smaller coefficient, then scale."""
    ceiling = _wape(actual, forecast) * (1.0 + wape_tolerance)
    best, chosen = _mape(actual, forecast), (1.0, 0.0)
    coefs = DISPERSION_COEFS if dispersion.any() else (0.0,)
    for coef in coefs:
        shrunk = forecast * np.exp(-coef * dispersion)
        for scale in SCALES:
            score = _mape(actual, shrunk * scale)
            if score < best - 1e-12 and _wape(actual, shrunk * scale) <= ceiling:
                best, chosen = score, (float(scale), coef)
    return chosen


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
