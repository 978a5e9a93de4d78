"""Lifecycle rules and the registry on a real MLflow sqlite store: gates, staleness, triggers,
rollback, and two processes registering at the same time."""

from __future__ import annotations

import shutil
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demandops.lifecycle.policy import GateConfig, evaluate_gates, is_stale, retrain_reasons
from demandops.lifecycle.registry import Registry, RegistryError, model_name, resolve_uri
from ml.models import ColumnBaseline
from ml.score import SegmentScorer, score_region
from ml.train import TrainedRegion
from tests.conftest import init_registry

CFG = GateConfig(metric="wape", max_error=0.45, min_improvement=0.20, champion_tolerance=0.05)


# -- gates --------------------------------------------------------------------------------
def test_gates_accept_a_good_candidate_without_champion() -> None:
    result = evaluate_gates(0.30, 0.40, None, CFG)
    assert result.passed
    assert result.reasons == [
        "wape 0.3000 <= max 0.45",
        "25.0% better than hist_avg wape 0.4000 (>= 20% required)",
        "no champion to compare on the same window",
    ]


@pytest.mark.parametrize(
    ("candidate", "baseline", "champion", "failing"),
    [
        (0.46, 0.90, None, "wape 0.4600 > max 0.45"),
        (0.33, 0.40, None, "17.5% better than hist_avg wape 0.4000 (< 20% required)"),
        (0.30, 0.60, (0.28, 0.30), "wape 0.3000 vs champion 0.2800 on the same window (beyond"),
        (float("nan"), 0.60, None, "wape: no backtest value for the candidate"),
        (0.30, None, None, "wape: no baseline value to beat"),
    ],
)
def test_gates_reject_with_the_reason(
    candidate: float,
    baseline: float | None,
    champion: tuple[float, float] | None,
    failing: str,
) -> None:
    result = evaluate_gates(candidate, baseline, champion, CFG)
    assert not result.passed
    assert any(r.startswith(failing) for r in result.reasons), result.reasons


def test_champion_tolerance_is_relative() -> None:
    assert evaluate_gates(0.3, 0.5, (0.2000, 0.2100), CFG).passed  # 5 % worse: within
    result = evaluate_gates(0.3, 0.5, (0.2000, 0.2101), CFG)
    assert not result.passed
    assert result.reasons[2].startswith("wape 0.2101 vs champion 0.2000 on the same window")


def test_the_champion_gate_compares_its_own_window_only() -> None:
    """The first two gates use the full backtest; the third the window shared with the champion
    (which may be a few weeks where both did badly)."""
    result = evaluate_gates(0.30, 0.50, (1.80, 1.85), CFG)
    assert result.passed, result.reasons


def test_gate_metric_is_configurable() -> None:
    mape_cfg = GateConfig(metric="mape")
    assert evaluate_gates(0.3, 0.5, None, mape_cfg).reasons[0] == "mape 0.3000 <= max 0.45"


# -- staleness and triggers ---------------------------------------------------------------
@pytest.mark.parametrize(("days", "stale"), [(59, False), (60, False), (61, True)])
def test_stale_only_after_more_than_60_days(days: int, stale: bool) -> None:
    trained = date(2026, 1, 1)
    assert is_stale(trained, trained + timedelta(days=days), 60) is stale
    tags = {"code_version": "c", "dataset_version": "d", "trained_on": trained.isoformat()}
    reasons = retrain_reasons(tags, "d", "c", trained + timedelta(days=days), 60)
    assert reasons == (
        [f"stale: trained {days} days before the scoring date (> 60)"] if stale else []
    )


def test_retrain_reasons_name_code_and_data_changes() -> None:
    tags = {"code_version": "c1", "dataset_version": "d1", "trained_on": "2026-01-01"}
    assert retrain_reasons(tags, "d2", "c2", date(2026, 1, 2), 60) == [
        "code changed: c1 -> c2",
        "new data: d1 -> d2",
    ]
    assert retrain_reasons(None, "d", "c", date(2026, 1, 2), 60) == ["no champion"]


# -- the registry -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    init_registry(db)
    return db


@pytest.fixture
def registry(empty_store: Path, tmp_path: Path) -> Registry:
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri, artefacts = resolve_uri("sqlite:///{lake}/mlflow.db", str(tmp_path), True)
    return Registry(uri, artefacts)


def _candidate(registry: Registry, name: str, n: int) -> str:
    run_id = registry.log_run(
        f"train.{name}",
        {"alpha": n},
        {"ensemble.wape": 0.3},
        {"segment": name},
        {"segment_model.pkl": b"model %d" % n},
    )
    return str(registry.register(name, run_id, {"n": str(n)}).version)


def test_registry_uri_needs_a_local_lake_for_sqlite() -> None:
    with pytest.raises(ValueError, match="needs a local lake"):
        resolve_uri("sqlite:///{lake}/mlflow.db", "abfs://lake", False)
    assert resolve_uri("azureml://x/mlflow", "abfs://lake", False) == ("azureml://x/mlflow", None)


