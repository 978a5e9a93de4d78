"""The embedding net and the ensemble: scikit-learn conventions, determinism, and learning."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ml.blend import _best_weights
from ml.embedding_net import EmbeddingNetForecaster
from ml.ensemble import EnsembleForecaster
from ml.metrics import mape, wape
from ml.models import ColumnBaseline, LassoForecaster
from ml.seed_nets import Net, SeedStack, _batches


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    """Weekly units for 6 stores × 5 products: store and product levels, a promo lift, noise."""
    rng = np.random.default_rng(3)
    weeks = pd.date_range("2020-01-06", periods=60, freq="7D")
    idx = pd.MultiIndex.from_product([range(6), range(5), weeks], names=["s", "p", "week_start"])
    X = idx.to_frame(index=False)
    X["store_id"] = "S" + X.pop("s").astype(str)
    X["product_id"] = "P" + X.pop("p").astype(str)
    X["promo"] = (rng.random(len(X)) < 0.2).astype(float)
    X["noise"] = rng.normal(size=len(X))
    store = X["store_id"].str[1:].astype(int).to_numpy()
    product = X["product_id"].str[1:].astype(int).to_numpy()
    mu = np.exp(1.0 + 0.4 * store + 0.5 * product + 0.7 * X["promo"].to_numpy())
    y = rng.poisson(mu).astype(float)
    return X.sort_values("week_start").reset_index(drop=True), y[X.sort_values("week_start").index]


def _net(**kw: object) -> EmbeddingNetForecaster:
    return EmbeddingNetForecaster(
        numeric_features=("promo", "noise"),
        categorical_features=("store_id", "product_id"),
        **kw,  # type: ignore[arg-type]
    )


def test_net_learns_levels_from_embeddings(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    train, test = X["week_start"] < "2020-12-01", X["week_start"] >= "2020-12-01"
    net = _net(max_epochs=80, patience=10).fit(X[train], y[train])
    mean_only = np.full(test.sum(), y[train].mean())
    assert wape(y[test], net.predict(X[test])) < 0.5 * wape(y[test], mean_only)
    assert all(0 < n <= 80 for n in net.n_epochs_)  # early stopping kept a real epoch


def test_net_follows_sklearn_conventions(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    net = _net(max_epochs=3)
    assert net.get_params()["categorical_features"] == ("store_id", "product_id")
    assert clone(net).get_params() == net.get_params()
    with pytest.raises(NotFittedError):
        net.predict(X)
    assert net.fit(X, y) is net
    learned = [a for a in vars(net) if a.endswith("_") and not a.startswith("_")]
    assert {"nets_", "levels_", "mean_", "scale_", "n_epochs_", "n_features_in_"} <= set(learned)
    assert not hasattr(clone(net), "nets_")


def test_net_is_deterministic_and_non_negative(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    first = _net(max_epochs=5).fit(X, y).predict(X)
    second = _net(max_epochs=5).fit(X, y).predict(X)
    np.testing.assert_array_equal(first, second)
    assert (first >= 0).all()
    other_seed = _net(max_epochs=5, random_state=1).fit(X, y).predict(X)
    assert not np.array_equal(first, other_seed)


def test_an_epoch_samples_at_most_epoch_rows_rows_each_seed_its_own() -> None:
    rows = torch.arange(5000)
    shuffles = [torch.Generator().manual_seed(s) for s in (0, 1)]
    first = torch.cat(_batches(rows, shuffles, 256, 1000), dim=1)
    second = torch.cat(_batches(rows, shuffles, 256, 1000), dim=1)
    assert first.shape == (2, 1000)
    assert all(len(set(seed.tolist())) == 1000 for seed in first)  # without replacement
    assert not torch.equal(first[0], first[1])  # each seed its own sample ...
    assert not torch.equal(first, second)  # ... and a new one every epoch


def test_a_net_whose_epochs_sample_rows_still_learns(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    whole = _net(max_epochs=5).fit(X, y).predict(X)
    np.testing.assert_array_equal(_net(max_epochs=5, epoch_rows=len(X)).fit(X, y).predict(X), whole)
    sampled = _net(max_epochs=40, epoch_rows=512, patience=8)
    forecast = sampled.fit(X, y).predict(X)
    np.testing.assert_array_equal(clone(sampled).fit(X, y).predict(X), forecast)
    assert not np.array_equal(forecast, whole)
    assert wape(y, forecast) < 0.3


def test_net_averages_the_log_forecasts_of_its_seeds(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    averaged = _net(max_epochs=5, random_state=7, n_seeds=3).fit(X, y)
    singles = [_net(max_epochs=5, random_state=s, n_seeds=1).fit(X, y) for s in (7, 8, 9)]
    logs = np.mean([np.log1p(net.predict(X)) for net in singles], axis=0)
    np.testing.assert_allclose(averaged.predict(X), np.expm1(logs), rtol=1e-5, atol=1e-5)
    assert averaged.n_epochs_ == tuple(net.n_epochs_[0] for net in singles)
    with pytest.raises(ValueError, match="n_seeds must be at least 1"):
        _net(n_seeds=0).fit(X, y)


def test_a_net_continues_from_a_fit_with_as_many_seeds_or_more_only(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """A one-seed fit continues from seed 0 of an earlier three-seed fit; a fit that needs
    seeds its predecessor did not train starts afresh."""
    X, y = data
    early = (X["week_start"] < X["week_start"].iloc[len(X) // 2]).to_numpy()
    three = _net(max_epochs=3).fit(X[early], y[early])
    one = _net(max_epochs=2, n_seeds=1).fit_from([three], X, y)
    assert len(one.nets_) == 1 and one.continued_
    single = _net(max_epochs=3, n_seeds=1).fit(X[early], y[early])
    fresh = _net(max_epochs=2).fit_from([single], X, y)
    assert len(fresh.nets_) == 3 and not fresh.continued_


def test_seeds_trained_side_by_side_learn_what_each_would_alone() -> None:
    """The stacked nets' Adam steps equal each net's own steps on the same batches."""
    rng = np.random.default_rng(0)
    codes = torch.from_numpy(rng.integers(1, 6, size=(64, 2)))
    numeric = torch.from_numpy(rng.normal(size=(64, 3)).astype(np.float32))
    target = torch.from_numpy(rng.normal(size=64).astype(np.float32))
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        nets.append(Net([5, 5], 3, (8, 4)))
    alone = [copy.deepcopy(net) for net in nets]
    stack = SeedStack(nets)
    batches = [torch.from_numpy(rng.permutation(64)[:16]) for _ in range(5)]
    together = torch.optim.Adam(stack.parameters(), lr=0.05, weight_decay=1e-3)
    for rows in batches:
        together.zero_grad()
        both = rows.expand(2, -1)
        pred = stack(codes[both], numeric[both])
        ((pred - target[both]) ** 2).mean(dim=-1).sum().backward()
        together.step()
    for net in alone:
        own = torch.optim.Adam(net.parameters(), lr=0.05, weight_decay=1e-3)
        for rows in batches:
            own.zero_grad()
            ((net(codes[rows], numeric[rows]) - target[rows]) ** 2).mean().backward()
            own.step()
    stack.copy_into(nets)
    for trained, reference in zip(nets, alone, strict=True):
        for a, b in zip(trained.parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_continued_net_carries_over_known_levels_and_starts_afresh_on_a_new_shape(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = data
    early = X["week_start"] < X["week_start"].iloc[len(X) // 2]
    stores_1_to_4 = X["store_id"].isin(["S1", "S2", "S3", "S4"]).to_numpy()
    earlier = _net(max_epochs=3).fit(X[early & stores_1_to_4], y[early & stores_1_to_4])
    # a fifth store: a new level, its embedding size unchanged (3 levels each side of 4)
    five = X["store_id"] != "S0"
    assert _net(max_epochs=2).fit_from([earlier], X[five], y[five.to_numpy()]).continued_
    # a sixth: the store embedding grows, so the net cannot carry over and starts afresh
    fresh = _net(max_epochs=2).fit_from([earlier], X, y)
    assert not fresh.continued_
    np.testing.assert_array_equal(fresh.predict(X), _net(max_epochs=2).fit(X, y).predict(X))


def test_net_maps_unseen_levels_to_the_unknown_embedding(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = data
    net = _net(max_epochs=3).fit(X, y)
    unseen = X.head(3).assign(store_id="S-new")
    assert np.isfinite(net.predict(unseen)).all()


def test_net_forecasts_a_row_alone_as_in_its_batch(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    net = _net(max_epochs=3).fit(X, y)
    whole = net.predict(X.tail(40))
    alone = [net.predict(X.tail(40).iloc[[i]])[0] for i in range(40)]
    np.testing.assert_allclose(alone, whole, rtol=1e-5)


def test_net_leaves_a_column_constant_in_training_unscaled(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """0.3 in every training row has a standard deviation of ~1e-17, not 0: scaling by it made
    a scoring row with 0.4 forecast ~1e15 times off (or infinity)."""
    X, y = data
    X = X.assign(promo=0.3)
    assert 0 < np.nanstd(X["promo"]) < 1e-15  # rounding error: what the net must not divide by
    net = _net(max_epochs=3).fit(X, y)
    assert net.scale_[0] == 1.0
    usual, other = net.predict(X.tail(5)), net.predict(X.tail(5).assign(promo=0.4))
    assert np.isfinite(other).all()
    np.testing.assert_allclose(other, usual, rtol=0.5)


def test_net_rejects_too_little_data(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    with pytest.raises(ValueError, match="at least 10 rows"):
        _net().fit(X.head(5), y[:5])


def test_best_weights_pick_the_better_member() -> None:
    actual = np.array([10.0, 20.0, 30.0])
    preds = np.column_stack([actual, actual * 2])
    np.testing.assert_allclose(_best_weights(actual, preds, 0.1, "wape"), [1.0, 0.0])
    half = np.column_stack([actual * 0.5, actual * 1.5])  # their average is exact
    np.testing.assert_allclose(_best_weights(actual, half, 0.1, "wape"), [0.5, 0.5])


def test_ensemble_blends_and_refits(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    X = X.assign(bad=0.0)
    ensemble = EnsembleForecaster(
        estimators=[
            ("lasso", LassoForecaster(features=("promo", "noise"), n_splits=3)),
            ("net", _net(max_epochs=40, patience=8)),
            ("zero", ColumnBaseline("bad")),
        ],
        validation_weeks=8,
    )
    assert ensemble.fit(X, y) is ensemble
    assert ensemble.weights_.sum() == pytest.approx(1.0)
    assert ensemble.weights_[2] == 0.0  # a member that forecasts nothing gets no weight
    assert set(ensemble.named_estimators_) == {"lasso", "net", "zero"}
    blended = ensemble.predict(X)
    members = np.column_stack([e.predict(X) for e in ensemble.estimators_])
    np.testing.assert_allclose(blended, members @ ensemble.weights_)
    assert not hasattr(clone(ensemble), "weights_")


def test_ensemble_needs_members_and_enough_weeks(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    with pytest.raises(ValueError, match="at least one"):
        EnsembleForecaster(estimators=[]).fit(X, y)
    with pytest.raises(ValueError, match="validation windows alone need 60"):
        EnsembleForecaster([("b", ColumnBaseline("promo"))], validation_weeks=20).fit(X, y)


def test_mape_objective_scales_down_within_the_wape_tolerance(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """A blend of log-scale members forecasts about the median; MAPE's optimum is lower."""
    X, y = data
    members = [("lasso", LassoForecaster(features=("promo", "noise"), n_splits=3))]
    by_wape = EnsembleForecaster(estimators=members).fit(X, y)
    by_mape = EnsembleForecaster(estimators=members, objective="mape").fit(X, y)
    assert by_wape.scale_ == 1.0
    assert 0.5 <= by_mape.scale_ < 1.0
    np.testing.assert_allclose(by_mape.predict(X), by_wape.predict(X) * by_mape.scale_)
    assert by_mape.validation_mape_ < by_wape.validation_mape_
    assert by_mape.validation_wape_ <= 1.05 * by_wape.validation_wape_ + 1e-12
    assert by_mape.validation_bias_ < by_wape.validation_bias_
    strict = EnsembleForecaster(estimators=members, objective="mape", wape_tolerance=0.0)
    assert strict.fit(X, y).validation_wape_ <= by_wape.validation_wape_ + 1e-12


