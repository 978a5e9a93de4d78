"""The blend never loses to its best member by more than noise: degenerate members are
excluded, members out of line dropped, weights shrunk towards the best member."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from ml.blend import Rules, Validation, objective_score, select
from ml.ensemble import EnsembleForecaster
from ml.metrics import bias, wape
from ml.models import LassoForecaster


class Scaled(RegressorMixin, BaseEstimator):
    """A member whose forecasts are `factor` times another estimator's: deliberately biased."""

    def __init__(self, estimator: BaseEstimator | None = None, factor: float = 1.3) -> None:
        self.estimator = estimator
        self.factor = factor

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Scaled:
        self.estimator_ = clone(self.estimator).fit(X, y)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.factor * np.asarray(self.estimator_.predict(X))


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    """Weekly units for 8 stores × 5 products over 70 weeks: levels, a promo lift, noise."""
    rng = np.random.default_rng(11)
    weeks = pd.date_range("2020-01-06", periods=70, freq="7D")
    idx = pd.MultiIndex.from_product([range(8), range(5), weeks], names=["s", "p", "week_start"])
    X = idx.to_frame(index=False)
    level = 2.0 + 0.2 * X["s"].to_numpy() + 0.3 * X["p"].to_numpy()
    X["store_id"] = "S" + X.pop("s").astype(str)
    X["product_id"] = "P" + X.pop("p").astype(str)
    X["promo"] = (rng.random(len(X)) < 0.2).astype(float)
    X["log_level"] = level + rng.normal(0, 0.05, len(X))  # a noisy view of the level
    y = np.round(np.exp(level + 0.5 * X["promo"].to_numpy() + rng.normal(0, 0.25, len(X))))
    order = X.sort_values(["week_start", "store_id", "product_id"]).index
    return X.loc[order].reset_index(drop=True), y[order]


def _lasso(*features: str) -> LassoForecaster:
    return LassoForecaster(features=features, n_splits=3)


def test_a_biased_member_is_dropped_and_the_blend_stays_with_the_best(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = data
    test = (X["week_start"] >= X["week_start"].unique()[-8]).to_numpy()
    good = ("lasso", _lasso("promo", "log_level"))
    biased = ("biased", Scaled(_lasso("promo", "log_level", "week_start_n"), 1.3))
    X = X.assign(week_start_n=np.arange(len(X)) / len(X))
    blend = EnsembleForecaster([good, biased]).fit(X[~test], y[~test])
    checks = {c["name"]: c for c in blend.member_checks_}
    biased_check, lasso_check = checks["biased"], checks["lasso"]
    assert biased_check["status"] == "dropped" and biased_check["weight"] == 0.0
    assert isinstance(biased_check["reason"], str) and isinstance(biased_check["bias"], float)
    assert "bias" in biased_check["reason"] and biased_check["bias"] > 0.2
    assert isinstance(lasso_check["reason"], str)
    assert lasso_check["status"] == "used" and "best member" in lasso_check["reason"]
    assert "biased dropped: validation bias" in blend.selection_note_
    best = wape(y[test], blend.named_estimators_["lasso"].predict(X[test]))
    assert wape(y[test], blend.predict(X[test])) <= best + 0.005
    assert abs(bias(y[test], blend.predict(X[test]))) < 0.1
    # without the bias rule the shrinkage alone keeps the biased member's weight small
    lenient = EnsembleForecaster([good, biased], bias_tolerance=np.inf).fit(X[~test], y[~test])
    assert 0.0 < lenient.weights_[1] < 0.1
    assert wape(y[test], lenient.predict(X[test])) <= best + 0.005


def test_a_member_forecasting_near_zero_is_excluded_as_degenerate(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = data
    members = [("tiny", Scaled(_lasso("promo", "log_level"), 0.001)), ("lasso", _lasso("promo"))]
    blend = EnsembleForecaster(members, validation_windows=2).fit(X, y)
    tiny = blend.member_checks_[0]
    assert tiny["status"] == "degenerate" and tiny["weight"] == 0.0
    assert isinstance(tiny["median_ratio"], float) and isinstance(tiny["reason"], str)
    assert tiny["median_ratio"] < 0.01 and "far from 1" in tiny["reason"]
    assert blend.weights_.tolist() == [0.0, 1.0]


def _validation(n_series: int, errors: list[float], seed: int = 0) -> Validation:
    """12 rows per series; member j forecasts the actual times exp(its own N(0, errors[j]))."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_series), 12)
    actual = np.round(
        np.exp(3.0 + rng.normal(0, 0.5, n_series)[groups]) * rng.lognormal(0, 0.2, len(groups))
    )
    preds = np.column_stack([actual * np.exp(rng.normal(0, e, len(actual))) for e in errors])
    return Validation(actual, preds, groups)


def test_independent_members_blend_and_a_noise_level_gain_is_shrunk_away() -> None:
    names = ["a", "b"]
    many = select(_validation(300, [0.3, 0.3]), names, Rules())
    assert many.kept > 0.9 and many.weights.min() >= 0.3  # a clear gain: the blend stays
    assert many.gain > 2 * many.noise
    twin = _validation(300, [0.3, 0.3])
    noisy = Validation(
        twin.actual, np.column_stack([twin.preds[:, 0], twin.preds[:, 0] * 1.01]), twin.groups
    )
    nothing = select(noisy, names, Rules())
    assert nothing.kept < 0.5 or nothing.gain <= 0  # the twins add nothing but noise
    assert nothing.weights[0] >= 0.5


@pytest.mark.parametrize("objective", ["wape", "mape"])
@pytest.mark.parametrize("seed", range(5))
def test_the_selection_never_scores_worse_than_the_best_member(objective: str, seed: int) -> None:
    validation = _validation(6, [0.2, 0.35, 0.5], seed)
    chosen = select(validation, ["a", "b", "c"], Rules(objective=objective))
    best = min(objective_score(objective, validation.actual, p) for p in validation.preds.T)
    blended = validation.preds @ chosen.weights
    assert objective_score(objective, validation.actual, blended) <= best + 1e-12
    assert chosen.weights.sum() == pytest.approx(1.0)


def test_when_every_member_is_degenerate_the_best_forecasts_flagged() -> None:
    base = _validation(10, [0.1, 0.1])
    validation = Validation(base.actual, base.preds * np.array([0.01, 0.2]), base.groups)
    chosen = select(validation, ["a", "b"], Rules())
    assert chosen.weights.tolist() == [0.0, 1.0]
    assert [c.status for c in chosen.checks] == ["degenerate", "degenerate"]
    assert "kept: every member is degenerate" in chosen.checks[1].reason
    assert "b degenerate" in chosen.note()


def test_an_excluded_member_is_checked_and_reported_but_gets_no_weight() -> None:
    validation = _validation(40, [0.4, 0.1])  # "b" is far the better member
    chosen = select(validation, ["a", "b"], Rules(), excluded={"b": "blended for MAPE only"})
    assert chosen.weights.tolist() == [1.0, 0.0]
    a, b = chosen.checks
    assert (b.status, b.weight, b.reason) == ("unused", 0.0, "blended for MAPE only")
    assert a.score is not None and b.score is not None
    assert b.score < a.score  # measured all the same
    assert "best member" in a.reason
    assert "b unused: blended for MAPE only" in chosen.note()
    everyone = select(validation, ["a", "b"], Rules(), excluded={"a": "x", "b": "y"})
    assert everyone.weights[1] > 0.5  # when every member is excluded, none is
