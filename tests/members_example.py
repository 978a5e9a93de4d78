"""A forecaster a data scientist might ship: it only has to follow the member protocol."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted


class CycleMeanForecaster(RegressorMixin, BaseEstimator):
    """The mean of the same point of the delivery cycle (a feature column), scaled by a factor
    fit on the training rows."""

    forecaster_name = "cycle_mean"

    @classmethod
    def for_segment(
        cls, numeric: tuple[str, ...], categorical: tuple[str, ...], params: Any
    ) -> CycleMeanForecaster:
        return cls(column="log_same_cycle_mean")

    def __init__(self, column: str = "log_same_cycle_mean") -> None:
        self.column = column

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> CycleMeanForecaster:
        base = np.expm1(X[self.column].to_numpy(dtype=float))
        self.factor_ = float(np.sum(np.asarray(y, dtype=float)) / max(base.sum(), 1e-9))
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "factor_")
        return np.clip(self.factor_ * np.expm1(X[self.column].to_numpy(dtype=float)), 0, None)
