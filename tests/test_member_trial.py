"""Members on trial (ml/member_trial.py): tried on a segment's first validation window, joining
its ensemble only where they forecast it at least as well as the best configured member."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone

from demandops.core.settings import DEFAULT_CONFIG_DIR, load_settings
from ml import member_trial
from ml.fit_memo import FitMemo
from ml.metrics import wape
from ml.segments import segments_of
from ml.train import (
    TrainParams,
    backtest_segment,
    ensemble,
    final_model,
    lasso,
    model_features,
    run_trial,
    window_forecasts,
)
from tests.test_fit_memo import PARAMS, _segment, history  # noqa: F401 (the fixture)

LASSO = "ml.models:LassoForecaster"
ORACLE = "tests.test_member_trial:Oracle"
DOUBLED = "tests.test_member_trial:Doubled"
SPY = "tests.test_member_trial:Spy"


class Oracle(RegressorMixin, BaseEstimator):
    """Forecasts the actual units: no member can beat it."""

    forecaster_name = "oracle"

    @classmethod
    def for_segment(cls, numeric: Any, categorical: Any, params: Any) -> Oracle:
        return cls()

    def fit(self, X: pd.DataFrame, y: Any) -> Oracle:
        self.fitted_ = True
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X["units"].to_numpy(dtype=float)


class Doubled(Oracle):
    """Forecasts twice the actual units: a WAPE of exactly 100 %."""

    forecaster_name = "doubled"

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return 2.0 * X["units"].to_numpy(dtype=float)


class Spy(Doubled):
    """A losing member that remembers the last week of every fit."""

    forecaster_name = "spy"
    last_weeks: ClassVar[list[pd.Timestamp]] = []

    def fit(self, X: pd.DataFrame, y: Any) -> Spy:
        Spy.last_weeks.append(X["week_start"].max())
        return super().fit(X, y)


ALONE = replace(PARAMS, ensemble_members=(LASSO,))


def test_a_member_that_wins_joins_and_one_that_loses_is_left_out(
    history: pd.DataFrame,  # noqa: F811
) -> None:
    part, origins = _segment(history)
    before = part[part["week_start"] < origins[0]]
    params = replace(ALONE, ensemble_trial=(ORACLE, DOUBLED))
    trial = run_trial(before, params, FitMemo())
    assert trial.joined == (ORACLE,)
    note = trial.note
    # the rival's score is the LASSO's WAPE on the ensemble's first validation window
    blend = ensemble(ALONE, model_features(before))
    starts = blend._window_starts(before)
    early = before[before["week_start"] < starts[0]]
    window = before[(before["week_start"] >= starts[0]) & (before["week_start"] < starts[1])]
    fitted = clone(lasso(ALONE, model_features(before))).fit(early, early["units"])
    rival = wape(window["units"].to_numpy(), fitted.predict(window))
    assert f"trial oracle joined: first validation window WAPE 0.000, lasso {rival:.3f}" in note
    assert f"trial doubled left out: first validation window WAPE 1.000, lasso {rival:.3f}" in note


def test_the_trial_costs_its_members_one_fit_and_the_training_reuses_the_others(
    history: pd.DataFrame,  # noqa: F811
) -> None:
    """The LASSO's 7 cut-offs are fit once each, trial or not; the losing member once."""
    part, origins = _segment(history)
    segment = segments_of(part)[0]
    memo = FitMemo()
    before = part[part["week_start"] < origins[0]]
    params = replace(ALONE, ensemble_trial=(DOUBLED,))
    trial = run_trial(before, params, memo)
    holdout = backtest_segment(segment, part, origins, params, memo, trial)
    model = final_model(segment, part, params, memo, trial)
    assert memo.misses == 7 + 1
    assert "doubled" not in set(holdout["model"])
    assert [m["name"] for m in model.members] == ["lasso"]
    untried = FitMemo()
    pd.testing.assert_frame_equal(holdout, backtest_segment(segment, part, origins, ALONE, untried))
    assert untried.misses == 6


def test_a_joined_member_is_blended_in_the_backtest_and_the_model(
    history: pd.DataFrame,  # noqa: F811
) -> None:
    part, origins = _segment(history)
    segment = segments_of(part)[0]
    params = replace(ALONE, ensemble_trial=(ORACLE,))
    holdout = backtest_segment(segment, part, origins, params)
    assert {"lasso", "oracle", "ensemble"} <= set(holdout["model"])
    model = final_model(segment, part, params)
    assert [m["name"] for m in model.members] == ["lasso", "oracle"]
    assert model.note.startswith("trial oracle joined: first validation window WAPE 0.000")


