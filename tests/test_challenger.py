"""Champion/challenger on a real batch, registry and lake: a challenger named with the CLI
serves a stable share of stores, both forecasts land beside later actuals, the comparison
carries a paired Wilcoxon test, and a significantly better challenger can be promoted."""

from __future__ import annotations

import io
import pickle
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demandops.cli import main
from demandops.core.lake import Lake
from demandops.core.settings import Settings, load_settings
from demandops.lifecycle import promotion
from demandops.lifecycle.champions import open_registry
from demandops.lifecycle.registry import Registry, model_name
from demandops.monitoring import challengers, dashboard
from demandops.pipeline.batch import run_batch
from ml.models import ColumnBaseline
from ml.score import challenger_stores
from tests.conftest import SERVED_ON, local_config

SEGMENT = "pnw.large.fast"


def _challenger_version(lake: Lake, registry: Registry) -> str:
    """A second version of SEGMENT whose model is the trailing historical average."""
    champion = registry.champion(model_name(SEGMENT))
    assert champion is not None
    model = lake.dataset(champion.tags["model_dataset"])
    assert model is not None
    trained = pickle.loads(lake.read_bytes(model.file("model.pkl")))
    trained.models[SEGMENT].estimator = ColumnBaseline("hist_avg").fit(
        pd.DataFrame({"hist_avg": [1.0]})
    )
    trained.models[SEGMENT].kind = "baseline"
    files = {f.rsplit("/", 1)[1]: lake.read_bytes(f) for f in lake.list_files(model.path)}
    files.pop("manifest.json")
    files["model.pkl"] = pickle.dumps(trained)
    manifest = {k: v for k, v in model.manifest.items() if k != "files"} | {"version": "rival"}
    rival = lake.commit_dataset("models/region=pnw/v=rival", files, manifest)
    tags = dict(champion.tags) | {"model_dataset": rival.path, "model_dataset_version": "rival"}
    run_id = registry.log_run("rival", {}, {}, tags, {"lineage.json": b"{}"})
    return str(registry.register(model_name(SEGMENT), run_id, tags | {"run_id": run_id}).version)


@pytest.fixture
def challenged(served_lake: Path, tmp_path: Path) -> tuple[Settings, dict, str]:
    """A copy of the served lake, SEGMENT challenged (by the CLI) and the region re-scored."""
    shutil.copytree(served_lake / "lake", tmp_path / "lake")
    settings = load_settings(local_config(tmp_path))
    lake, registry = Lake(settings.environment.lake), open_registry(settings.environment)
    version = _challenger_version(lake, registry)
    config = ["--config", str(settings.config_dir)]
    assert main(["models", "challenger", SEGMENT, version, *config]) == 0
    report = run_batch(settings, ["pnw"], progress=False, today=SERVED_ON)
    return settings, report, version


def test_challenger_serves_its_share_of_stores_beside_the_champion(
    challenged: tuple[Settings, dict, str],
) -> None:
    settings, report, version = challenged
    lake = Lake(settings.environment.lake)
    folder = report["regions"]["pnw"]["paths"]["forecasts"]
    served = lake.read_csv(f"{folder}/forecasts.csv", dtype=str, keep_default_na=False)
    side = lake.read_csv(f"{folder}/challengers.csv", dtype=str)
    seg = served[(served["store_format"] == "large") & (served["velocity"] == "fast")]
    share = settings.pipeline.lifecycle.challenger_share
    assigned = seg[challenger_stores(seg["store_id"], share)]
    assert 0 < len(assigned) < len(seg)  # some stores each way
    assert set(assigned["model_version"]) == {version}
    assert set(seg.drop(assigned.index)["model_version"]) == {side["champion_version"].iloc[0]}
    assert sorted(side["store_id"].unique()) == sorted(assigned["store_id"].unique())
    forecasts = pd.to_numeric(assigned["forecast"]).to_numpy()
    np.testing.assert_allclose(pd.to_numeric(side["challenger_forecast"]), forecasts)
    assert (side["champion_forecast"] != side["challenger_forecast"]).any()
    other = served[served["velocity"] == "slow"]
    assert version not in set(other["model_version"])  # only the challenged segment


