"""Conditioning over the lake: incremental and byte-identical re-runs, unreadable files,
cross-source data-quality checks, and `demandops condition` for people and machines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from demandops.cli import main
from demandops.core.lake import Lake
from demandops.core.settings import Settings
from demandops.monitoring.quality import cross_source_checks
from demandops.pipeline.batch import run_batch
from demandops.pipeline.steps import conditioning as steps
from tests.conftest import SMALL_REGIONS


def _snapshot(lake: Lake) -> dict[str, bytes]:
    zones = ("conditioned", "quarantine", "monitoring/data_quality")
    return {f: lake.read_bytes(f) for zone in zones for f in lake.list_files(zone)}


def _parts(lake: Lake, source: str) -> list[str]:
    return lake.list_dirs(f"conditioned/_parts/{source}")


def test_conditioning_in_small_passes_gives_the_same_datasets(
    settings: Settings, small_lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory is bounded by conditioning a profile's files in passes of PASS_BYTES; how the
    files are split into passes changes no byte of the outputs."""
    whole = run_batch(settings, SMALL_REGIONS, until="condition", progress=False)
    expected = _snapshot(small_lake)
    for zone in ("conditioned", "quarantine", "monitoring"):
        shutil.rmtree(Path(settings.environment.lake) / zone)
    monkeypatch.setattr(steps, "PASS_BYTES", 1)  # one file per pass
    split = run_batch(settings, SMALL_REGIONS, until="condition", progress=False)
    assert split["dataset_version"] == whole["dataset_version"]
    assert _snapshot(small_lake) == expected


def test_rerun_is_byte_identical_and_a_new_file_conditions_only_itself(
    settings: Settings, small_lake: Lake
) -> None:
    first = run_batch(settings, SMALL_REGIONS, until="condition", progress=False)
    before = _snapshot(small_lake)
    again = run_batch(settings, SMALL_REGIONS, until="condition", progress=False)
    assert _snapshot(small_lake) == before
    assert again["dataset_version"] == first["dataset_version"]

    parts = _parts(small_lake, "shipments")
    shipments = small_lake.dataset(first["regions"]["pnw"]["paths"]["shipments"])
    assert shipments is not None
    rows = small_lake.read_csv(shipments.file("shipments.csv"), parse_dates=["week_start"])
    week = rows["week_start"].max() + pd.Timedelta(weeks=1)
    new = f"raw/shipments/region=pnw/dist_a_week_{week:%Y-%m-%d}.csv"
    assert not small_lake.exists(new)
    week_ending = (week + pd.Timedelta(days=6)).strftime("%m/%d/%Y")
    small_lake.write_bytes(
        new, f"Store,Item,Week Ending,Units\nPNW-001,P001,{week_ending},7\n".encode()
    )

    third = run_batch(settings, SMALL_REGIONS, until="condition", progress=False)
    assert sorted(set(_parts(small_lake, "shipments")) - set(parts)) != []
    assert len(_parts(small_lake, "shipments")) == len(parts) + 1  # only the new file
    for name, data in before.items():  # nothing committed before was rewritten
        assert small_lake.read_bytes(name) == data
    assert third["regions"]["tx"]["versions"] == first["regions"]["tx"]["versions"]
    assert (
        third["regions"]["pnw"]["versions"]["shipments"]
        != first["regions"]["pnw"]["versions"]["shipments"]
    )
    updated = small_lake.dataset(third["regions"]["pnw"]["paths"]["shipments"])
    assert updated is not None
    assert updated.manifest["rows_out"] == shipments.manifest["rows_out"] + 1
    assert new in updated.manifest["inputs"]


def test_manifest_counts_every_row_and_quality_results_are_written(
    settings: Settings, small_lake: Lake
) -> None:
    report = run_batch(settings, SMALL_REGIONS, until="condition", progress=False)
    for region in SMALL_REGIONS:
        for name, path in report["regions"][region]["paths"].items():
            m = small_lake.dataset(path).manifest  # type: ignore[union-attr]
            if name == "quality":
                checks = small_lake.read_csv(f"{path}/checks.csv")
                assert set(checks["check"]) >= {
                    "shipment_stores_in_shoppers", "weather_observed_covers_stores",
                    "weather_forecast_covers_stores", "region_weeks_contiguous",
                    "series_weeks_contiguous",
                }  # fmt: skip
                assert [(r["check"], r["status"]) for r in m["results"]] == list(
                    zip(checks["check"], checks["status"], strict=True)
                )
                continue
            assert m["rows_in"] == m["rows_out"] + m["rows_rejected"]
            assert m["code_version"] and m["inputs"] and m["profiles"]
    # the sample's workbook has an absurd age share for PNW-002: it is quarantined, so its
    # shipments have no demographics, which the cross-source check reports
    [failed] = [q for q in report["data_quality"] if q["status"] == "fail"]
    assert (failed["region"], failed["check"], failed["detail"]) == (
        "pnw", "shipment_stores_in_shoppers", "PNW-002",
    )  # fmt: skip
    for ref in report["reference"].values():
        m = small_lake.dataset(ref).manifest  # type: ignore[union-attr]
        assert m["rows_in"] == m["rows_out"] + m["rows_rejected"]
        assert small_lake.dataset(ref.replace("conditioned/", "quarantine/")) is not None


