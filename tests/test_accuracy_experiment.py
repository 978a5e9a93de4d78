"""The accuracy benchmark's command line (benchmarks/accuracy/experiment.py): the seed option."""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.accuracy import experiment
from benchmarks.accuracy.rolling import LGB_MAPE, default_params, mape_params, peers
from ml.train import MODEL_FEATURES, TrainParams


def _reseeded(params: TrainParams, seed: int) -> TrainParams:
    large = params.large_segment and _reseeded(params.large_segment, seed)
    return replace(params, random_state=seed, large_segment=large)


def test_random_state_seeds_both_configurations_and_nothing_else() -> None:
    assert default_params(3).large_segment is not None  # its own settings for large segments
    for params in (mape_params, default_params):
        assert params(3) == _reseeded(params(3), 0)  # the product's seed
        assert params(3, 2) == _reseeded(params(3), 2) != params(3)


def test_the_lightgbm_peers_follow_the_seed() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(600, len(MODEL_FEATURES))), columns=MODEL_FEATURES)
    frame["store_id"] = rng.choice(["S1", "S2", "S3"], size=len(frame))
    frame["product_id"] = rng.choice(["P1", "P2"], size=len(frame))
    frame["units"] = rng.poisson(np.exp(2 + frame[MODEL_FEATURES[0]].clip(-2, 2))).astype(float)
    train, test = frame.iloc[:500], frame.iloc[500:]
    cut = pd.Timestamp("2020-01-06")  # the LightGBM peers fit the whole round: no cut read
    for peer in ("LightGBM", LGB_MAPE):
        first, again, other = (peers(frame, s)[peer](train, test, cut) for s in (0, 0, 2))
        np.testing.assert_array_equal(first, again)  # a seed gives one forecast
        assert not np.allclose(first, other)  # row and column samples drawn from the seed


def test_random_state_is_refused_for_the_sample(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["experiment", "sample", "--random-state", "1"])
    with pytest.raises(SystemExit) as exit_:
        experiment.main()
    assert exit_.value.code == 2
    assert "--random-state applies to dominicks and walmart" in capsys.readouterr().err


@pytest.mark.parametrize("dataset", ["dominicks", "walmart"])
@pytest.mark.parametrize(
    ("option", "seed", "written"),
    [([], 0, "results_{}.json"), (["--random-state", "2"], 2, "results_{}_seed2.json")],
)
def test_the_seed_reaches_the_run_and_names_its_results(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    dataset: str,
    option: list[str],
    seed: int,
    written: str,
) -> None:
    """The command line's wiring only: each run is the 12 rounds, 1-15 minutes."""
    module = importlib.import_module(f"benchmarks.accuracy.{dataset}")
    seeds: list[int] = []

    def run(random_state: int) -> dict[str, int]:
        seeds.append(random_state)
        return {"seed": random_state}

    monkeypatch.setattr(module, "run", run)
    monkeypatch.setattr(module, "table", lambda result: f"table at seed {result['seed']}")
    monkeypatch.setattr(experiment, "HERE", tmp_path)
    monkeypatch.setattr(sys, "argv", ["experiment", dataset, *option])
    experiment.main()
    assert seeds == [seed]
    assert json.loads((tmp_path / written.format(dataset)).read_text()) == {"seed": seed}
    assert capsys.readouterr().out == f"table at seed {seed}\n"
