"""The weekly batch end to end on small sample data: outputs, re-runs, crashes, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from demandops.core.errors import DataError
from demandops.core.lake import Lake
from demandops.core.settings import Settings
from demandops.pipeline.batch import run_batch
from demandops.pipeline.steps import modeling as steps
from tests.conftest import SMALL, SMALL_REGIONS

SEGMENT_FIELDS = {
    "region", "store_format", "velocity", "n_rows", "model",
    "mape", "wape", "rmse", "rmse0", "baseline_mape", "baseline_wape",
}  # fmt: skip


def _snapshot(lake: Lake) -> dict[str, bytes]:
    """Every file outside monitoring/ (run logs are new each run), with its content."""
    return {
        f: lake.read_bytes(f)
        for zone in ("conditioned", "quarantine", "features", "models", "forecasts", "metrics")
        for f in lake.list_files(zone)
    }


def test_batch_forecasts_every_segment_and_reports_metrics(
    batched_small_lake: tuple[Settings, Lake, dict[str, Any]],
) -> None:
    settings, small_lake, report = batched_small_lake

    segments = report["segments"]
    assert {(s["region"], s["store_format"], s["velocity"]) for s in segments} == {
        (r, f, v) for r in SMALL_REGIONS for f in ("large", "small") for v in ("fast", "slow")
    }
    for s in segments:
        assert s.keys() >= SEGMENT_FIELDS
        assert s["model"] == "ensemble"
        assert 0 < s["mape"] < 1 and 0 < s["wape"] < 1
        assert s["wape"] < s["baseline_wape"], s  # the model beats the historical average
    configured = {"ensemble", "lasso", "nn", "hist_avg", "same_woy_avg"}
    # the trees on trial appear where they joined a segment (ml/member_trial.py)
    assert configured <= set(report["overall"]) <= configured | {"boosting"}
    assert report["overall"]["ensemble"]["wape"] < report["overall"]["hist_avg"]["wape"]

    horizon = settings.pipeline.horizon_weeks
    for region in SMALL_REGIONS:
        path = report["regions"][region]["paths"]["forecasts"]
        forecasts = small_lake.read_csv(f"{path}/forecasts.csv", parse_dates=["week_start"])
        series = forecasts[["store_id", "product_id"]].drop_duplicates()
        assert len(forecasts) == len(series) * horizon
        assert sorted(forecasts["horizon"].unique()) == list(range(1, horizon + 1))
        assert (forecasts["forecast"] >= 0).all()
        assert forecasts["forecast"].notna().all()
        first = pd.Timestamp(path.split("as_of=")[1].split("/")[0])
        assert forecasts["week_start"].min() == first
        assert forecasts["week_start"].max() == first + pd.Timedelta(weeks=horizon - 1)
        history_end = pd.Timestamp(SMALL.start) + pd.Timedelta(weeks=SMALL.weeks - 1)
        assert first == history_end + pd.Timedelta(weeks=1)

    quarantine = small_lake.list_files("quarantine/shipments/region=pnw")
    rejects = small_lake.read_csv(next(f for f in quarantine if f.endswith("rejects.csv")))
    expected = {"duplicate", "unknown_store", "bad_number", "sentinel_value", "future_date"}
    assert expected <= set(rejects["reason"])
    assert small_lake.exists(f"monitoring/runs/{report['run_id']}.json")


def test_rerun_skips_work_and_changes_nothing(settings: Settings, small_lake: Lake) -> None:
    first = run_batch(settings, SMALL_REGIONS, progress=False)
    before = _snapshot(small_lake)
    second = run_batch(settings, SMALL_REGIONS, progress=False)
    assert _snapshot(small_lake) == before
    assert second["dataset_version"] == first["dataset_version"]
    for region in SMALL_REGIONS:
        assert second["regions"][region]["versions"] == first["regions"][region]["versions"]
        # reused steps only read a manifest: far faster than the first run's training
        assert (
            second["regions"][region]["seconds"]["train"]
            < first["regions"][region]["seconds"]["train"]
        )
    assert second["run_id"] != first["run_id"]


def test_crash_leaves_no_visible_output_and_rerun_recovers(
    settings: Settings, small_lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise RuntimeError("power cut while scoring")

    monkeypatch.setattr(steps, "score_with_challengers", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        run_batch(settings, ["pnw"], progress=False)
    assert small_lake.list_files("forecasts") == []
    trained = small_lake.list_files("models/region=pnw")
    assert any(f.endswith("manifest.json") for f in trained)  # finished steps are kept

    monkeypatch.undo()
    report = run_batch(settings, ["pnw"], progress=False)
    assert small_lake.list_files("models/region=pnw") == trained  # reused, not retrained
    assert small_lake.dataset(report["regions"]["pnw"]["paths"]["forecasts"]) is not None


def test_missing_raw_data_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(DataError, match=r"no raw data in .*raw/stores: run `demandops generate`"):
        run_batch(settings, ["pnw"], progress=False)


def test_unreadable_raw_file_is_reported_skipped_and_left_in_place(
    settings: Settings, small_lake: Lake
) -> None:
    bad = "raw/shipments/region=tx/dist_b_late_export.csv"
    small_lake.write_bytes(bad, b"\xff\xfe\x00garbage\x00\xff")
    report = run_batch(settings, ["tx"], until="condition", progress=False)
    assert small_lake.read_bytes(bad) == b"\xff\xfe\x00garbage\x00\xff"
    [failure] = [q for q in report["data_quality"] if q["check"] == "readable_files"]
    assert failure["status"] == "fail" and f"cannot read {bad}" in failure["detail"]
    shipments = small_lake.dataset(report["regions"]["tx"]["paths"]["shipments"])
    assert shipments is not None and shipments.manifest["rows_out"] > 0  # the rest goes on
    [entry] = shipments.manifest["unreadable"]
    assert entry["file"] == bad and "missing columns" in entry["problem"]
    assert not any(bad in f for f in small_lake.list_files("quarantine"))


def test_batch_on_an_abfs_lake(
    settings: Settings, small_lake_template: Path, azure_lake_url: str, tmp_path: Path
) -> None:
    """The same code on ADLS Gen2's abfs:// protocol, served by Azurite (the registry, as in
    Azure, is not in the lake: here a sqlite store beside it)."""
    lake = Lake(azure_lake_url)
    local = Lake(str(small_lake_template))
    for f in local.list_files("raw"):
        if "region=tx" not in f:
            lake.write_bytes(f, local.read_bytes(f))
    registry = f"sqlite:///{tmp_path}/mlflow.db"
    env = settings.environment.model_copy(update={"lake": azure_lake_url, "registry_uri": registry})
    cloud = settings.model_copy(update={"environment": env})
    report = run_batch(cloud, ["pnw"], progress=False)
    assert len(report["segments"]) == 4
    forecasts = lake.read_csv(report["regions"]["pnw"]["paths"]["forecasts"] + "/forecasts.csv")
    assert len(forecasts) > 0 and (forecasts["forecast"] >= 0).all()
