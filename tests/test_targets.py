"""Every forecaster refuses a complex target with a clear error instead of fitting its real part."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from ml.boosting import BoostingForecaster
from ml.embedding_net import EmbeddingNetForecaster
from ml.ensemble import EnsembleForecaster
from ml.models import LassoForecaster
from ml.targets import units

FEATURES = ("promo", "noise")


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    weeks = pd.date_range("2021-01-04", periods=40, freq="7D")
    X = pd.DataFrame({"week_start": np.repeat(weeks, 3), "store_id": ["S1", "S2", "S3"] * 40})
    X["product_id"] = "P1"
    X["promo"], X["noise"] = rng.random(len(X)) < 0.3, rng.normal(size=len(X))
    return X.astype({"promo": float})


MEMBERS: dict[str, BaseEstimator] = {
    "lasso": LassoForecaster(features=FEATURES),
    "net": EmbeddingNetForecaster(FEATURES, ("store_id",), max_epochs=2, n_seeds=1),
    "trees": BoostingForecaster(features=FEATURES, max_iter=5),
    "ensemble": EnsembleForecaster([("lasso", LassoForecaster(features=FEATURES))]),
}


@pytest.mark.parametrize("name", MEMBERS)
def test_a_complex_target_is_refused_without_fitting_its_real_part(name: str) -> None:
    X = _data()
    y = np.arange(len(X), dtype=float) + 1j
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's cast would warn and drop the imaginary part
        with pytest.raises(ValueError, match="Complex data not supported"):
            MEMBERS[name].fit(X, y)


def test_a_real_target_is_cast_to_the_asked_type() -> None:
    got = units(pd.Series([1, 2, 3]), np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [1.0, 2.0, 3.0])
