"""The gradient-boosting member: scikit-learn conventions, determinism, learning, configuration."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ml.boosting import (
    MAX_CATEGORIES,
    MAX_LEAVES,
    MIN_LEAVES,
    BoostingForecaster,
    LightGBMForecaster,
    leaves_for,
)
from ml.members import DEFAULT_MEMBERS
from ml.metrics import mape, wape
from ml.train import TrainParams, ensemble


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    """Weekly units for 4 stores × 5 products: product levels, a promo lift that differs by
    product (an interaction), noise."""
    rng = np.random.default_rng(5)
    weeks = pd.date_range("2020-01-06", periods=40, freq="7D")
    idx = pd.MultiIndex.from_product([range(4), range(5), weeks], names=["s", "p", "week_start"])
    X = idx.to_frame(index=False)
    X["store_id"] = "S" + X.pop("s").astype(str)
    product = X.pop("p").to_numpy()
    X["product_id"] = "P" + pd.Series(product).astype(str)
    X["promo"] = (rng.random(len(X)) < 0.3).astype(float)
    X["noise"] = rng.normal(size=len(X))
    mu = np.exp(1.5 + 0.4 * product + 0.3 * product * X["promo"].to_numpy())
    y = rng.poisson(mu).astype(float)
    order = X.sort_values("week_start").index
    return X.loc[order].reset_index(drop=True), y[order]


ENGINES = (BoostingForecaster, LightGBMForecaster)
TREES = {BoostingForecaster: "max_iter", LightGBMForecaster: "n_estimators"}  # trees' number


def _member(engine: type = BoostingForecaster, trees: int | None = None, **kw: object) -> Any:
    if trees is not None:
        kw[TREES[engine]] = trees
    return engine(features=("promo", "noise"), categorical=("product_id",), **kw)


@pytest.mark.parametrize("engine", ENGINES)
def test_boosting_learns_product_levels_and_their_promo_lift(
    data: tuple[pd.DataFrame, np.ndarray], engine: type
) -> None:
    X, y = data
    train, test = X["week_start"] < "2020-08-01", X["week_start"] >= "2020-08-01"
    model = _member(engine).fit(X[train], y[train])
    mean_only = np.full(test.sum(), y[train].mean())
    assert wape(y[test], model.predict(X[test])) < 0.4 * wape(y[test], mean_only)


@pytest.mark.parametrize("engine", ENGINES)
def test_boosting_follows_sklearn_conventions_and_is_deterministic(
    data: tuple[pd.DataFrame, np.ndarray], engine: type
) -> None:
    X, y = data
    model = _member(engine, trees=20)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(X)
    assert model.fit(X, y) is model
    assert {"model_", "categories_", "n_features_in_"} <= set(vars(model))
    first = model.predict(X)
    np.testing.assert_array_equal(first, _member(engine, trees=20).fit(X, y).predict(X))
    assert (first >= 0).all()
    unseen = X.assign(product_id="P9")  # a product not seen in training: still a forecast
    assert np.isfinite(model.predict(unseen)).all()


def test_boosting_keeps_the_most_frequent_levels_and_rejects_a_missing_target(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = data
    ids = np.where(X["product_id"] == "P4", "P4", [f"R{i:04d}" for i in range(len(X))])
    many = X.assign(product_id=ids)  # P4 recurs, every other row has a level of its own
    model = _member().fit(many, y)
    levels = model.categories_["product_id"]
    assert len(levels) == MAX_CATEGORIES and "P4" in levels
    assert levels == sorted(levels) and "R0000" in levels  # ties go by name
    assert np.isfinite(model.predict(many)).all()
    with pytest.raises(ValueError, match="requires y"):
        _member().fit(X, None)


@pytest.mark.parametrize(
    ("member", "name"),
    [
        ("ml.boosting:BoostingForecaster", "boosting"),
        ("ml.boosting:LightGBMForecaster", "lightgbm"),
        ("ml.boosting:LightGBMMedianForecaster", "lightgbm_median"),
    ],
)
@pytest.mark.parametrize("objective", ["wape", "mape"])
def test_boosting_is_a_member_named_in_configuration(
    data: tuple[pd.DataFrame, np.ndarray], member: str, name: str, objective: str
) -> None:
    X, y = data
    members = (DEFAULT_MEMBERS[0], member)  # the LASSO and the trees
    params = TrainParams(
        horizon_weeks=2, backtest_origins=1, velocity_threshold=1.0, lasso_cv_folds=2,
        ensemble_members=members, ensemble_objective=objective,
    )  # fmt: skip
    blend = ensemble(params, ("promo", "noise")).fit(X, y)
    assert set(blend.named_estimators_) == {"lasso", name}
    assert blend.named_estimators_[name].categorical == ("store_id", "product_id")
    aims_at = "wape" if name == "lightgbm_median" else objective  # the median trees: always
    assert blend.named_estimators_[name].objective == aims_at
    assert (blend.predict(X) >= 0).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_boosting_with_the_mape_objective_forecasts_lower_where_sales_are_uncertain(
    engine: type,
) -> None:
    """Absolute error on log1p(units) weighted by 1/units + c/mean: a leaf's best constant is
    the weighted median, below the median, and further below where sales scatter more."""
    rng = np.random.default_rng(11)
    n = 4000
    X = pd.DataFrame({"volatile": (np.arange(n) % 2).astype(float)})
    sigma = np.where(X["volatile"] == 1.0, 0.8, 0.2)
    y = np.round(np.exp(4.0 + sigma * rng.normal(size=n)))
    settings = {"features": ("volatile",), TREES[engine]: 50}
    by_wape = engine(**settings).fit(X, y)
    by_mape = engine(**settings, objective="mape").fit(X, y)
    calm, wild = pd.DataFrame({"volatile": [0.0]}), pd.DataFrame({"volatile": [1.0]})
    ratio_calm = by_mape.predict(calm)[0] / by_wape.predict(calm)[0]
    ratio_wild = by_mape.predict(wild)[0] / by_wape.predict(wild)[0]
    assert ratio_wild < ratio_calm < 1.0
    for model in (by_wape, by_mape):
        assert model.get_params()["objective"] in ("wape", "mape")
    assert mape(y, by_mape.predict(X)) < mape(y, by_wape.predict(X))
    with pytest.raises(ValueError, match="objective 'rmse'"):
        engine(features=("volatile",), objective="rmse").fit(X, y)


def _leaves(model: BoostingForecaster) -> int:
    """The most leaves of any of the fitted trees."""
    return max(int(tree.nodes["is_leaf"].sum()) for [tree] in model.model_._predictors)


def test_boosting_grows_trees_with_fewer_leaves_on_fewer_rows(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """Few rows: MIN_LEAVES leaves a tree at most; many: MAX_LEAVES; a set value wins."""
    assert [leaves_for(n) for n in (0, 800, 10_000, 20_000, 32_256, 10**6)] == [
        MIN_LEAVES, MIN_LEAVES, 19, 39, MAX_LEAVES, MAX_LEAVES,
    ]  # fmt: skip
    X, y = data  # 800 rows
    few = _member(max_iter=10, min_samples_leaf=2).fit(X, y)
    assert few.max_leaf_nodes_ == MIN_LEAVES and _leaves(few) == MIN_LEAVES
    assert few.get_params()["max_leaf_nodes"] is None
    chosen = _member(max_iter=10, min_samples_leaf=2, max_leaf_nodes=40).fit(X, y)
    assert chosen.max_leaf_nodes_ == 40 and MIN_LEAVES < _leaves(chosen) <= 40


def test_lightgbm_sizes_its_trees_as_the_histogram_trees(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = data  # 800 rows: MIN_LEAVES leaves a tree at most
    few = _member(LightGBMForecaster, trees=10, min_child_samples=2).fit(X, y)
    trees = few.model_.booster_.dump_model()["tree_info"]
    assert few.num_leaves_ == MIN_LEAVES
    assert max(tree["num_leaves"] for tree in trees) == MIN_LEAVES
    chosen = _member(LightGBMForecaster, trees=10, min_child_samples=2, num_leaves=40).fit(X, y)
    assert chosen.num_leaves_ == 40 and chosen.get_params()["num_leaves"] == 40