def test_ensemble_rejects_an_unknown_objective(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    with pytest.raises(ValueError, match="objective 'rmse': choose one of wape, mape"):
        EnsembleForecaster([("b", ColumnBaseline("promo"))], objective="rmse").fit(X, y)


def test_reblended_equals_fitting_with_the_other_objective(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = data
    members = [
        ("lasso", LassoForecaster(features=("promo", "noise"), n_splits=3)),
        ("promo", ColumnBaseline("promo")),
    ]
    by_wape = EnsembleForecaster(estimators=members).fit(X, y)
    by_mape = EnsembleForecaster(estimators=members, objective="mape").fit(X, y)
    reblended = by_wape.reblended("mape")
    assert reblended.objective == "mape" and by_wape.objective == "wape"
    np.testing.assert_array_equal(reblended.weights_, by_mape.weights_)
    assert reblended.scale_ == by_mape.scale_ and by_wape.scale_ == 1.0
    assert not np.allclose(by_mape.predict(X), by_wape.predict(X))  # the objective mattered
    np.testing.assert_allclose(reblended.predict(X), by_mape.predict(X))
    shared = zip(reblended.estimators_, by_wape.estimators_, strict=True)
    assert all(a is b for a, b in shared)  # the members are not fitted again
    with pytest.raises(ValueError, match="objective 'rmse'"):
        by_wape.reblended("rmse")


@pytest.fixture(scope="module")
def uneven() -> tuple[pd.DataFrame, np.ndarray]:
    """Log-normal weekly units for 12 series whose noise differs (σ from 0.1 to 1.0), with each
    series' variance of log units as the dispersion column."""
    rng = np.random.default_rng(5)
    weeks = pd.date_range("2020-01-06", periods=60, freq="7D")
    idx = pd.MultiIndex.from_product([range(12), weeks], names=["s", "week_start"])
    X = idx.to_frame(index=False)
    series = X.pop("s").to_numpy()
    sigma = np.linspace(0.1, 1.0, 12)[series]
    X["store_id"], X["product_id"] = "S" + pd.Series(series).astype(str), "P0"
    X["log_mu"] = 3.0 + 0.1 * series
    X["log_var_shipped"] = sigma**2
    y = np.round(np.exp(X["log_mu"].to_numpy() + sigma * rng.normal(size=len(X))))
    order = X.sort_values("week_start").index
    return X.loc[order].reset_index(drop=True), y[order]


def test_mape_objective_shrinks_volatile_series_more(
    uneven: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """MAPE's optimum for a log-normal error of variance σ² is exp(−σ²) times the median: the
    blend is shrunk by the dispersion column, and beats one scale for every row."""
    X, y = uneven
    members = [("lasso", LassoForecaster(features=("log_mu",), n_splits=3))]
    by_scale = EnsembleForecaster(members, objective="mape", dispersion_column=None).fit(X, y)
    by_dispersion = EnsembleForecaster(members, objective="mape").fit(X, y)
    assert by_scale.dispersion_coef_ == 0.0
    assert by_dispersion.dispersion_coef_ > 0.0
    assert by_dispersion.validation_mape_ < by_scale.validation_mape_
    unshrunk = by_dispersion.estimators_[0].predict(X)
    shrinkage = by_dispersion.scale_ * np.exp(
        -by_dispersion.dispersion_coef_ * X["log_var_shipped"].to_numpy()
    )
    np.testing.assert_allclose(by_dispersion.predict(X), unshrunk * shrinkage)
    by_wape = EnsembleForecaster(members).fit(X, y)  # the default objective ignores it
    assert (by_wape.scale_, by_wape.dispersion_coef_) == (1.0, 0.0)
    with pytest.raises(ValueError, match="no column 'log_var_shipped'"):
        by_dispersion.predict(X.drop(columns="log_var_shipped"))


def test_reblended_with_fewer_members_equals_fitting_without_the_others(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = data
    lasso = ("lasso", LassoForecaster(features=("promo", "noise"), n_splits=3))
    promo = ("promo", ColumnBaseline("promo"))
    both = EnsembleForecaster(estimators=[lasso, promo]).fit(X, y)
    alone = EnsembleForecaster(estimators=[lasso], objective="mape").fit(X, y)
    subset = both.reblended("mape", members=("lasso",))
    assert list(subset.named_estimators_) == ["lasso"] and len(both.estimators_) == 2
    np.testing.assert_array_equal(subset.weights_, alone.weights_)
    assert subset.scale_ == alone.scale_
    np.testing.assert_allclose(subset.predict(X), alone.predict(X))
    with pytest.raises(ValueError, match="choose among lasso, promo"):
        both.reblended("mape", members=("net",))


@pytest.fixture(scope="module")
def levels() -> tuple[pd.DataFrame, np.ndarray]:
    """Log-normal weekly units (σ 0.6) for 10 series whose levels span e¹ to e⁶ units."""
    rng = np.random.default_rng(7)
    weeks = pd.date_range("2020-01-06", periods=40, freq="7D")
    X = pd.MultiIndex.from_product([range(10), weeks], names=["s", "week_start"]).to_frame(
        index=False
    )
    series = X.pop("s").to_numpy()
    X["store_id"], X["product_id"] = "S" + pd.Series(series).astype(str), "P0"
    X["log_mu"] = np.linspace(1.0, 6.0, 10)[series]
    X["log_var_shipped"] = 0.36
    y = np.round(np.exp(X["log_mu"].to_numpy() + 0.6 * rng.normal(size=len(X))))
    order = X.sort_values("week_start").index
    return X.loc[order].reset_index(drop=True), y[order]


def test_volume_gate_gives_weeks_far_above_the_mean_the_blend_for_wape(
    levels: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """A row moves from the shrunk MAPE blend to the WAPE blend as the latter rises above the
    validation mean: the big series' weeks keep their WAPE, the small ones their MAPE."""
    X, y = levels
    members = [
        ("lasso", LassoForecaster(features=("log_mu",), n_splits=3)),
        ("level", ColumnBaseline("log_mu")),
    ]
    by_mape = EnsembleForecaster(members, objective="mape").fit(X, y)
    by_wape = EnsembleForecaster(members).fit(X, y)
    gated = EnsembleForecaster(members, objective="mape", volume_gate=0.5).fit(X, y)
    np.testing.assert_array_equal(gated.weights_, by_mape.weights_)
    np.testing.assert_array_equal(gated.peak_weights_, by_wape.weights_)
    assert gated.gate_mean_ == pytest.approx(gated.validation_actual_.mean())
    low, peak, forecast = by_mape.predict(X), by_wape.predict(X), gated.predict(X)
    above = peak > 3 * gated.gate_mean_  # z = 0.5 · peak / mean > 1.5: share > 0.69
    below = peak < 0.2 * gated.gate_mean_  # z < 0.1: share < 0.01
    assert above.sum() >= 40 and below.sum() >= 80  # of 400 rows
    assert np.all((forecast >= np.minimum(low, peak) - 1e-9) & (forecast <= peak + 1e-9))
    assert np.abs(forecast - peak)[above].max() < np.abs(low - peak)[above].min()
    np.testing.assert_allclose(forecast[below], low[below], rtol=0.1)
    assert by_mape.scale_ * np.exp(-by_mape.dispersion_coef_ * 0.36) < 0.95
    assert gated.validation_wape_ < by_mape.validation_wape_
    assert gated.validation_mape_ < by_wape.validation_mape_
    assert "volume gate 0.5" in gated.selection_note_
    ungated = EnsembleForecaster(members, volume_gate=0.5).fit(X, y)  # only under "mape"
    assert ungated.peak_weights_ is None
    np.testing.assert_allclose(ungated.predict(X), peak)
    with pytest.raises(ValueError, match="volume_gate must be positive"):
        EnsembleForecaster(members, objective="mape", volume_gate=0.0).fit(X, y)


class _MedianLasso(LassoForecaster):
    blended_for = ("wape",)


def test_a_member_blended_for_wape_only_enters_no_mape_blend(
    levels: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """The median trees' rule (`blended_for`): kept out of the MAPE blend, reported as unused
    and why, still in the blend for WAPE and in the volume gate's; alone it forecasts."""
    X, y = levels
    weak = ("weak", LassoForecaster(features=("log_var_shipped",), n_splits=3))
    median = ("median", _MedianLasso(features=("log_mu",), n_splits=3))
    by_mape = EnsembleForecaster([weak, median], objective="mape").fit(X, y)
    np.testing.assert_array_equal(by_mape.weights_, [1.0, 0.0])
    check = by_mape.member_checks_[1]
    assert (check["status"], check["reason"]) == ("unused", "blended for WAPE only")
    weak_check = by_mape.member_checks_[0]
    assert isinstance(check["score"], float) and isinstance(weak_check["score"], float)
    assert check["score"] < weak_check["score"]  # measured, though kept out
    assert "median unused: blended for WAPE only" in by_mape.selection_note_
    by_wape = EnsembleForecaster([weak, median]).fit(X, y)
    assert by_wape.weights_[1] > 0.5
    gated = EnsembleForecaster([weak, median], objective="mape", volume_gate=0.5).fit(X, y)
    np.testing.assert_array_equal(gated.weights_, by_mape.weights_)
    np.testing.assert_array_equal(gated.peak_weights_, by_wape.weights_)
    peak_weights = np.array([check["peak_weight"] for check in gated.member_checks_], float)
    np.testing.assert_allclose(peak_weights, by_wape.weights_, atol=1e-6)
    assert "peak_weight" not in by_mape.member_checks_[0]
    alone = EnsembleForecaster([median], objective="mape").fit(X, y)
    np.testing.assert_array_equal(alone.weights_, [1.0])


def test_net_with_the_mape_objective_forecasts_lower_where_sales_scatter(
    uneven: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """Weighted absolute error (1/units + 1/mean): below the median, further where σ is large."""
    X, y = uneven
    kw: dict[str, Any] = {
        "numeric_features": ("log_mu",),
        "categorical_features": ("store_id",),
        "max_epochs": 40,
        "patience": 8,
    }
    by_wape = EmbeddingNetForecaster(**kw).fit(X, y)
    by_mape = EmbeddingNetForecaster(objective="mape", **kw).fit(X, y)
    shift = np.log(by_mape.predict(X) / by_wape.predict(X))
    variance = X["log_var_shipped"].to_numpy()
    assert shift[variance > 0.5].mean() < shift[variance < 0.1].mean() - 0.1
    assert mape(y, by_mape.predict(X)) < mape(y, by_wape.predict(X))
    with pytest.raises(ValueError, match="objective 'rmse': choose one of wape, mape"):
        EmbeddingNetForecaster(objective="rmse", **kw).fit(X, y)


def test_models_pickled_before_the_seeds_and_the_shrinkage_still_predict(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """A champion registered by the previous version (one `net_`, no dispersion attributes)
    loads and forecasts as it did: the registry keeps champions across upgrades."""
    X, y = data
    net = _net(max_epochs=3, n_seeds=1).fit(X, y)
    state = net.__getstate__()
    assert isinstance(state, dict)
    old_net = dict(state)
    old_net["net_"], old_net["n_epochs_"] = old_net.pop("nets_")[0], net.n_epochs_[0]
    del old_net["n_seeds"], old_net["objective"]
    members = [("lasso", LassoForecaster(features=("promo", "noise"), n_splits=3))]
    blend = EnsembleForecaster(members, objective="mape").fit(X, y)
    old_blend = dict(blend.__getstate__())
    for name in ("uses_dispersion_", "dispersion_coef_", "dispersion_column"):
        del old_blend[name]
    del old_blend["volume_gate"], old_blend["peak_weights_"]
    loaded_net = pickle.loads(pickle.dumps(_restored(EmbeddingNetForecaster, old_net)))
    np.testing.assert_array_equal(loaded_net.predict(X), net.predict(X))
    assert loaded_net.get_params()["n_seeds"] == 1
    loaded_blend = pickle.loads(pickle.dumps(_restored(EnsembleForecaster, old_blend)))
    np.testing.assert_allclose(loaded_blend.predict(X), blend.predict(X))
    assert loaded_blend.get_params()["dispersion_column"] is None


def _restored(
    cls: type[EmbeddingNetForecaster | EnsembleForecaster], state: dict[str, Any]
) -> EmbeddingNetForecaster | EnsembleForecaster:
    obj = cls.__new__(cls)
    obj.__setstate__(state)
    return obj


def test_levels_are_coded_by_their_text_and_an_unseen_one_is_zero() -> None:
    """Codes from the distinct values' text equal those of every row's `astype(str)`; a level
    first seen at scoring, or missing, is 0."""
    fit = pd.DataFrame(
        {"store_id": pd.Series(["b", "a", None, "b"], dtype="string[pyarrow]"), "x": 0.0}
    )
    net = EmbeddingNetForecaster(("x",), ("store_id",), max_epochs=1)
    net.levels_ = {"store_id": {"a": 1, "b": 2}}
    net.mean_, net.scale_ = np.zeros(1), np.ones(1)
    score = pd.DataFrame({"store_id": pd.Series(["a", "c", None, "b"], dtype=object), "x": 0.0})
    for frame, expected in ((fit, [2, 1, 0, 2]), (score, [1, 0, 0, 2])):
        codes, _ = net._tensors(frame)
        assert codes[:, 0].tolist() == expected
        by_row = frame["store_id"].astype(str).map(net.levels_["store_id"]).fillna(0)
        assert codes[:, 0].tolist() == by_row.astype(int).tolist()


def test_early_stopping_scores_a_fixed_sample_of_the_validation_weeks(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """With more validation rows than `validation_rows`, a fixed sample of them in row order;
    with fewer (or None) all of them; and the sample is the same at every fit."""
    X, y = data
    is_val = _net()._validation_mask(X)
    assert is_val.sum() == 270  # the last 9 of 60 weeks × 30 series
    sample = _net(validation_rows=100)._validation_sample(is_val)
    assert len(sample) == 100 and np.all(np.diff(sample) > 0) and is_val[sample].all()
    assert np.array_equal(sample, _net(validation_rows=100)._validation_sample(is_val))
    for cap in (270, 1000, None):
        everything = _net(validation_rows=cap)._validation_sample(is_val)
        assert np.array_equal(everything, np.flatnonzero(is_val))
    net = _net(validation_rows=100, max_epochs=1).fit(X, y)
    data_ = net._training_data(X, np.log1p(y).astype(np.float32))
    assert np.array_equal(data_.val.numpy(), sample)
    assert len(data_.train) == (~is_val).sum()


def test_the_configured_seeds_are_the_members_seeds() -> None:
    """`nn_seeds` in config/pipeline.yaml reaches the ensemble's net: one seed, one net."""
    from demandops.core.settings import load_settings
    from ml.train import TrainParams

    configured = load_settings().pipeline
    assert configured.nn_seeds == TrainParams.from_config(configured).nn_seeds == 3
    params = TrainParams.from_config(configured.model_copy(update={"nn_seeds": 1}))
    member = EmbeddingNetForecaster.for_segment(("promo",), ("store_id",), params)
    assert params.nn_seeds == member.n_seeds == 1
