"""Gradient-boosted trees on log1p(units): an ensemble member to name in the configuration.

scikit-learn's histogram gradient boosting (no extra dependency) on the numeric features, with
the product and the store as categorical features, fit on `log1p(units)` with squared error
like the other members, so it forecasts roughly the median. Trees find interactions the LASSO
cannot (a deal in a low-price week, a brand's response to its rivals' promotions) and its
errors differ from the linear model's, which is what a blend gains from. The default
configuration tries it on each segment (`ensemble_trial:` in config/pipeline.yaml,
`ml/member_trial.py`): it joins where it wins; name it under `ensemble:` to blend it in
everywhere. 100 trees at learning rate 0.18: a fifth of the cost of the 600 at 0.03 it was
tuned with on Dominick's, to keep its trial cheap where it loses (benchmarks/accuracy/README.md).
Each tree has at most 63 leaves, fewer on fewer rows (`leaves_for`): on the default sample's
segments (4,000-9,000 rows) 15-17 leaves cost half the time of 63 and forecast the first
validation window better (benchmarks/accuracy/README.md); from 32,256 rows (Dominick's rounds
hold 70,000-100,000) the trees are as they were tuned.

With `objective="mape"` (what `ensemble_objective: mape` gives it) the trees aim at MAPE
themselves: absolute error on log1p(units), each row weighted by 1/units (its percentage
error) plus `wape_weight`/mean(units) (its share of the total error). The best constant for a
set of rows is then their weighted median — the same in logs as in units — so each leaf
forecasts what minimises MAPE + `wape_weight` × WAPE over its rows, lower where sales are
uncertain, rather than the median. On Dominick's data alone: 34.8 % MAPE at 43.2 % WAPE,
against 41.2 / 41.3 % with squared error (benchmarks/accuracy/README.md).

`LightGBMForecaster` is the same member on LightGBM's engine, with row and column subsampling
and 600 trees at 0.03: on Dominick's more accurate and no slower than the histogram trees at
that size (benchmarks/accuracy/README.md). It is the trees of the MAPE configuration there.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ml import targets
from ml.metrics import check_objective, mape_weights

MAX_CATEGORIES = 255  # levels per categorical feature: rarer ones are treated as unknown
MIN_LEAVES, MAX_LEAVES = 15, 63  # a tree's leaves at most, on few rows and on many
ROWS_PER_LEAF = 512  # rows of training data per leaf between the two
# one OpenMP thread: segments train in parallel processes already, and on a shared machine the
# trees' spinning threads slowed a fit by a factor of ten or more (measured under load)
THREADS = 1


class _LogTrees(RegressorMixin, BaseEstimator):
    """What the tree members share: numeric features as floats, `categorical` columns as
    categories (the MAX_CATEGORIES most frequent levels seen in `fit`), a fit on log1p(units)
    with the MAPE weights under `objective="mape"`, forecasts clipped at 0. A subclass names
    its engine (`_engine`) and its `for_segment` settings."""

    features: tuple[str, ...] | None
    categorical: tuple[str, ...]
    objective: str
    wape_weight: float

    @classmethod
    def for_segment(
        cls, numeric: tuple[str, ...], categorical: tuple[str, ...], params: Any
    ) -> Self:
        """The ensemble member for one segment: numeric features, the product and the store."""
        return cls(
            features=numeric,
            categorical=tuple(c for c in categorical if c in ("product_id", "store_id")),
            objective=params.ensemble_objective,
            random_state=params.random_state,
        )

    def _engine(self, rows: int) -> Any:
        """An unfitted regressor for `rows` training rows (fit(X, y, sample_weight), predict)."""
        raise NotImplementedError

    def _frame(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame(X)
        numeric = list(frame.columns if self.features is None else self.features)
        out = frame[numeric].astype(float)
        for column in self.categorical:
            levels = self.categories_[column]
            values = frame[column].astype(str)
            out[column] = pd.Categorical(values.where(values.isin(levels)), categories=levels)
        return out

    def fit(self, X: pd.DataFrame | np.ndarray, y: pd.Series | np.ndarray) -> Self:
        """Fit on log1p(y); categorical levels are the MAX_CATEGORIES most frequent seen here
        (others, and levels first seen later, are unknown)."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        check_objective(self.objective)
        frame = pd.DataFrame(X)
        self.categories_ = {c: _frequent_levels(frame[c]) for c in self.categorical}
        units = targets.units(y)
        model = self._engine(len(units))
        with threadpool_limits(limits=THREADS, user_api="openmp"):
            self.model_ = model.fit(
                self._frame(X), np.log1p(units), sample_weight=self._weights(units)
            )
        self.n_features_in_ = frame.shape[1]
        return self

    def _weights(self, units: np.ndarray) -> np.ndarray | None:
        """Per row with objective "mape", `mape_weights`; None (equal weights) otherwise."""
        return mape_weights(units, self.wape_weight) if self.objective == "mape" else None

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "model_")
        with threadpool_limits(limits=THREADS, user_api="openmp"):
            log_units = self.model_.predict(self._frame(X))
        return np.clip(np.expm1(log_units), 0.0, None)


