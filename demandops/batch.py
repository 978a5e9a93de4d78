"""The weekly batch on one machine: condition, then per region (in parallel processes)
features → train → score, then the metrics table and the run report."""

from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from demandops import champions, steps
from demandops.hashing import code_version, digest
from demandops.lake import Lake, frame_to_csv_bytes, versioned
from demandops.settings import PipelineConfig, Settings
from ml.metrics import METRICS, metrics_by

Stage = Literal["condition", "train", "score"]
STAGES: tuple[Stage, ...] = ("condition", "train", "score")


@dataclass
class RegionResult:
    region: str
    versions: dict[str, str] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    lifecycle: dict[str, dict[str, Any]] = field(default_factory=dict)


def _timed(result: RegionResult, name: str, fn: Any, *args: Any) -> Any:
    start = time.perf_counter()
    dataset = fn(*args)
    result.seconds[name] = round(time.perf_counter() - start, 3)
    return dataset


def run_region(
    lake_url: str,
    region: str,
    ref: steps.Reference,
    cfg: PipelineConfig,
    until: Stage,
    life: champions.LifecycleContext | None = None,
) -> RegionResult:
    """Run one region's steps up to `until`; each step reuses a committed output if there is one.

    With a lifecycle context the segments' models go through the registry: stale champions are
    refit, candidates registered and gated, and scoring uses the champions.
    """
    lake = Lake(lake_url)
    result = RegionResult(region)
    shipments, promotions = _timed(result, "condition", steps.condition_region, lake, region, ref)
    outputs = {"shipments": shipments, "promotions": promotions}
    if until != "condition":
        features = _timed(
            result,
            "features",
            steps.features_for_region,
            lake,
            region,
            ref,
            shipments,
            promotions,
            cfg,
        )
        plans, refresh = _plan(life, region, features)
        model = _timed(
            result, "train", steps.train_for_region, lake, region, features, cfg, refresh
        )
        outputs |= {"features": features, "model": model}
        scorers = None
        if life is not None:
            decisions = _timed(
                result, "register", champions.register_region, life, lake, model, features, plans
            )
            trained = steps.load_model(lake, model)
            scorers = champions.resolve_scorers(life, lake, trained, decisions)
            result.lifecycle = {name: asdict(d) for name, d in decisions.items()}
        metrics = lake.read_csv(model.file("metrics.csv"))
        result.metrics = [{str(k): v for k, v in row.items()} for row in metrics.to_dict("records")]
        result.models = lake.read_json(model.file("segments.json"))
        if until == "score":
            outputs["forecasts"] = _timed(
                result, "score", steps.score_for_region, lake, region, features, model, scorers
            )
    result.versions = {k: d.version for k, d in outputs.items()}
    result.paths = {k: d.path for k, d in outputs.items()}
    return result


def _plan(
    life: champions.LifecycleContext | None, region: str, features: Any
) -> tuple[dict[str, list[str]], str | None]:
    if life is None:
        return {}, None
    try:
        return champions.plan_region(life, region, features)
    except Exception as exc:  # the registry is unreachable: train and score as if new
        logging.getLogger(__name__).warning("region %s: no retraining plan: %s", region, exc)
        return {}, None


def run_batch(
    settings: Settings,
    region_ids: list[str],
    until: Stage = "score",
    progress: bool = True,
    today: date | None = None,
) -> dict[str, Any]:
    """Run the batch for `region_ids` and return the run report (also written to the lake).

    `today` is the batch's clock (the training and scoring date); default the UTC date.
    """
    lake = Lake(settings.environment.lake)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    today = today or started.date()
    ref = steps.condition_reference(lake, settings.region_ids())
    life = None
    if until != "condition":
        life = champions.context(settings.environment, settings.pipeline.lifecycle, today)
    results = _fan_out(lake, ref, settings, region_ids, until, progress, life)
    report = _report(lake, settings, ref, results, until, started)
    if life is not None:
        report["scoring_date"] = today.isoformat()
        _write_champions(lake, report, today)
    report["seconds"] = round(time.perf_counter() - clock, 2)
    lake.write_bytes(
        f"monitoring/runs/{report['run_id']}.json",
        (json.dumps(report, indent=2, default=str) + "\n").encode(),
    )
    return report


def _fan_out(
    lake: Lake,
    ref: steps.Reference,
    settings: Settings,
    region_ids: list[str],
    until: Stage,
    progress: bool,
    life: champions.LifecycleContext | None = None,
) -> list[RegionResult]:
    cfg = settings.pipeline
    workers = min(settings.environment.max_workers, len(region_ids))
    bar = tqdm(total=len(region_ids), desc=f"{until}: regions", unit="region", disable=not progress)
    results: list[RegionResult] = []
    if workers <= 1:
        for region in region_ids:
            results.append(run_region(lake.url, region, ref, cfg, until, life))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(run_region, lake.url, r, ref, cfg, until, life) for r in region_ids
            ]
            for future in as_completed(futures):
                results.append(future.result())
                bar.update()
    bar.close()
    return sorted(results, key=lambda r: region_ids.index(r.region))