def test_the_backtests_trial_sees_no_week_of_the_backtest(
    history: pd.DataFrame,  # noqa: F811
) -> None:
    part, origins = _segment(history)
    segment = segments_of(part)[0]
    Spy.last_weeks.clear()
    backtest_segment(segment, part, origins, replace(ALONE, ensemble_trial=(SPY,)))
    assert len(Spy.last_weeks) == 1 and Spy.last_weeks[0] < origins[0]


def test_demandops_backtests_windows_try_the_members_too(
    history: pd.DataFrame,  # noqa: F811
) -> None:
    """`window_forecasts` (a round of `demandops backtest`) runs the trial on its own weeks."""
    part, origins = _segment(history)
    segment = segments_of(part)[0]
    train = part[part["week_start"] < origins[-1]]
    window = part[part["week_start"] >= origins[-1]]
    params = replace(ALONE, ensemble_trial=(ORACLE, DOUBLED))
    found = window_forecasts(segment, train, window, params, FitMemo())
    assert {"lasso", "oracle", "ensemble"} <= set(found) and "doubled" not in found


def test_a_backtest_round_of_a_large_segment_trains_with_the_large_settings(
    history: pd.DataFrame,  # noqa: F811
) -> None:
    """`demandops backtest` sizes a round's segment as the batch does: above
    `large_segment_rows` the large settings, which try no member."""
    part, origins = _segment(history)
    segment = segments_of(part)[0]
    train = part[part["week_start"] < origins[-1]]
    window = part[part["week_start"] >= origins[-1]]
    params = replace(ALONE, ensemble_trial=(SPY,), large_segment_rows=len(train) - 1)
    params = replace(params, large_segment=replace(params, ensemble_trial=()))
    Spy.last_weeks.clear()
    found = window_forecasts(segment, train, window, params, FitMemo())
    assert Spy.last_weeks == [] and "ensemble" in found
    window_forecasts(segment, train, window, replace(params, large_segment_rows=len(train)))
    assert len(Spy.last_weeks) == 1


def test_too_few_weeks_for_a_window_leave_the_trial_out_with_a_note(
    history: pd.DataFrame,  # noqa: F811
) -> None:
    part, _ = _segment(history)
    weeks = part["week_start"].drop_duplicates().sort_values()
    short = part[part["week_start"].isin(weeks.head(12))]
    trial = run_trial(short, replace(ALONE, ensemble_trial=(ORACLE,)), FitMemo())
    assert trial.joined == ()
    assert trial.note.startswith(
        "trial not run (12 weeks of data; the validation windows alone need"
    )


def test_the_default_configuration_tries_the_trees_except_on_large_segments() -> None:
    pipeline = load_settings(DEFAULT_CONFIG_DIR, env="dev").pipeline
    assert pipeline.ensemble_trial == ["ml.boosting:BoostingForecaster"]
    assert pipeline.for_large_segment().ensemble_trial == []
    params = TrainParams.from_config(pipeline)
    assert params.ensemble_trial == ("ml.boosting:BoostingForecaster",)
    assert params.large_segment_rows is not None
    assert params.for_segment(params.large_segment_rows + 1).ensemble_trial == ()


@pytest.mark.parametrize("name", ["ml.boosting", "not a member:X"])
def test_a_malformed_trial_member_is_a_config_error(name: str) -> None:
    pipeline = load_settings(DEFAULT_CONFIG_DIR, env="dev").pipeline
    with pytest.raises(ValueError, match="ensemble_trial"):
        type(pipeline).model_validate({**pipeline.model_dump(), "ensemble_trial": [name]})


@pytest.mark.parametrize(("ratio", "joined"), [(0.5, True), (1.05, True), (1.06, False)])
def test_a_member_joins_within_the_tolerance_of_the_best(ratio: float, joined: bool) -> None:
    assert member_trial.TOLERANCE == 0.05
    verdict = member_trial.Verdict("trees", 0.2 * ratio, "lasso", 0.2, "wape")
    assert verdict.joined is joined
    assert verdict.note().startswith(f"trial trees {'joined' if joined else 'left out'}")


def test_a_member_both_configured_and_on_trial_is_a_config_error() -> None:
    """It would be blended in twice where it joined."""
    pipeline = load_settings(DEFAULT_CONFIG_DIR, env="dev").pipeline
    both = [*pipeline.ensemble, *pipeline.ensemble_trial]
    with pytest.raises(ValueError, match=r"ml\.boosting:BoostingForecaster is already in ensemble"):
        type(pipeline).model_validate({**pipeline.model_dump(), "ensemble": both})


def test_a_window_with_no_units_sold_lets_no_member_join() -> None:
    undefined = member_trial.Verdict("oracle", float("inf"), "lasso", float("inf"), "wape")
    assert not undefined.joined
    assert member_trial.Verdict("oracle", 0.2, "lasso", float("inf"), "wape").joined
