"""Forecasters as scikit-learn estimators: `fit(X, y)` returns self, predictions are ≥ 0.

The LASSO is fit on log1p(units): demand is multiplicative (store × product × season ×
promotion), and the log compresses the heavy right tail of fast movers so slow movers with many
zero weeks are not swamped. Predictions are transformed back with expm1 and clipped at 0.
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


class LassoForecaster(RegressorMixin, BaseEstimator):
    """Standard scaling + LASSO on log1p(target), alpha chosen by time-series cross-validation.

    Rows must be in time order (oldest first) for the cross-validation to respect time.
    """

    forecaster_name = "lasso"

    @classmethod
    def for_segment(
        cls, numeric: tuple[str, ...], categorical: tuple[str, ...], params: Any
    ) -> LassoForecaster:
        """The ensemble member for one segment (numeric features only)."""
        return cls(features=numeric, n_splits=params.lasso_cv_folds)

    def __init__(
        self,
        features: tuple[str, ...] | None = None,
        n_splits: int = 4,
        n_alphas: int = 30,
        max_iter: int = 20000,
    ) -> None:
        self.features = features
        self.n_splits = n_splits
        self.n_alphas = n_alphas
        self.max_iter = max_iter

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True  # log1p needs targets ≥ 0 (unit counts)
        return tags

    def _columns(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        return X if self.features is None else X[list(self.features)]  # type: ignore[index]

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
