"""The chaos suite, small: two batches at once, then three SIGKILLs at random moments and a
re-run, on a tiny lake with the hostile-input corpus (benchmarks/chaos/experiment.py runs 50)."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import pytest

from benchmarks.chaos import experiment as chaos


def _hostile_lake(tiny_raw_lake: Path, tmp_path: Path) -> tuple[Path, Path]:
    config = chaos.make_config(tmp_path)
    raw_lake = tmp_path / "raw-lake"
    shutil.copytree(tiny_raw_lake, raw_lake)
    for rel, make in chaos.HOSTILE.items():
        (raw_lake / rel).write_bytes(make())
    return config, raw_lake


def _pair(config: Path, raw_lake: Path, pair: Path) -> tuple[dict[str, object], float]:
    """Two batches at once on a fresh lake: one waits for the other; the end state, timed."""
    started = time.monotonic()
    codes, refusals, problems = chaos.concurrent_pair(config, raw_lake, pair, 600, None)
    duration = time.monotonic() - started
    assert all(code in (0, 1) for code in codes) and refusals == [] and problems == []
    reference = chaos.outcome(pair)
    assert chaos.registry_problems(chaos.registry_state(pair)) == []
    assert len(reference["champions"]) == 4 and reference["forecasts"]
    return reference, duration


@pytest.mark.slow
def test_two_batches_at_once_leave_the_state_of_one_run(
    tiny_raw_lake: Path, tmp_path: Path
) -> None:
    _pair(*_hostile_lake(tiny_raw_lake, tmp_path), tmp_path / "pair")


@pytest.mark.slow
def test_kills_leave_the_state_of_one_undisturbed_run(tiny_raw_lake: Path, tmp_path: Path) -> None:
    config, raw_lake = _hostile_lake(tiny_raw_lake, tmp_path)
    reference, duration = _pair(config, raw_lake, tmp_path / "pair")
    # three kills at random moments, then a batch that finishes: the same end state
    counts = chaos.chaos_chain(
        config, raw_lake, tmp_path / "chaos", 3, duration / 2, random.Random(7), reference
    )
    assert counts["kills"] + counts["ended_first"] == 3
    assert counts["partial_visible"] == 0 and counts["raw_changed"] == 0
    assert counts["inconsistent"] == 0
