"""Bias is reported: an ensemble whose backtest bias is below -10 % gets a warning line in the
run report and in what `demandops run` prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from demandops.cli.main import _print_summary
from demandops.core.lake import Lake
from demandops.pipeline.batch import bias_warnings, member_warnings


def _segment(region: str, value: float) -> dict[str, object]:
    metrics = {"mape": 0.3, "wape": 0.4, "rmse": 1.0, "rmse0": None, "bias": value}
    return {"region": region, "store_format": "large", "velocity": "fast", "n_rows": 10,
            "model": "ensemble", **metrics, "coverage80": 0.81, "baseline_mape": 0.5,
            "baseline_wape": 0.5}  # fmt: skip


def test_an_ensemble_biased_below_minus_ten_percent_is_a_warning() -> None:
    segments = [_segment("a", -0.31), _segment("b", -0.05)]
    (line,) = bias_warnings({"ensemble": {"bias": -0.303}}, segments)
    assert "ensemble backtest bias -30.3 % (beyond -10 %)" in line
    assert "segments below it: a.large.fast" in line and "b.large.fast" not in line
    assert bias_warnings({"ensemble": {"bias": -0.09}}, segments) == []
    assert bias_warnings({"lasso": {"bias": -0.5}}, segments) == []  # no ensemble: nothing


def test_run_prints_bias_coverage_and_the_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    segments = [_segment("a", -0.31)]
    overall = {"ensemble": {"n_rows": 10, "mape": 0.3, "wape": 0.4, "rmse": 1.0, "rmse0": 0.0,
                            "bias": -0.31, "coverage80": 0.81}}  # fmt: skip
    report = {"run_id": "r1", "seconds": 1.0, "dataset_version": "d",
              "regions": {"a": {"paths": {}}}, "segments": segments, "overall": overall,
              "warnings": bias_warnings(overall, segments)}  # fmt: skip
    _print_summary(report, Lake(str(tmp_path)))
    out = capsys.readouterr().out
    assert "bias" in out.splitlines()[2] and "P10-P90" in out.splitlines()[2]
    assert " -31.0%" in out and "  81.0%" in out
    assert "warning: ensemble backtest bias -31.0 %" in out


def test_a_degenerate_member_is_a_warning_with_its_reason() -> None:
    members = [
        {"name": "lasso", "status": "used", "reason": "best member on validation"},
        {"name": "nn", "status": "degenerate", "reason": "median forecast / actual 0.0012"},
    ]
    segments = [_segment("a", 0.0) | {"members": members}, _segment("b", 0.0)]
    assert member_warnings(segments) == [
        "a.large.fast: member nn excluded, median forecast / actual 0.0012"
    ]
