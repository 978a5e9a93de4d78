"""The monitoring tables written at the end of a run: every number traced back to its source."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from demandops.core.lake import Lake
from demandops.core.settings import Settings
from demandops.monitoring import tables as monitoring
from demandops.pipeline.batch import run_batch
from tests.conftest import SMALL_REGIONS


def _table(lake: Lake, path: str, name: str) -> pd.DataFrame:
    """The Parquet table, checked equal to its CSV twin."""
    frame = pd.read_parquet(io.BytesIO(lake.read_bytes(f"{path}/{name}.parquet")))
    csv = lake.read_csv(f"{path}/{name}.csv", keep_default_na=False)
    assert list(csv.columns) == list(frame.columns) and len(csv) == len(frame)
    return frame


@pytest.fixture
def ran(batched_small_lake: tuple[Settings, Lake, dict]) -> tuple[dict, Lake, str]:
    """The shared small batch's report, lake and monitoring tables' folder."""
    _, lake, report = batched_small_lake
    path = monitoring.latest(lake)
    assert path is not None and report["monitoring_path"] == lake.location(path)
    return report, lake, path


def test_tables_match_the_run_report(ran: tuple[dict, Lake, str]) -> None:
    report, lake, path = ran
    manifest = lake.dataset(path).manifest  # type: ignore[union-attr]
    assert set(manifest["files"]) == {
        f"{n}.{ext}" for n in monitoring.TABLES for ext in ("csv", "parquet")
    }
    t = {name: _table(lake, path, name) for name in monitoring.TABLES}
    for name, frame in t.items():
        assert (frame["run_id"] == report["run_id"]).all(), name
        assert manifest["rows"][name] == len(frame)

    run = t["runs"].iloc[0]
    assert run["segments"] == len(report["segments"]) == len(t["segments"]) == 8
    assert run["overall_ensemble_wape"] == pytest.approx(report["overall"]["ensemble"]["wape"])

    steps = t["steps"].set_index(["region", "step"])["seconds"]
    for region in SMALL_REGIONS:
        for step, seconds in report["regions"][region]["seconds"].items():
            assert steps[(region, step)] == pytest.approx(seconds)
    assert {"condition", "features", "train", "register", "score"} <= set(t["steps"]["step"])

    metrics = t["model_metrics"]
    chosen = metrics[metrics["chosen"]].set_index("segment")
    for s in report["segments"]:
        name = f"{s['region']}.{s['store_format']}.{s['velocity']}"
        assert chosen.loc[name, "wape"] == pytest.approx(s["wape"])
        assert str(chosen.loc[name, "candidate_version"]) == str(s["candidate_version"])
        hist = metrics[(metrics["segment"] == name) & (metrics["model"] == "hist_avg")]
        assert hist["mape"].item() == pytest.approx(s["baseline_mape"])

    dq = t["data_quality"]
    failed = dq[dq["status"] == "fail"]
    assert len(failed) == len(report["data_quality"]) == run["data_quality_failed"]
    assert (dq["status"] == "pass").any()
    sources = t["sources"].set_index(["region", "source"])
    shipments = lake.dataset(report["regions"]["pnw"]["paths"]["shipments"]).manifest  # type: ignore[union-attr]
    assert sources.loc[("pnw", "shipments"), "rows_rejected"] == shipments["rows_rejected"] > 0
    assert (sources["rows_in"] == sources["rows_out"] + sources["rows_rejected"]).all()

    staleness = t["staleness"]
    assert len(staleness) == 8 and (staleness["age_days"] == 0).all()
    assert not staleness["stale"].any()

    holdout = lake.read_csv(f"{report['regions']['tx']['paths']['model']}/holdout.csv")
    actuals = t["forecast_actuals"]
    tx = actuals[(actuals["region"] == "tx") & (actuals["model"] == "ensemble")]
    ensemble = holdout[holdout["model"] == "ensemble"]
    assert tx["actual"].sum() == pytest.approx(ensemble["units"].sum())
    assert tx["forecast"].sum() == pytest.approx(ensemble["forecast"].sum())

    drift = t["drift"]
    assert set(drift["region"]) == set(SMALL_REGIONS)
    assert "units" in set(drift["feature"]) and "trend_years" not in set(drift["feature"])
    alerts = drift[drift["alert"]]
    assert len(alerts) == run["drift_alerts"] == len(report["drift_alerts"])
    assert sorted(zip(alerts["region"], alerts["feature"], strict=True)) == sorted(
        (a["region"], a["feature"]) for a in report["drift_alerts"]
    )


def test_condition_only_run_writes_empty_model_tables(settings: Settings, small_lake: Lake) -> None:
    report = run_batch(settings, ["pnw"], until="condition", progress=False)
    frames = monitoring.tables(report, small_lake, settings.pipeline.drift)
    assert frames["model_metrics"].empty and frames["drift"].empty
    assert frames["staleness"].empty and frames["forecast_actuals"].empty
    assert len(frames["data_quality"]) > 0 and len(frames["sources"]) > 0
    assert report["drift_alerts"] == []
