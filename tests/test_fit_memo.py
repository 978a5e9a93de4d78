"""Member fits shared between a segment's ensembles: fewer fits, the same forecasts."""

from __future__ import annotations

import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from demandops.core.lake import Lake
from demandops.core.settings import DEFAULT_CONFIG_DIR, load_settings
from demandops.pipeline.steps import (
    condition_reference,
    condition_region,
    features_for_region,
    read_features,
)
from ml.embedding_net import EmbeddingNetForecaster
from ml.ensemble import _rows
from ml.features import BASELINE_COLUMNS, NUMERIC_FEATURES
from ml.fit_memo import FitMemo
from ml.models import LassoForecaster
from ml.segments import assign_segments, product_velocity, segments_of
from ml.train import TrainParams, backtest_origins, backtest_segment, ensemble, final_model
from tests.conftest import SMALL


@pytest.fixture(scope="module")
def history(small_lake_template: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """One small region's history, segmented as the train step segments it."""
    settings = load_settings(DEFAULT_CONFIG_DIR, env="dev")
    lake_path = tmp_path_factory.mktemp("memo") / "lake"
    shutil.copytree(small_lake_template, lake_path)
    lake = Lake(str(lake_path))
    as_of = pd.Timestamp(SMALL.start) + pd.Timedelta(weeks=SMALL.weeks, days=-1)
    ref = condition_reference(lake, ["pnw"], as_of=as_of)
    inputs = condition_region(lake, "pnw", ref, settings.pipeline.horizon_weeks)
    written = features_for_region(lake, "pnw", ref, inputs, settings.pipeline)
    frame = read_features(lake, written)
    frame = frame[~frame["is_future"] & frame["units"].notna()]
    return frame.sort_values(["week_start", "store_id", "product_id"])


PARAMS = TrainParams(
    horizon_weeks=4,
    backtest_origins=3,
    velocity_threshold=12.0,
    lasso_cv_folds=3,
    nn_max_epochs=4,
    nn_warm_start=False,
)


def _segment(history: pd.DataFrame) -> tuple[pd.DataFrame, list[pd.Timestamp]]:
    weeks = history["week_start"].drop_duplicates().sort_values()
    origins = backtest_origins(weeks, PARAMS)
    velocity = product_velocity(history[history["week_start"] < origins[0]], 12.0)
    segmented = assign_segments(history, velocity)
    segment = next(s for s in segments_of(segmented) if s.velocity == "slow")
    part = segmented[
        (segmented["store_format"] == segment.store_format)
        & (segmented["velocity"] == segment.velocity)
    ]
    return part, origins


def test_a_segment_trains_the_same_with_shared_member_fits(history: pd.DataFrame) -> None:
    """With cold-started nets, sharing changes nothing but the count of fits."""
    part, origins = _segment(history)
    segment = segments_of(part)[0]
    memo = FitMemo()
    shared = backtest_segment(segment, part, origins, PARAMS, memo)
    shared_model = final_model(segment, part, PARAMS, memo)
    alone = backtest_segment(segment, part, origins, PARAMS)
    alone_model = final_model(segment, part, PARAMS)
    pd.testing.assert_frame_equal(shared, alone)
    future = part.tail(50)
    np.testing.assert_array_equal(
        shared_model.estimator.predict(future), alone_model.estimator.predict(future)
    )
    # 3 origins + the final fit, 3 validation windows each: 16 fits of each of the 2 members,
    # at 7 distinct cut-offs (weeks T-24, T-20, ..., T)
    assert (memo.misses, memo.hits) == (2 * 7, 2 * 16 - 2 * 7)


def test_a_segment_above_large_segment_rows_trains_with_the_large_settings(
    history: pd.DataFrame,
) -> None:
    """Above the limit the segment's backtest and model use `large_segment`: here the LASSO
    alone on one validation window, 5 cut-offs (T-16 ... T) and no net; at the limit, the
    configured ensemble."""
    part, origins = _segment(history)
    segment = segments_of(part)[0]
    large = replace(
        PARAMS, ensemble_members=("ml.models:LassoForecaster",), ensemble_validation_windows=1
    )
    at_limit = replace(PARAMS, large_segment_rows=len(part), large_segment=large)
    below = replace(at_limit, large_segment_rows=len(part) - 1)
    memo = FitMemo()
    holdout = backtest_segment(segment, part, origins, below, memo)
    model = final_model(segment, part, below, memo)
    assert set(holdout["model"]) == {*BASELINE_COLUMNS, "ensemble", "lasso"}
    assert [m["name"] for m in model.members] == ["lasso"]
    assert f"{len(part)} rows > large_segment_rows ({len(part) - 1})" in model.note
    assert (memo.misses, memo.hits) == (5, 2 * 4 - 5)
    memo = FitMemo()
    default = final_model(segment, part, at_limit, memo)
    assert [m["name"] for m in default.members] == ["lasso", "nn"]
    assert "large_segment" not in default.note and memo.misses == 2 * 4


def test_the_memo_refits_on_other_rows_or_parameters(history: pd.DataFrame) -> None:
    part, _ = _segment(history)
    X, y = part.head(300), part["units"].head(300).to_numpy()
    lasso = LassoForecaster(features=NUMERIC_FEATURES[:3], n_alphas=5)
    memo = FitMemo()
    first = memo.fit(lasso, X, y)
    assert memo.fit(lasso, X.copy(), y.copy()) is first
    assert memo.fit(lasso, X, y + 1.0) is not first
    assert memo.fit(clone(lasso).set_params(n_alphas=6), X, y) is not first
    assert memo.fit(lasso, X.head(299), y[:299]) is not first
    assert (memo.misses, memo.hits) == (4, 1)


def test_rows_before_a_cut_off_are_a_slice_that_the_memo_knows_as_the_masked_copy(
    history: pd.DataFrame,
) -> None:
    """The ensemble takes a time-sorted segment's weeks before a cut-off as a slice, not a
    copy; the memo keys it by content, as the masked copy it replaces."""
    part, origins = _segment(history)
    early = (part["week_start"] < origins[0]).to_numpy()
    view = _rows(part, early)
    pd.testing.assert_frame_equal(view, part[early])
    assert np.shares_memory(view["units"].to_numpy(), part["units"].to_numpy())
    scattered = early & (np.arange(len(part)) % 2 == 0)
    pd.testing.assert_frame_equal(_rows(part, scattered), part[scattered])
    units = part["units"].to_numpy()
    np.testing.assert_array_equal(_rows(units, scattered), units[scattered])
    lasso = LassoForecaster(features=NUMERIC_FEATURES[:3], n_alphas=5)
    memo = FitMemo()
    net, first = memo.fit_each([clone(NET).set_params(max_epochs=1), lasso], view, units[early])
    assert net.n_epochs_ == (1, 1, 1)
    assert memo.fit(lasso, part[early], _rows(units, early)) is first
    assert (memo.misses, memo.hits) == (2, 1)


def test_a_pickled_ensemble_carries_no_memo(history: pd.DataFrame) -> None:
    part, _ = _segment(history)
    memo = FitMemo()
    fitted = ensemble(PARAMS, fit_memo=memo).fit(part, part["units"])
    assert clone(fitted).fit_memo is memo  # a clone shares it
    restored = pickle.loads(pickle.dumps(fitted))
    assert restored.fit_memo is None
    np.testing.assert_array_equal(restored.predict(part), fitted.predict(part))


NET = EmbeddingNetForecaster(
    numeric_features=NUMERIC_FEATURES[:6], categorical_features=("store_id", "product_id")
)


def _weeks_before(part: pd.DataFrame, week: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray]:
    rows = part[part["week_start"] < week]
    return rows, rows["units"].to_numpy()


def test_a_segments_later_net_fits_continue_from_its_earlier_ones(history: pd.DataFrame) -> None:
    part, origins = _segment(history)
    memo = FitMemo()
    net = clone(NET).set_params(max_epochs=3)
    first = memo.fit(net, *_weeks_before(part, origins[0]))
    second = memo.fit(net, *_weeks_before(part, origins[1]))
    assert (first.continued_, second.continued_) == (False, True)
    # a fit on earlier weeks asked for afterwards never starts from one that saw later weeks
    earliest = memo.fit(net, *_weeks_before(part, origins[0] - pd.Timedelta(weeks=4)))
    assert not earliest.continued_
    cold = clone(net).fit(*_weeks_before(part, origins[0] - pd.Timedelta(weeks=4)))
    np.testing.assert_array_equal(earliest.predict(part), cold.predict(part))


def test_a_continued_net_starts_where_the_earlier_one_ended(history: pd.DataFrame) -> None:
    """Carried over untrained (learning rate 0), the net forecasts what the earlier fit did,
    though its levels and standardization come from more weeks; new levels start at random."""
    part, origins = _segment(history)
    earlier = clone(NET).set_params(max_epochs=3).fit(*_weeks_before(part, origins[0]))
    later_rows, later_units = _weeks_before(part, origins[-1])
    unchanged = clone(NET).set_params(max_epochs=1, learning_rate=0.0)
    continued = unchanged.fit_from([earlier], later_rows, later_units)
    assert continued.continued_
    assert continued.mean_.tolist() != earlier.mean_.tolist()  # other scaling, same function
    np.testing.assert_allclose(
        np.log1p(continued.predict(later_rows)), np.log1p(earlier.predict(later_rows)), atol=1e-4
    )
    assert (
        not clone(unchanged)
        .set_params(warm_start=False)
        .fit_from([earlier], later_rows, later_units)
        .continued_
    )