def test_a_significantly_better_challenger_is_promoted(
    challenged: tuple[Settings, dict, str],
) -> None:
    settings, report, version = challenged
    lake = Lake(settings.environment.lake)
    later = _later_actuals(lake, report)
    rows = challengers.actuals(later, lake)
    assert len(rows) and set(rows["challenger_version"]) == {version}
    result = challengers.compare(rows, 0.05).iloc[0]
    assert (
        result["better"]
        and result["p_value"] < 0.05
        and "challenger significantly" in result["note"]
    )
    row = {str(k): v for k, v in result.items()}
    said = promotion.promote_challenger(
        settings.environment, model_name(SEGMENT), row, date.today()
    )
    assert "is now champion" in said
    registry = open_registry(settings.environment)
    assert str(registry.champion(model_name(SEGMENT)).version) == version  # type: ignore[union-attr]
    assert registry.challenger(model_name(SEGMENT)) is None


def _later_actuals(lake: Lake, report: dict) -> dict:
    """A report whose feature table has actuals for the forecast weeks: the challenger's
    forecasts, off by one unit, as if a later batch had brought them."""
    paths = report["regions"]["pnw"]["paths"]
    features = pd.read_parquet(io.BytesIO(lake.read_bytes(f"{paths['features']}/features.parquet")))
    side = lake.read_csv(f"{paths['forecasts']}/challengers.csv", parse_dates=["week_start"])
    keys = ["store_id", "product_id", "week_start"]
    merged = features.merge(side[[*keys, "challenger_forecast"]], on=keys, how="left")
    hit = merged["challenger_forecast"].notna().to_numpy()
    features.loc[hit, "units"] = merged.loc[hit, "challenger_forecast"].to_numpy() + 1.0
    features.loc[hit, "is_future"] = False
    buf = io.BytesIO()
    features.to_parquet(buf)
    later = lake.commit_dataset(
        "features/region=pnw/v=later", {"features.parquet": buf.getvalue()}, {"version": "later"}
    )
    return {"regions": {"pnw": {"paths": {"features": later.path}}}}


def test_challenger_command_sets_clears_and_refuses(
    served_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(served_lake / "lake", tmp_path / "lake")
    config = ["--config", str(local_config(tmp_path))]
    assert main(["models", "challenger", SEGMENT, "1", *config]) == 0
    assert main(["models", "challenger", SEGMENT, *config]) == 0
    assert main(["models", "challenger", SEGMENT, "--clear", *config]) == 0
    assert main(["models", "challenger", SEGMENT, *config]) == 0
    out = capsys.readouterr().out
    assert "challenger v1" in out and "challenger cleared" in out and "no challenger" in out
    assert main(["models", "challenger", SEGMENT, "99", *config]) != 0
    assert "no version 99 of demand.pnw.large.fast" in capsys.readouterr().err


def test_dashboard_shows_the_comparison_with_its_significance() -> None:
    frame = pd.DataFrame({
        "segment": SEGMENT, "champion_version": "1", "challenger_version": "2",
        "actual": np.arange(20.0), "champion_forecast": np.arange(20.0) + 5,
        "challenger_forecast": np.arange(20.0) + np.tile([1.0, -1.5], 10),
    })  # fmt: skip
    summary = challengers.compare(frame, 0.05)
    assert summary["better"].tolist() == [True] and summary["pairs"].tolist() == [20]
    few = challengers.compare(frame.head(4), 0.05)
    assert not few["better"].iloc[0] and "too few" in few["note"].iloc[0]
    page = dashboard.render({"challengers": dashboard._records(summary)})
    assert "challenger-table" in page and "significantly better" in page