def test_a_sqlite_store_outside_the_lake_keeps_its_artefacts_beside_it(tmp_path: Path) -> None:
    """Not in the working directory's ./mlruns, where MLflow would put them."""
    uri = f"sqlite:///{tmp_path}/registry/mlflow.db"
    found = resolve_uri(uri, "abfs://lake", False)
    assert found == (uri, (tmp_path / "registry" / "mlflow-artifacts").as_uri())


def test_register_champion_and_rollback(registry: Registry) -> None:
    name = model_name("pnw.large.fast")
    v1, v2 = _candidate(registry, name, 1), _candidate(registry, name, 2)
    assert registry.version(name, v1).tags["status"] == "candidate"
    assert registry.champion(name) is None
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback(name)
    registry.set_champion(name, v1)
    registry.set_champion(name, v2)
    assert registry.champion(name).version == int(v2)  # type: ignore[union-attr]
    assert registry.version(name, v1).tags["status"] == "retired"
    assert registry.rollback(name) == (v2, v1)
    assert registry.champion(name).version == int(v1)  # type: ignore[union-attr]
    assert registry.version(name, v2).tags["status"] == "rolled_back"
    assert registry.champion_history(name) == [v1]
    run_id = registry.version(name, v2).run_id
    assert registry.artefact(str(run_id), "segment_model.pkl") == b"model 2"
    assert registry.names() == [name]


def _register_many(uri: str, artefacts: str | None, segment: str, n: int) -> list[str]:
    registry = Registry(uri, artefacts)
    shared, own = model_name("pnw.large.fast"), model_name(segment)
    return [_candidate(registry, name, i) for i in range(n) for name in (shared, own)]


def test_two_processes_register_at_the_same_time(registry: Registry) -> None:
    """Two workers (separate processes) write one sqlite store: every version lands, numbered
    without gaps or duplicates."""
    n = 6
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        jobs = [
            pool.submit(_register_many, registry.uri, registry.artifact_root, seg, n)
            for seg in ("pnw.small.slow", "tx.small.slow")
        ]
        results = [job.result(timeout=120) for job in jobs]
    assert all(len(r) == 2 * n for r in results)
    shared = [int(v.version) for v in registry.versions(model_name("pnw.large.fast"))]
    assert sorted(shared) == list(range(1, 2 * n + 1))
    for seg in ("pnw.small.slow", "tx.small.slow"):
        own = [int(v.version) for v in registry.versions(model_name(seg))]
        assert own == list(range(1, n + 1))


# -- scoring failover ---------------------------------------------------------------------
def _trained(features: pd.DataFrame) -> TrainedRegion:
    history = features[~features["is_future"]]
    velocity = pd.Series({"p1": "fast", "p2": "slow"}, name="velocity")
    return TrainedRegion(
        region="pnw",
        velocity=velocity,
        models={},
        metrics=pd.DataFrame(),
        holdout=pd.DataFrame(),
        holdout_start=history["week_start"].min(),
        last_week=history["week_start"].max(),
    )


def test_a_failing_segment_gets_the_baseline_and_the_others_go_on() -> None:
    weeks = pd.date_range("2026-01-05", periods=6, freq="7D")
    features = pd.DataFrame(
        [
            {
                "region": "pnw",
                "store_id": "s1",
                "product_id": p,
                "week_start": w,
                "store_format": "large",
                "is_future": i >= 4,
                "hist_avg": 10.0 if p == "p1" else 2.0,
                "same_woy_avg": 7.0,
            }
            for p in ("p1", "p2")
            for i, w in enumerate(weeks)
        ]
    )
    scorers = {
        "pnw.large.fast": SegmentScorer(
            "ensemble", ColumnBaseline("same_woy_avg").fit(features), "3", "r", "2026-01-01"
        ),
        "pnw.large.slow": SegmentScorer(
            "ensemble", ColumnBaseline("missing_column"), "4", "r", "2026-01-01", True
        ),
    }
    out = score_region(features, _trained(features), scorers).set_index("product_id")
    fast, slow = out.loc["p1"], out.loc["p2"]
    assert (fast["forecast"] == 7.0).all() and (fast["model"] == "ensemble").all()
    assert (fast["model_version"] == "3").all() and (fast["fallback"] == "").all()
    assert (slow["forecast"] == 2.0).all() and (slow["model"] == "baseline").all()
    assert slow["fallback"].str.startswith("scoring failed: ").all()
    assert slow["stale"].all() and not fast["stale"].any()
    assert np.isfinite(out["forecast"]).all()

    no_champion = {"pnw.large.fast": SegmentScorer("baseline", None, fallback="no champion")}
    out = score_region(features, _trained(features), no_champion)
    assert (out["model"] == "baseline").all() and (
        out["forecast"] == out["baseline_forecast"]
    ).all()
    assert set(out["fallback"]) == {"no champion", "no model for this segment"}
