"""Fitted members shared between the ensembles of one segment's training.

A segment's training fits an ensemble at every backtest origin and once on all history, and
every ensemble fits each member on the weeks before each of its validation windows, then on
all its weeks. With 3 origins of 4 weeks and 3 validation windows of 4 weeks that is 16 fits
of each member, of which 7 see distinct data: the cut-offs coincide. `FitMemo` keys a fitted
member by its parameters and the exact rows and targets it is fit on, so a repeat costs a
lookup and returns what fitting again would (the members are deterministic for fixed
parameters, `random_state` included).

A member with a `fit_from(fits, X, y)` method is handed the memo's earlier fits of the same
parameters and may start from one of them (the embedding net continues from its latest fit on
earlier weeks: `warm_start`), so that each fit after a segment's first costs a few epochs.
Its fits then depend on the order they are asked for, which a segment's training fixes: the
cut-offs come in time order.
"""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from ml.content_cache import digest


class FitMemo:
    """Clones of estimators fit on given data, each fit once; `hits` and `misses` count."""

    def __init__(self) -> None:
        self._fits: dict[tuple[str, bytes, bytes], BaseEstimator] = {}
        self.hits = 0
        self.misses = 0

    def fit(
        self, estimator: BaseEstimator, X: pd.DataFrame, y: np.ndarray | pd.Series
    ) -> BaseEstimator:
        """A clone of `estimator` fit on (X, y), or the one fit on the same before.

        The fitted estimator is shared: callers only predict with it."""
        return self.fit_each([estimator], X, y)[0]

    def fit_each(
        self, estimators: list[BaseEstimator], X: pd.DataFrame, y: np.ndarray | pd.Series
    ) -> list[BaseEstimator]:
        """`fit` of each estimator on the same (X, y), the data digested once."""
        data = (_digest(X), _digest(y))
        return [self._fit(estimator, X, y, data) for estimator in estimators]

    def _fit(
        self,
        estimator: BaseEstimator,
        X: pd.DataFrame,
        y: np.ndarray | pd.Series,
        data: tuple[bytes, bytes],
    ) -> BaseEstimator:
        params = _params_digest(estimator)
        key = (params, *data)
        if key in self._fits:
            self.hits += 1
            return self._fits[key]
        self.misses += 1
        fitted = clone(estimator)
        if hasattr(fitted, "fit_from"):
            earlier = [f for (p, _, _), f in self._fits.items() if p == params]
            self._fits[key] = fitted.fit_from(earlier, X, y)
        else:
            self._fits[key] = fitted.fit(X, y)
        return self._fits[key]

    def __deepcopy__(self, memo: dict[int, object]) -> FitMemo:
        """The memo itself: a clone of an ensemble shares its memo (sklearn's `clone` deep-
        copies parameters that are not estimators)."""
        return self


def _params_digest(estimator: BaseEstimator) -> str:
    """A digest of the estimator's class and parameters."""
    params = sorted(estimator.get_params(deep=False).items())
    blob = pickle.dumps((type(estimator).__qualname__, params), protocol=5)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def _digest(data: pd.DataFrame | pd.Series | np.ndarray) -> bytes:
    """A digest of the values (and column names) of `data`, row order included: numpy columns
    by their bytes (sha256 runs on the CPU's SHA instructions, 4 x pandas' hashing of a
    production segment's numbers), others through pandas' hash."""
    if not isinstance(data, pd.DataFrame):
        return digest([np.asarray(data, dtype=float)])
    names = np.frombuffer(repr(list(data.columns)).encode(), dtype=np.uint8)
    return digest([names, *(_values(column) for _, column in data.items())])


def _values(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biufmM":
        return column.to_numpy()
    # strings, categories, objects: pandas hashes their values, not pointers
    return pd.util.hash_pandas_object(column, index=False).to_numpy()
