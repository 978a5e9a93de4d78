"""The accuracy benchmark's command line (benchmarks/accuracy/experiment.py): the seed option."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest

from benchmarks.accuracy import experiment
from benchmarks.accuracy.rolling import mape_params


def test_random_state_sets_only_the_mape_configurations_seed() -> None:
    assert experiment._mape_params(3, None) == mape_params(3)
    seeded = experiment._mape_params(3, 2)
    assert seeded.random_state == 2 and replace(seeded, random_state=0) == mape_params(3)


def test_random_state_is_refused_for_the_sample(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["experiment", "sample", "--random-state", "1"])
    with pytest.raises(SystemExit) as exit_:
        experiment.main()
    assert exit_.value.code == 2
    assert "--random-state applies to dominicks and walmart" in capsys.readouterr().err