def test_cross_source_checks_find_what_is_missing() -> None:
    weeks = pd.date_range("2020-01-06", periods=16, freq="7D")
    stores = pd.DataFrame({"store_id": ["A", "B"], "zip_code": ["11111", "22222"]})
    shipments = pd.DataFrame(
        {
            "store_id": ["A"] * 15 + ["B"] * 2,
            "product_id": "P",
            "week_start": [*weeks[:5], *weeks[6:], weeks[0], weeks[15]],  # week 5 missing
            "units": 1,
        }
    )
    days = pd.date_range(weeks[0], weeks[-1] + pd.Timedelta(days=6))
    weather = pd.DataFrame({"zip_code": "11111", "date": days, "kind": "observed"})
    weather = pd.concat(
        [weather, pd.DataFrame({"zip_code": "11111", "date": [weeks[-1] + pd.Timedelta(weeks=1)],
                                "kind": "forecast"})]
    )  # fmt: skip
    shoppers = pd.DataFrame({"store_id": ["A"]})
    checks = cross_source_checks("r", stores, shipments, shoppers, weather, 2).set_index("check")
    assert checks.loc["shipment_stores_in_shoppers", "detail"] == "B"
    assert checks.loc["weather_observed_covers_stores", "failing"] == 16  # zip 22222
    assert checks.loc["weather_forecast_covers_stores", "failing"] == 3  # 1 of 2 weeks for A
    assert checks.loc["region_weeks_contiguous", "detail"] == f"{weeks[5]:%Y-%m-%d}"
    assert checks.loc["series_weeks_contiguous", "status"] == "warn"  # B: a 14-week gap
    assert set(checks["status"]) == {"fail", "warn"}


def test_condition_cli_json_and_one_source(
    settings: Settings, small_lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--config", str(settings.config_dir), "--quiet", "--region", "pnw", "--region", "tx"]
    assert main(["condition", "--json", *args]) == 0
    summary = json.loads(capsys.readouterr().out)
    sources = {s["source"] for s in summary["sources"]}
    assert sources == {"stores", "products", "shoppers", "weather", "events", "shipments",
                       "returns", "promotions"}  # fmt: skip
    for s in summary["sources"]:
        assert s["rows_in"] == s["rows_out"] + s["rows_rejected"] and s["version"]
    assert summary["unreadable"] == [] and summary["dataset_version"]

    assert main(["condition", "--source", "weather", "--json", *args]) == 0
    [weather] = json.loads(capsys.readouterr().out)["sources"]
    assert weather["source"] == "weather" and weather["files"] > 2

    assert main(["condition", "--source", "returns", *args[:3], "--region", "tx"]) == 0
    out = capsys.readouterr().out
    assert "returns/region=tx" in out and "rows in" in out and "dataset version" in out


def test_condition_cli_reports_an_unreadable_file_and_exits_1(
    settings: Settings, small_lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = "raw/weather/observations/zip=99999.json"
    small_lake.write_bytes(bad, b'{"zip": "99999", "daily": [')
    code = main(["condition", "--config", str(settings.config_dir), "--quiet", "--region", "tx"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"unreadable: {bad}: cannot read {bad}" in captured.out
    assert "1 raw file(s) could not be read" in captured.err
    assert small_lake.read_bytes(bad) == b'{"zip": "99999", "daily": ['

    code = main(["run", "--config", str(settings.config_dir), "--quiet", "--region", "tx"])
    captured = capsys.readouterr()
    assert code == 1  # the batch ran to the end, and says what it could not read
    assert "overall lasso" in captured.out and "readable_files" in captured.out
    assert "raw files could not be read" in captured.err


def test_condition_cli_with_another_profile_folder(
    settings: Settings, small_lake: Lake, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "condition",
                "--profiles",
                str(Path(str(tmp_path)) / "none"),
                "--config",
                str(settings.config_dir),
            ]
        )
        == 2
    )
    assert "no such profile folder" in capsys.readouterr().err