class BoostingForecaster(_LogTrees):
    """Histogram gradient boosting on log1p(target); `categorical` columns as categories.

    `max_leaf_nodes`: a tree's leaves at most; None: `leaves_for` the training rows."""

    forecaster_name = "boosting"

    def __init__(
        self,
        features: tuple[str, ...] | None = None,
        categorical: tuple[str, ...] = (),
        max_iter: int = 100,
        learning_rate: float = 0.18,
        max_leaf_nodes: int | None = None,
        min_samples_leaf: int = 20,
        l2_regularization: float = 1.0,
        objective: str = "wape",
        wape_weight: float = 1.0,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.categorical = categorical
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.objective = objective
        self.wape_weight = wape_weight
        self.random_state = random_state

    def _engine(self, rows: int) -> HistGradientBoostingRegressor:
        leaves = self.max_leaf_nodes
        self.max_leaf_nodes_ = leaves_for(rows) if leaves is None else leaves
        return HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes_,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            loss="absolute_error" if self.objective == "mape" else "squared_error",
            categorical_features="from_dtype",
            early_stopping=False,
            random_state=self.random_state,
        )


class LightGBMForecaster(_LogTrees):
    """LightGBM's gradient boosting on log1p(target), as `BoostingForecaster` (the same
    features, categories, objectives and weights) with LightGBM's row and column subsampling:
    600 trees at learning rate 0.03, each on 80 % of the rows and of the columns. On
    Dominick's data alone, aiming at MAPE: 34.40 % MAPE at 43.07 % WAPE, against the histogram
    trees' 35.59 / 43.56, in less time (benchmarks/accuracy/README.md). Needs the `lightgbm`
    package (in the `ml` extra).

    `num_leaves`: a tree's leaves at most; None: `leaves_for` the training rows."""

    forecaster_name = "lightgbm"

    def __init__(
        self,
        features: tuple[str, ...] | None = None,
        categorical: tuple[str, ...] = (),
        n_estimators: int = 600,
        learning_rate: float = 0.03,
        num_leaves: int | None = None,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        objective: str = "wape",
        wape_weight: float = 1.0,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.categorical = categorical
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.objective = objective
        self.wape_weight = wape_weight
        self.random_state = random_state

    def _engine(self, rows: int) -> Any:
        try:
            import lightgbm
        except ImportError as exc:
            raise ImportError(
                "LightGBMForecaster needs the lightgbm package: pip install -e '.[ml]'"
            ) from exc
        leaves = self.num_leaves
        self.num_leaves_ = leaves_for(rows) if leaves is None else leaves
        return lightgbm.LGBMRegressor(
            objective="l1" if self.objective == "mape" else "l2",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves_,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1,
            colsample_bytree=self.colsample_bytree,
            random_state=self.random_state,
            n_jobs=THREADS,
            verbose=-1,
        )


class LightGBMMedianForecaster(LightGBMForecaster):
    """`LightGBMForecaster` aimed at the median whatever the ensemble's objective: squared
    error on log1p(units), every row weighted alike. Under `ensemble_objective: mape` the
    other members aim below the median, and the blend for WAPE of the volume gate
    (`ensemble_volume_gate`, ml/ensemble.py) needs a member that does not; it enters no blend
    for MAPE (`blended_for`). On Dominick's data alone 40.52 % MAPE at 40.96 % WAPE, the
    LightGBM peer's model."""

    forecaster_name = "lightgbm_median"
    blended_for = ("wape",)  # not into a MAPE blend, whose other members aim below it

    @classmethod
    def for_segment(
        cls, numeric: tuple[str, ...], categorical: tuple[str, ...], params: Any
    ) -> Self:
        member = super().for_segment(numeric, categorical, params)
        member.objective = "wape"
        return member


def leaves_for(rows: int) -> int:
    """A tree's leaves at most for `rows` training rows: one per ROWS_PER_LEAF rows, within
    MIN_LEAVES and MAX_LEAVES."""
    return min(MAX_LEAVES, max(MIN_LEAVES, rows // ROWS_PER_LEAF))


def _frequent_levels(values: pd.Series) -> list[str]:
    """The MAX_CATEGORIES most frequent levels (ties by name), sorted."""
    counts = values.astype(str).value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return sorted(str(level) for level, _ in ranked[:MAX_CATEGORIES])