def _report(
    lake: Lake,
    settings: Settings,
    ref: steps.Reference,
    results: list[RegionResult],
    until: Stage,
    started: datetime,
) -> dict[str, Any]:
    dataset_version = digest(
        {"reference": [ref.stores.version, ref.products.version]}
        | {r.region: [r.versions["shipments"], r.versions["promotions"]] for r in results}
    )
    report: dict[str, Any] = {
        "run_id": f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        "started": started.isoformat(timespec="seconds"),
        "stage": until,
        "environment": settings.environment.name,
        "lake": lake.location(),
        "code_version": code_version(),
        "dataset_version": dataset_version,
        "regions": {
            r.region: {"versions": r.versions, "paths": r.paths, "seconds": r.seconds}
            for r in results
        },
    }
    if until != "condition":
        segments = _segment_rows(results)
        overall = _overall(lake, results)
        report["overall"] = overall.set_index("model").round(6).to_dict("index")
        report["segments"] = segments
        report["metrics_path"] = _write_metrics(lake, results, segments, overall)
    return report


def _segment_rows(results: list[RegionResult]) -> list[dict[str, Any]]:
    """Per segment: the forecasting model and its backtest metrics beside every other model's."""
    rows = []
    for r in results:
        metrics = pd.DataFrame(r.metrics)
        for name, info in sorted(r.models.items()):
            region, store_format, velocity = name.split(".")
            seg = metrics[
                (metrics["store_format"] == store_format) & (metrics["velocity"] == velocity)
            ]
            by_model = seg.set_index("model")
            chosen = "hist_avg" if info["kind"] == "baseline" else info["kind"]
            row: dict[str, Any] = {
                "region": region,
                "store_format": store_format,
                "velocity": velocity,
                "n_rows": int(info["n_rows"]),
                "model": info["kind"],
            }
            row |= {metric: _finite(by_model, chosen, metric) for metric in METRICS}
            for prefix, model in (("baseline", "hist_avg"), ("seasonal_baseline", "same_woy_avg")):
                row[f"{prefix}_mape"] = _finite(by_model, model, "mape")
                row[f"{prefix}_wape"] = _finite(by_model, model, "wape")
            row["by_model"] = {
                model: {metric: _finite(by_model, model, metric) for metric in METRICS}
                for model in by_model.index
            }
            if info["note"]:
                row["note"] = info["note"]
            row |= _lifecycle_fields(r.lifecycle.get(name))
            rows.append(row)
    return rows


def _lifecycle_fields(decision: dict[str, Any] | None) -> dict[str, Any]:
    """The registry's view of a segment: champion, promotion, gates, staleness, fallback."""
    if decision is None:
        return {}
    keys = ("champion_version", "candidate_version", "promoted", "stale", "trained_on")
    out = {k: decision[k] for k in keys}
    out |= {
        "gate_reasons": decision["gate_reasons"],
        "retrain_reasons": decision["retrain_reasons"],
    }
    out |= {"fallback": decision["fallback"], "registry_error": decision["error"]}
    return out


def _write_champions(lake: Lake, report: dict[str, Any], today: date) -> None:
    """The monitoring table of this run: per segment its champion, age and staleness."""
    rows = [
        {
            "run_id": report["run_id"],
            "scoring_date": today.isoformat(),
            "segment": f"{s['region']}.{s['store_format']}.{s['velocity']}",
            "champion_version": s.get("champion_version", ""),
            "trained_on": s.get("trained_on", ""),
            "age_days": (today - date.fromisoformat(s["trained_on"])).days
            if s.get("trained_on")
            else None,
            "stale": s.get("stale", False),
            "fallback": s.get("fallback", ""),
            "candidate_version": s.get("candidate_version", ""),
            "promoted": s.get("promoted", False),
            "retrain_reasons": "; ".join(s.get("retrain_reasons", [])),
            "gate_reasons": "; ".join(s.get("gate_reasons", [])),
        }
        for s in report.get("segments", [])
    ]
    path = f"monitoring/champions/{report['run_id']}.csv"
    lake.write_bytes(path, frame_to_csv_bytes(pd.DataFrame(rows)))
    report["champions_path"] = lake.location(path)


def _finite(by_model: pd.DataFrame, model: str, metric: str) -> float | None:
    if model not in by_model.index or metric not in by_model.columns:
        return None
    value = float(by_model[metric].astype(float)[model])
    return None if np.isnan(value) else round(value, 6)


def _overall(lake: Lake, results: list[RegionResult]) -> pd.DataFrame:
    """Holdout metrics of each model over every row of every region."""
    holdout = pd.concat(
        [lake.read_csv(f"{r.paths['model']}/holdout.csv") for r in results], ignore_index=True
    )
    return metrics_by(holdout, ["model"])


def _write_metrics(
    lake: Lake, results: list[RegionResult], segments: list[dict[str, Any]], overall: pd.DataFrame
) -> str:
    model_versions = {r.region: r.versions["model"] for r in results}
    version = digest(model_versions)
    path = versioned("metrics/holdout", version)
    if lake.dataset(path) is None:
        detail = pd.concat([pd.DataFrame(r.metrics) for r in results], ignore_index=True)
        lake.commit_dataset(
            path,
            {
                "segments.csv": frame_to_csv_bytes(pd.DataFrame(segments).drop(columns="by_model")),
                "by_model.csv": frame_to_csv_bytes(detail),
                "overall.csv": frame_to_csv_bytes(overall),
            },
            {"version": version, "models": model_versions},
        )
    return lake.location(path)
