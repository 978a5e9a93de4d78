"""A weighted blend of forecasters, the weights chosen on several backtest windows.

`fit` holds out the last `validation_windows` windows of `validation_weeks` weeks each; for
each window it fits every member on the weeks before it and forecasts the window (a
rolling-origin backtest). From those forecasts `ml.blend.select` excludes degenerate members,
drops members whose bias or error is out of line with the best member's, picks the convex
weights (a grid with step `weight_step`) that minimise the `objective`, and shrinks them towards
the best member by how clearly the blend beats it (`member_checks_` and `selection_note_` say
what was used and why; with the volume gate below, each check also has its `peak_weight`).
Then it refits every member on all the data. Cost: `validation_windows` + 1 fits of every
member, fewer where a shared `fit_memo` (`ml.fit_memo`) has fit a member on the same rows
before.

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

With `volume_gate` g set as well, the members are blended a second time, for WAPE, and a row
moves from the shrunk MAPE blend to the WAPE blend as the latter's forecast rises above the
segment's mean units (of the validation windows): the share of the WAPE blend is z² / (1 + z²),
z = g × its forecast / the mean, interpolated in log1p(units). A row's weight in MAPE + λ ×
WAPE is 1/units + λ/mean units: above mean/λ units the WAPE term dominates, and its best
forecast is the median rather than MAPE's lower optimum. Promotion weeks, selling many times a
series' usual units, are where the shrunk blend loses its WAPE; ordinary weeks keep their MAPE.
The square (a steeper gate than that weight's) and Dominick's g = 0.25 were chosen on
Dominick's rounds (benchmarks/accuracy/README.md). A member with `blended_for = ("wape",)`
(`ml.boosting.LightGBMMedianForecaster`, aimed at the median) enters only the blend for WAPE.

This trades bias for MAPE: the validation bias is kept in `validation_bias_` and every
backtest reports it beside MAPE and WAPE. Under-forecasting costs a direct-store-delivery
business stockouts; choose "mape" only when MAPE is the measure that counts, and bound the WAPE
it may give up.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import TypeVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from ml import targets
from ml.blend import Rules, Selection, Validation, select
from ml.features import DISPERSION_COLUMN
from ml.fit_memo import FitMemo
from ml.metrics import bias, check_objective, mape, wape

SCALES = np.round(np.arange(0.50, 1.5001, 0.01), 2)  # the factors `objective="mape"` may pick
DISPERSION_COEFS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)  # and the shrinkages
SERIES_COLUMNS = ("store_id", "product_id")  # a series, the unit of the blend's noise estimate

Frame = TypeVar("Frame", pd.DataFrame, np.ndarray)


class EnsembleForecaster(RegressorMixin, BaseEstimator):
    """Blend of `estimators` (a list of (name, estimator)), weights chosen on backtest windows.

    `bias_tolerance`, `error_tolerance` and `degenerate_ratio` are the rules of `ml.blend`.
    `fit_memo` shares fitted members with other ensembles fit on overlapping weeks; it is not
    pickled with the model.
    """

    def __init__(
        self,
        estimators: list[tuple[str, BaseEstimator]] | None = None,
        time_column: str = "week_start",
        validation_weeks: int = 4,
        validation_windows: int = 3,
        weight_step: float = 0.05,
        objective: str = "wape",
        wape_tolerance: float = 0.05,
        dispersion_column: str | None = DISPERSION_COLUMN,
        bias_tolerance: float = 0.10,
        error_tolerance: float = 0.5,
        degenerate_ratio: float = 3.0,
        volume_gate: float | None = None,
        fit_memo: FitMemo | None = None,
    ) -> None:
        self.estimators = estimators
        self.time_column = time_column
        self.validation_weeks = validation_weeks
        self.validation_windows = validation_windows
        self.weight_step = weight_step
        self.objective = objective
        self.wape_tolerance = wape_tolerance
        self.dispersion_column = dispersion_column
        self.bias_tolerance = bias_tolerance
        self.error_tolerance = error_tolerance
        self.degenerate_ratio = degenerate_ratio
        self.volume_gate = volume_gate
        self.fit_memo = fit_memo

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> EnsembleForecaster:
        if not self.estimators:
            raise ValueError("EnsembleForecaster needs at least one (name, estimator)")
        check_objective(self.objective)
        if self.volume_gate is not None and not self.volume_gate > 0:
            raise ValueError(f"volume_gate must be positive or None, got {self.volume_gate}")
        if self.validation_windows < 1 or self.validation_weeks < 1:
            raise ValueError("validation_windows and validation_weeks must be at least 1")
        y = targets.units(y)
        windows = []
        for early, late in self._window_masks(X):
            fits = self._fit_each(_rows(X, early), _rows(y, early))
            window = _rows(X, late)
            windows.append((late, np.column_stack([fitted.predict(window) for fitted in fits])))
        rows = np.concatenate([np.flatnonzero(late) for late, _ in windows])
        self.validation_actual_ = y[rows]
        self.validation_predictions_ = np.vstack([preds for _, preds in windows])
        self.validation_groups_ = _series(X.iloc[rows])
        self.uses_dispersion_ = self.dispersion_column in X.columns
        self.validation_dispersion_ = self._dispersion(X.iloc[rows])
        self._blend()
        self.estimators_ = self._fit_each(X, y)
        self.named_estimators_ = {
            name: est for (name, _), est in zip(self.estimators, self.estimators_, strict=True)
        }
        self.n_features_in_ = X.shape[1]
        return self

    def first_window(
        self, X: pd.DataFrame, y: pd.Series | np.ndarray, others: list[BaseEstimator]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The actuals of the first validation window and, per column, the forecasts of it by
        each member and then each of `others`, fit on the weeks before it (through the memo:
        `fit` then finds the members' fits made here)."""
        y = targets.units(y)
        early, late = self._window_masks(X)[0]
        fits = self._fit_each(_rows(X, early), _rows(y, early), others)
        window = _rows(X, late)
        return _rows(y, late), np.column_stack([fitted.predict(window) for fitted in fits])

    def _window_masks(self, X: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per validation window, oldest first: the rows before it and the rows in it."""
        times = X[self.time_column]
        starts = self._window_starts(X)
        masks = []
        for k, start in enumerate(starts):
            early = (times < start).to_numpy()
            late = ~early & (times < starts[k + 1] if k + 1 < len(starts) else True)
            masks.append((early, np.asarray(late, dtype=bool)))
        return masks

    def _fit_each(
        self, X: pd.DataFrame, y: np.ndarray, others: list[BaseEstimator] | None = None
    ) -> list[BaseEstimator]:
        """A clone of every member (then of each of `others`) fit on (X, y), through the memo
        if there is one."""
        members = [est for _, est in self.estimators or []] + list(others or [])
        if self.fit_memo is None:
            return [clone(est).fit(X, y) for est in members]
        return self.fit_memo.fit_each(members, X, y)

    def _window_starts(self, X: pd.DataFrame) -> list[object]:
        """The first week of each validation window, oldest first."""
        weeks = np.sort(X[self.time_column].unique())
        held = self.validation_windows * self.validation_weeks
        if len(weeks) <= held:
            raise ValueError(
                f"{len(weeks)} weeks of data; the validation windows alone need {held} "
                "and the members need more"
            )
        return [weeks[-k * self.validation_weeks] for k in range(self.validation_windows, 0, -1)]

    def _blend(self) -> None:
        """Members, weights (and with "mape" the scale, and the WAPE blend of the gate) from
        the validation forecasts."""
        actual, preds = self.validation_actual_, self.validation_predictions_
        rules = Rules(
            self.objective,
            self.weight_step,
            self.bias_tolerance,
            self.error_tolerance,
            self.degenerate_ratio,
        )
        selection = self._select(rules)
        self.weights_ = selection.weights
        self.member_checks_ = [c.record() for c in selection.checks]
        self.selection_note_ = selection.note()
        blend = _combine(preds, self.weights_)
        self.scale_, self.dispersion_coef_ = 1.0, 0.0
        if self.objective == "mape":
            self.scale_, self.dispersion_coef_ = _mape_shrinkage(
                actual, blend, self.validation_dispersion_, self.wape_tolerance
            )
        shrunk = blend * self._shrinkage(self.validation_dispersion_)
        self.peak_weights_: np.ndarray | None = None
        if self.objective == "mape" and self.volume_gate is not None:
            peaks = self._select(replace(rules, objective="wape"))
            self.peak_weights_, self.gate_mean_ = peaks.weights, float(np.mean(actual))
            for record, weight in zip(self.member_checks_, peaks.weights, strict=True):
                record["peak_weight"] = round(float(weight), 6)  # in the blend for WAPE
            self.selection_note_ += f"; above the mean (volume gate {self.volume_gate:g}): "
            self.selection_note_ += peaks.note()
            shrunk = self._gated(shrunk, _combine(preds, self.peak_weights_))
        self.validation_wape_ = _wape(actual, shrunk)
        self.validation_mape_ = _mape(actual, shrunk)
        self.validation_bias_ = bias(actual, shrunk)

    def _select(self, rules: Rules) -> Selection:
        """`ml.blend.select` with the members that may not enter a blend for
        `rules.objective` excluded: a member with `blended_for` (objectives) enters no
        other's, unless it is the only one."""
        configured = self.estimators or []
        validation = Validation(
            self.validation_actual_, self.validation_predictions_, self.validation_groups_
        )
        excluded = {
            name: _blended_only(est)
            for name, est in configured
            if rules.objective not in getattr(est, "blended_for", (rules.objective,))
        }
        return select(validation, [name for name, _ in configured], rules, excluded)

    def _gated(self, low: np.ndarray, peak: np.ndarray) -> np.ndarray:
        """Per row, from `low` (the shrunk MAPE blend) towards `peak` (the WAPE blend) by the
        volume gate's share (see the module's docstring)."""
        gate = self.volume_gate or 0.0
        z = np.minimum(gate * peak / max(self.gate_mean_, 1e-9), 1e6)
        share = z**2 / (1.0 + z**2)
        low, peak = np.clip(low, 0.0, None), np.clip(peak, 0.0, None)
        return np.expm1((1.0 - share) * np.log1p(low) + share * np.log1p(peak))

    def __getstate__(self) -> dict[str, object]:
        """The state without the memo: its other fits belong to the training run."""
        return {**super().__getstate__(), "fit_memo": None}  # type: ignore[misc]

    def __setstate__(self, state: dict[str, object]) -> None:
        """Models pickled before the dispersion shrinkage scale every row by `scale_` alone;
        those pickled before the backtest windows had one window and no member rules; those
        before the volume gate have none."""
        if "scale_" in state:
            state = {"uses_dispersion_": False, "dispersion_coef_": 0.0, **state}
        state = {"dispersion_column": None, "validation_windows": 1, **state}
        state = {"bias_tolerance": np.inf, "error_tolerance": np.inf, **state}
        state = {"degenerate_ratio": np.inf, "fit_memo": None, **state}
        state = {"volume_gate": None, "peak_weights_": None, **state}
        actual = state.get("validation_actual_")
        if isinstance(actual, np.ndarray) and "validation_groups_" not in state:
            state["validation_groups_"] = np.arange(len(actual))
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
        used = self.weights_ > 0
        if self.peak_weights_ is not None:
            used |= self.peak_weights_ > 0
        preds = np.zeros((len(X), len(self.weights_)))
        for j in np.flatnonzero(used):
            preds[:, j] = self.estimators_[j].predict(X)
        forecast = _combine(preds, self.weights_) * self._shrinkage(self._dispersion(X))
        if self.peak_weights_ is not None:
            forecast = self._gated(forecast, _combine(preds, self.peak_weights_))
        return np.clip(forecast, 0.0, None)


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


def _blended_only(member: BaseEstimator) -> str:
    return f"blended for {' and '.join(o.upper() for o in member.blended_for)} only"


def _rows(data: Frame, mask: np.ndarray) -> Frame:
    """The rows of `data` where `mask` holds: a slice, not a copy, where they are contiguous
    (as a time-sorted segment's weeks before a cut-off are)."""
    where = np.flatnonzero(mask)
    if len(where) and where[-1] - where[0] + 1 == len(where):
        part = slice(int(where[0]), int(where[-1]) + 1)
        return data.iloc[part] if isinstance(data, pd.DataFrame) else data[part]
    return data[mask]


def _combine(preds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted sum over the members with weight (an excluded member's inf is ignored)."""
    used = weights > 0
    return preds[:, used] @ weights[used]


def _series(X: pd.DataFrame) -> np.ndarray:
    """Each row's series (store × product) as an integer code; each row its own without them."""
    columns = [c for c in SERIES_COLUMNS if c in X.columns]
    if not columns:
        return np.arange(len(X))
    return X.groupby(columns, sort=False, observed=True).ngroup().to_numpy()
