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

SEGMENT = "pnw.large.fast"  # store PNW-001 in the tiny lake, hashed to 0.53: assigned at 0.6
OTHER = "pnw.small.fast"  # store PNW-002, hashed to 0.97: challenged, yet the champion serves
SHARE = 0.6


def _challenger_version(lake: Lake, registry: Registry, segment: str) -> str:
    """A second version of `segment` whose model is the same-week-of-year average (the tiny
    lake's champions are the trailing historical average)."""
    champion = registry.champion(model_name(segment))
    assert champion is not None
    model = lake.dataset(champion.tags["model_dataset"])
    assert model is not None
    trained = pickle.loads(lake.read_bytes(model.file("model.pkl")))
    trained.models[segment].estimator = ColumnBaseline("same_woy_avg").fit(
        pd.DataFrame({"same_woy_avg": [1.0]})
    )
    trained.models[segment].kind = "baseline"
    files = {f.rsplit("/", 1)[1]: lake.read_bytes(f) for f in lake.list_files(model.path)}
    files.pop("manifest.json")
    files["model.pkl"] = pickle.dumps(trained)
    tag = "rival-" + segment.replace(".", "-")
    manifest = {k: v for k, v in model.manifest.items() if k != "files"} | {"version": tag}
    rival = lake.commit_dataset(f"models/region=pnw/v={tag}", files, manifest)
    tags = dict(champion.tags) | {"model_dataset": rival.path, "model_dataset_version": tag}
    run_id = registry.log_run("rival", {}, {}, tags, {"lineage.json": b"{}"})
    return str(registry.register(model_name(segment), run_id, tags | {"run_id": run_id}).version)


@pytest.fixture
def challenged(served_lake: Path, tmp_path: Path) -> tuple[Settings, dict, str]:
    """A copy of the served lake, SEGMENT challenged (by the CLI) and the region re-scored."""
    shutil.copytree(served_lake / "lake", tmp_path / "lake")
    config_dir = local_config(tmp_path)
    pipeline = config_dir / "pipeline.yaml"
    pipeline.write_text(
        pipeline.read_text().replace("challenger_share: 0.2", f"challenger_share: {SHARE}")
    )
    settings = load_settings(config_dir)
    lake, registry = Lake(settings.environment.lake), open_registry(settings.environment)
    config = ["--config", str(config_dir)]
    for segment in (OTHER, SEGMENT):
        version = _challenger_version(lake, registry, segment)
        assert main(["models", "challenger", segment, version, *config]) == 0
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
    assert settings.pipeline.lifecycle.challenger_share == SHARE
    fast = served[served["velocity"] == "fast"]
    assigned = fast[challenger_stores(fast["store_id"], SHARE)]
    assert set(assigned["store_format"]) == {"large"}  # PNW-001's segment only
    assert 0 < len(assigned) < len(fast)
    assert set(assigned["model_version"]) == {version} and set(assigned["model"]) == {"baseline"}
    kept = fast[fast["store_format"] == "small"]  # challenged, but its store is not assigned
    assert set(side["segment"]) == {SEGMENT} and set(kept["model_version"]) == {"1"}
    assert sorted(side["store_id"].unique()) == sorted(assigned["store_id"].unique())
    forecasts = pd.to_numeric(assigned["forecast"]).to_numpy()
    np.testing.assert_allclose(pd.to_numeric(side["challenger_forecast"]), forecasts)
    assert (side["champion_forecast"] != side["challenger_forecast"]).any()
    assert challenger_stores(pd.Series(["PNW-001", "PNW-002"]), SHARE).tolist() == [True, False]


def test_challenger_forecasts_meet_later_actuals_and_the_gate(
    challenged: tuple[Settings, dict, str],
) -> None:
    settings, report, version = challenged
    lake, name = Lake(settings.environment.lake), model_name(SEGMENT)
    rows = challengers.actuals(_later_actuals(lake, report), lake)
    assert len(rows) == 4 and set(rows["challenger_version"]) == {version}  # 1 product, 4 weeks
    np.testing.assert_allclose(rows["actual"], rows["challenger_forecast"] + 1.0)
    few = {str(k): v for k, v in challengers.compare(rows, 0.05).iloc[0].items()}
    assert not few["better"] and few["challenger_mae"] == 1.0 and "too few" in few["note"]
    said = promotion.promote_challenger(settings.environment, name, few, date.today())
    assert "champion v1 kept: too few store-weeks with actuals (4)" in said
    # as the weeks accumulate: 24 store-weeks on which the challenger is closer every time
    more = pd.concat([rows] * 6, ignore_index=True).assign(
        actual=lambda f: f["actual"] + np.arange(24) % 3 / 10
    )
    row = {str(k): v for k, v in challengers.compare(more, 0.05).iloc[0].items()}
    assert row["better"] and row["p_value"] < 0.05 and "challenger significantly" in row["note"]
    assert "is now champion" in promotion.promote_challenger(
        settings.environment, name, row, date.today()
    )
    registry = open_registry(settings.environment)
    assert str(registry.champion(name).version) == version  # type: ignore[union-attr]
    assert registry.challenger(name) is None
    decided = lake.list_files(f"monitoring/promotions/{name}")
    assert any(
        f.endswith(f"v{version}-promoted-challenger") or "promoted-challenger" in f for f in decided
    )


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
