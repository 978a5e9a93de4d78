"""Model validation on the small dataset checked in under tests/data: data validation →
training → scoring, end to end, as CI's `make validate-model` runs it."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from demandops.core.lake import Lake
from demandops.core.settings import Settings, load_settings
from demandops.pipeline.batch import run_batch
from demandops.sample.data import SampleSpec, sample_files
from ml.score import FORECAST_COLUMNS
from scripts.validate_model import DATASET, DATASET_REGIONS, check_report, copy_dataset

SPEC = SampleSpec(products=6, weeks=80, store_scale=0.5)


def test_the_checked_in_dataset_is_what_the_generator_makes() -> None:
    """Provenance: the files are exactly `demandops generate` with the README's options."""
    regions = load_settings(env="dev").select_regions(DATASET_REGIONS)
    expected = {f.path: f.data for f in sample_files(regions, SPEC)}
    shipped = {
        p.relative_to(DATASET).as_posix(): p.read_bytes()
        for p in (DATASET / "raw").rglob("*")
        if p.is_file()
    }
    assert shipped.keys() == expected.keys()
    changed = [p for p in expected if shipped[p] != expected[p]]
    assert not changed, f"regenerate tests/data (see its README): {changed[:3]}"


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Lake]:
    root = tmp_path_factory.mktemp("validation")
    defaults = load_settings(env="dev")
    env = defaults.environment.model_copy(update={"lake": str(root / "lake"), "max_workers": 1})
    settings: Settings = defaults.model_copy(update={"environment": env})
    lake = Lake(env.lake)
    copy_dataset(DATASET, lake)
    return run_batch(settings, DATASET_REGIONS, progress=False), lake


def test_data_validation_quarantines_the_dirt_and_reports_quality(
    validated: tuple[dict, Lake],
) -> None:
    report, lake = validated
    for region in DATASET_REGIONS:
        shipments = lake.dataset(report["regions"][region]["paths"]["shipments"])
        assert shipments is not None
        manifest = shipments.manifest
        assert manifest["rows_in"] == manifest["rows_out"] + manifest["rows_rejected"]
        assert manifest["rows_rejected"] > 0  # the dataset carries dirt on purpose
    checks = {q["check"] for q in report["data_quality"]}
    assert "shipment_stores_in_shoppers" in checks  # the known bad demographics row


def test_training_beats_the_baselines_with_finite_metrics(validated: tuple[dict, Lake]) -> None:
    report, _ = validated
    assert check_report(report, DATASET_REGIONS) == []
    assert len(report["segments"]) == 2 * 2 * 2
    for segment in report["segments"]:
        assert segment["model"] == "ensemble"
        by_model = segment["by_model"]
        assert {"ensemble", "lasso", "nn", "hist_avg", "same_woy_avg"} <= by_model.keys()
        assert all(math.isfinite(m["wape"]) for m in by_model.values())
        members = {m["name"]: m for m in segment["members"]}  # what the blend used, and why
        # the trees on trial are members only where their verdict says they joined
        joined = "trial boosting joined" in segment["note"]
        assert members.keys() == {"lasso", "nn"} | ({"boosting"} if joined else set())
        assert sum(m["weight"] for m in members.values()) == pytest.approx(1.0)
        assert all(m["reason"] and m["bias"] is not None for m in members.values())
        assert "trial boosting " in segment["note"] and "weights " in segment["note"]
    overall = report["overall"]
    assert 0.65 <= overall["ensemble"]["coverage80"] <= 0.95  # of the P10-P90 interval
    assert report["warnings"] == []  # the default configuration's bias is within -10 %
    assert overall["ensemble"]["wape"] < min(
        overall["hist_avg"]["wape"], overall["same_woy_avg"]["wape"]
    )


def test_scoring_forecasts_every_series_for_every_horizon(validated: tuple[dict, Lake]) -> None:
    report, lake = validated
    for region in DATASET_REGIONS:
        path = report["regions"][region]["paths"]["forecasts"]
        forecasts = lake.read_csv(f"{path}/forecasts.csv")
        features = pd.read_parquet(
            Path(lake.full_path(report["regions"][region]["paths"]["features"]))
            / "features.parquet"
        )
        series = features[["store_id", "product_id"]].drop_duplicates()
        assert len(forecasts) == len(series) * 4
        assert set(forecasts["horizon"]) == {1, 2, 3, 4}
        assert forecasts["forecast"].ge(0).all() and forecasts["forecast"].notna().all()
        assert set(forecasts["model"]) == {"ensemble"}
        assert list(forecasts.columns) == FORECAST_COLUMNS  # new columns at the end only
        p10, p50, p90 = (forecasts[c] for c in ("p10", "p50", "p90"))
        assert p10.notna().all() and (p10 <= p50).all() and (p50 <= p90).all()
        assert ((p10 <= forecasts["forecast"]) & (forecasts["forecast"] <= p90)).all()
