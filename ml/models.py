"""Forecasters as scikit-learn estimators: `fit(X, y)` returns self, predictions are ≥ 0.

The LASSO is fit on log1p(units): demand is multiplicative (store × product × season ×
promotion), and the log compresses the heavy right tail of fast movers so slow movers with many
zero weeks are not swamped. Predictions are transformed back with expm1 and clipped at 0.

Products respond differently to price and promotion (a premium brand's buyers are less price
sensitive than a store brand's), and each has its own seasonal curve, holiday lift and trend,
so the LASSO can give each product its own slope on the planned-promotion and calendar
features (`sloped`, one column per product level of `slopes_by`, zero for the other products'
rows); the LASSO keeps the slopes the data supports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LassoCV
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted

PLANNED_FEATURES = ("promo", "discount")  # and every `event_*` column: known ahead, per product
SEASONAL_FEATURES = ("woy_sin1", "woy_cos1", "woy_sin2", "woy_cos2", "holiday", "trend_years")


def planned(numeric: tuple[str, ...]) -> tuple[str, ...]:
    """The features of planned promotions and prices among `numeric`."""
    return tuple(c for c in numeric if c in PLANNED_FEATURES or c.startswith("event_"))


def per_product(numeric: tuple[str, ...]) -> tuple[str, ...]:
    """The features each product gets its own slope on: planned ones, season, holidays, trend."""
    return (*planned(numeric), *(c for c in numeric if c in SEASONAL_FEATURES))


class LassoForecaster(RegressorMixin, BaseEstimator):
    """Standard scaling + LASSO on log1p(target), alpha chosen by time-series cross-validation.

    With `slopes_by` (a column of X, e.g. product_id), each feature in `sloped` also gets one
    slope per level seen in training. Rows must be in time order (oldest first) for the
    cross-validation to respect time.
    """

    forecaster_name = "lasso"

    @classmethod
    def for_segment(
        cls, numeric: tuple[str, ...], categorical: tuple[str, ...], params: Any
    ) -> LassoForecaster:
        """The ensemble member for one segment (numeric features only)."""
        return cls(
            features=numeric,
            n_splits=params.lasso_cv_folds,
            slopes_by="product_id",
            sloped=per_product(numeric) if params.lasso_calendar_slopes else planned(numeric),
        )

    def __init__(
        self,
        features: tuple[str, ...] | None = None,
        n_splits: int = 4,
        n_alphas: int = 30,
        max_iter: int = 20000,
        slopes_by: str | None = None,
        sloped: tuple[str, ...] = (),
    ) -> None:
        self.features = features
        self.n_splits = n_splits
        self.n_alphas = n_alphas
        self.max_iter = max_iter
        self.slopes_by = slopes_by
        self.sloped = sloped

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True  # log1p needs targets ≥ 0 (unit counts)
        return tags

    def _columns(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        columns = X if self.features is None else X[list(self.features)]  # type: ignore[index]
        if self.slopes_by is None or not self.sloped:
            return columns
        frame = pd.DataFrame(X)
        slopes = _slopes(frame, self.slopes_by, self.sloped, self.slope_levels_)
        return pd.concat([pd.DataFrame(columns), slopes.set_index(frame.index)], axis=1)

    def fit(self, X: pd.DataFrame | np.ndarray, y: pd.Series | np.ndarray) -> LassoForecaster:
        """Fit on rows in time order; `features` (default: every column) must be numeric."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        y = np.asarray(y, dtype=float)
        if len(y) <= self.n_splits:
            raise ValueError(
                f"time-series cross-validation with {self.n_splits} splits needs more samples, "
                f"got n_samples = {len(y)}"
            )
        if self.slopes_by is not None:
            self.slope_levels_ = sorted(pd.DataFrame(X)[self.slopes_by].astype(str).unique())
        cv = TimeSeriesSplit(n_splits=self.n_splits)
        lasso = LassoCV(alphas=self.n_alphas, cv=cv, max_iter=self.max_iter, tol=1e-3)
        X = self._columns(X)
        self.pipeline_: Pipeline = make_pipeline(StandardScaler(), lasso).fit(X, np.log1p(y))
        self.alpha_ = float(lasso.alpha_)
        self.n_iter_ = int(lasso.n_iter_)
        self.n_features_in_ = self.pipeline_.n_features_in_
        if hasattr(self.pipeline_, "feature_names_in_"):
            self.feature_names_in_ = self.pipeline_.feature_names_in_
        return self

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        return np.clip(np.expm1(self.pipeline_.predict(self._columns(X))), 0.0, None)


def _slopes(X: pd.DataFrame, by: str, sloped: tuple[str, ...], levels: list[str]) -> pd.DataFrame:
    """One column per feature × level: the feature on that level's rows, 0 elsewhere."""
    level = X[by].astype(str).to_numpy()
    return pd.DataFrame(
        {
            f"{feature}|{by}={value}": np.where(level == value, X[feature].to_numpy(float), 0.0)
            for feature in sloped
            for value in levels
        }
    )


class ColumnBaseline(RegressorMixin, BaseEstimator):
    """A historical-average baseline whose value the feature table computes at forecast time.

    `column="hist_avg"` is the trailing-window average per store × product; `"same_woy_avg"` is
    the average of the same week in earlier years. Both use only weeks ≤ t − H.
    """

    def __init__(self, column: str = "hist_avg") -> None:
        self.column = column

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray | None = None) -> ColumnBaseline:
        if self.column not in X.columns:
            raise ValueError(f"baseline column {self.column!r} is not in the features")
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        return np.clip(np.nan_to_num(X[self.column].to_numpy(dtype=float)), 0.0, None)
