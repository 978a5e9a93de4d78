"""The command line as a user meets it: help, a whole run, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from demandops.cli import main
from demandops.core.settings import Settings

COMMANDS = ["generate", "condition", "train", "score", "run"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--region" in out and "--lake" in out


def test_console_script_runs_as_a_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demandops.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(c in result.stdout for c in COMMANDS)


def _args(settings: Settings) -> list[str]:
    return ["--config", str(settings.config_dir), "--quiet"]


def test_generate_then_run_prints_a_summary_and_writes_the_report(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = ["--products", "6", "--weeks", "70", "--store-scale", "0.5"]
    assert main(["generate", "--region", "mtn", *small, *_args(settings)]) == 0
    assert "1 regions, 6 products, 70 weeks" in capsys.readouterr().out

    report_path = tmp_path / "out" / "report.json"
    code = main(["run", "--region", "mtn", "--report-json", str(report_path), *_args(settings)])
    assert code == 0
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert {"run_id", "dataset_version", "segments"} <= report.keys()
    assert len(report["segments"]) == 4
    for s in report["segments"]:
        assert f"{s['region']}.{s['store_format']}.{s['velocity']}" in out
        assert f"{s['mape'] * 100:.1f}%" in out
    assert "forecasts:" in out and str(report_path) in out
    promoted = sum(s["promoted"] for s in report["segments"])
    assert f"registry (scoring date {report['scoring_date']}): {promoted} champions, " in out
    for s in report["segments"]:
        assert s["champion_version"] == ("1" if s["promoted"] else "") and s["stale"] is False
        assert s["gate_reasons"] and s["retrain_reasons"] == ["no champion"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--region", "atlantis"], "unknown region atlantis"),
        (["run", "--region", "pnw"], "no raw data in"),
        (["condition", "--env", "staging"], "unknown environment 'staging'"),
        (["generate", "--weeks", "10"], "needs at least 2 products and 60 weeks"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    settings: Settings, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, *_args(settings)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("demandops: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_corrupt_config_is_one_line_and_writes_nothing(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    regions = settings.config_dir / "regions.yaml"
    regions.write_text(regions.read_text().replace('"98101"', '"98-101"'))
    assert main(["generate", *_args(settings)]) == 2
    err = capsys.readouterr().err
    assert f"{regions}: regions[0].zip_codes" in err and err.count("\n") == 1
    assert not Path(settings.environment.lake).exists()
