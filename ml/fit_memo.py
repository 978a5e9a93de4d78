"""Fitted members shared between the ensembles of one segment's training.

A segment's training fits an ensemble at every backtest origin and once on all history, and
every ensemble fits each member on the weeks before each of its validation windows, then on
all its weeks. With 3 origins of 4 weeks and 3 validation windows of 4 weeks that is 16 fits
of each member, of which 7 see distinct data: the cut-offs coincide. `FitMemo` keys a fitted
member by its parameters and the exact rows and targets it is fit on, so a repeat costs a
lookup and returns what fitting again would (the members are deterministic for fixed
parameters, `random_state` included).
"""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone


class FitMemo:
    """Clones of estimators fit on given data, each fit once; `hits` and `misses` count."""

    def __init__(self) -> None:
        self._fits: dict[tuple[str, str, str], BaseEstimator] = {}
        self.hits = 0
        self.misses = 0

    def fit(
        self, estimator: BaseEstimator, X: pd.DataFrame, y: np.ndarray | pd.Series
    ) -> BaseEstimator:
        """A clone of `estimator` fit on (X, y), or the one fit on the same before.

        The fitted estimator is shared: callers only predict with it."""
        key = (_params_digest(estimator), _digest(X), _digest(y))
        if key in self._fits:
            self.hits += 1
        else:
            self.misses += 1
            self._fits[key] = clone(estimator).fit(X, y)
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


def _digest(data: pd.DataFrame | pd.Series | np.ndarray) -> str:
    """A digest of the values (and column names) of `data`, row order included."""
    h = hashlib.blake2b(digest_size=16)
    if isinstance(data, pd.DataFrame):
        h.update(repr(list(data.columns)).encode())
        h.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
    else:
        h.update(np.ascontiguousarray(np.asarray(data, dtype=float)).tobytes())
    return h.hexdigest()
