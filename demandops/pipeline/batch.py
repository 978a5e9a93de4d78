"""The weekly batch on one machine: the durable orchestration driven by the local runner, with
the local compute backend (per region, in parallel processes: condition → features → train →
score), then the metrics table and the run report."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from demandops.core import telemetry
from demandops.core.errors import DemandOpsError
from demandops.core.hashing import code_version, digest
from demandops.core.lake import Lake, frame_to_csv_bytes, versioned
from demandops.core.lock import batch_lock
from demandops.core.settings import Settings
from demandops.lifecycle import champions
from demandops.monitoring import tables as monitoring
from demandops.pipeline import orchestration as orch
from demandops.pipeline import steps
from demandops.pipeline.activities import Activities, plan_run
from demandops.pipeline.compute import ComputeBackend
from demandops.pipeline.compute.local import LocalBackend
from demandops.pipeline.progress import show_progress
from demandops.pipeline.region import FAILED_STEP, RegionResult, Stage
from demandops.pipeline.runner import LocalRunner
from ml.metrics import BIAS_ALERT, REPORTED, metric_sums, metrics_from_sums

logger = logging.getLogger(__name__)

LOCAL_MAX_WAIT = 0.5  # seconds: the longest a durable timer sleeps in the local runner


def orchestrate(
    settings: Settings,
    plan: dict[str, Any],
    backend: ComputeBackend,
    instance_id: str,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the durable orchestration of `plan` on this machine with the local runner."""
    bar = tqdm(total=len(plan["regions"]), desc=f"{plan['pipeline']}: regions", unit="region",
               disable=not progress)  # fmt: skip

    def show(status: dict[str, Any] | None) -> None:
        if status:
            subs = {r: f"{instance_id}:{r}" for r in orch.active_regions(status)}
            own = {r: runner.instances[i].context.custom_status
                   for r, i in subs.items() if i in runner.instances}  # fmt: skip
            states = Counter(orch.region_progress(status, own)["regions"].values())
            show_progress(bar, status["done"], dict(sorted(states.items())))

    runner = LocalRunner(
        Activities(settings, backend).table(),
        {orch.RUN_ORCHESTRATOR: orch.run_orchestrator,
         orch.REGION_ORCHESTRATOR: orch.region_orchestrator},
        max_wait=min(plan["poll_seconds"], LOCAL_MAX_WAIT),
        on_status=show,
    )  # fmt: skip
    try:
        outcome: dict[str, Any] = runner.run(orch.RUN_ORCHESTRATOR, plan, instance_id)
    finally:
        bar.close()
    return outcome


def run_batch(
    settings: Settings,
    region_ids: list[str],
    until: Stage = "score",
    progress: bool = True,
    profiles_dir: Path | None = None,
    today: date | None = None,
    lock_wait: float | None = None,
    lock_scope: str | None = None,
) -> dict[str, Any]:
    """Run the batch for `region_ids` through the orchestration, on the local compute backend,
    and return the run report (also written to the lake). It holds the lake's batch lock for
    its environment (demandops/core/lock.py), waiting `lock_wait` seconds for it (default the
    environment's lock_wait_seconds); `lock_scope` names another lock than the environment's.
    `profiles_dir`: the source profiles (default: config/sources/ of the settings). `today` is
    the batch's clock (the training and scoring date of the model lifecycle); default the UTC
    date.

    If a region fails, the others still run to their end; the monitoring tables and the run
    report are written (the failed steps with their errors), then the first failure is raised
    as it was raised in its worker."""
    started = datetime.now(UTC)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    env = settings.environment
    wait = env.lock_wait_seconds if lock_wait is None else lock_wait
    with (
        batch_lock(Lake(env.lake), lock_scope or env.name, run_id, wait),
        telemetry.step(
            "batch", root=True, run_id=run_id, stage=until, environment=env.name
        ) as span,
    ):
        report = _run(settings, region_ids, until, progress, profiles_dir, today, started, run_id)
        span.set(regions=len(report["regions"]), segments=len(report.get("segments", [])))
    return report


def _run(
    settings: Settings,
    region_ids: list[str],
    until: Stage,
    progress: bool,
    profiles_dir: Path | None,
    today: date | None,
    started: datetime,
    run_id: str,
) -> dict[str, Any]:
    lake = Lake(settings.environment.lake)
    clock = time.perf_counter()
    today = today or started.date()
    life = None
    if until != "condition":
        life = champions.context(settings.environment, settings.pipeline.lifecycle, today)
    plan = plan_run(settings, region_ids, until)
    if profiles_dir is not None:
        plan["profiles"] = str(profiles_dir)
    with LocalBackend(settings, life=life) as backend:
        outcome = orchestrate(settings, plan, backend, run_id, progress)
        failures = _failures(outcome, backend)
    try:
        results = [
            RegionResult(**s["outputs"]) for s in outcome["regions"].values() if "outputs" in s
        ]
        profiles = profiles_dir or settings.config_dir / "sources"
        ref = steps.condition_reference(
            lake, settings.region_ids(), profiles, limits=settings.pipeline.limits
        )  # committed: read only
        report = _report(lake, settings, ref, results, until, started, run_id)
        for region, (error, failed) in failures.items():
            report["regions"][region] = {
                "versions": {},
                "paths": {},
                "seconds": failed["seconds"],
                "failed_step": failed["step"],
                "error": _message(error),
            }
        if life is not None:
            report["scoring_date"] = today.isoformat()
            _write_champions(lake, report, today)
        report["seconds"] = round(time.perf_counter() - clock, 2)
        report |= monitoring.write(lake, report, settings.pipeline.drift)  # tables, drift alerts
        lake.write_bytes(
            f"monitoring/runs/{report['run_id']}.json",
            (json.dumps(report, indent=2, default=str) + "\n").encode(),
        )
    except Exception as record_error:
        if not failures:
            raise
        note = f"the run report was not written: {_message(record_error)}"
        logger.error(note)  # a region failed first: its error is the one raised
        first = next(iter(failures.values()))[0]
        first.add_note(note)
        raise first from None
    for error, _ in failures.values():
        raise error
    return report


def _failures(
    outcome: dict[str, Any], backend: LocalBackend
) -> dict[str, tuple[BaseException, dict[str, Any]]]:
    """Per failed region: the exception as raised in its worker (or one that names the state),
    and the step that failed with the seconds of the steps until then."""
    out = {}
    for region, summary in outcome["regions"].items():
        if summary["state"] == "Completed":
            continue
        error = backend.error(summary["run_id"]) if "run_id" in summary else None
        if error is None:
            error = DemandOpsError(f"region {region} {summary['state']}: {summary.get('error')}")
        failed = getattr(error, FAILED_STEP, {"step": "region", "seconds": {}})
        out[region] = (error, failed)
    return out


def _message(error: BaseException) -> str:
    return telemetry.redact(f"{type(error).__name__}: {error}")[:500]


def _report(
    lake: Lake,
    settings: Settings,
    ref: steps.Reference,
    results: list[RegionResult],
    until: Stage,
    started: datetime,
    run_id: str,
) -> dict[str, Any]:
    dataset_version = digest(
        {"reference": {n: d.version for n, d in ref.datasets().items()}}
        | {r.region: [r.versions[s] for s in steps.REGION_SOURCES] for r in results}
    )
    report: dict[str, Any] = {
        "run_id": run_id,
        "started": started.isoformat(timespec="seconds"),
        "stage": until,
        "environment": settings.environment.name,
        "lake": lake.location(),
        "code_version": code_version(),
        "dataset_version": dataset_version,
        "reference": {n: d.path for n, d in ref.datasets().items()},
        "data_quality": [q for r in results for q in r.quality if q["status"] != "pass"],
        "feeds": _feeds(lake, ref, results),
        "regions": {
            r.region: {"versions": r.versions, "paths": r.paths, "seconds": r.seconds}
            for r in results
        },
    }
    if until != "condition" and results:
        segments = _segment_rows(results)
        overall = _overall(lake, results)
        report["overall"] = overall.set_index("model").round(6).to_dict("index")
        report["segments"] = segments
        report["warnings"] = bias_warnings(report["overall"], segments)
        report["warnings"] += member_warnings(segments)
        report["metrics_path"] = _write_metrics(lake, results, segments, overall)
    return report


def _feeds(lake: Lake, ref: steps.Reference, results: list[RegionResult]) -> dict[str, str]:
    """Per feed: `absent` (the deployment has none), or `used` with the rows conditioned."""
    found = {n: [d] for n, d in ref.datasets().items()}
    for r in results:
        for name in steps.REGION_SOURCES:
            dataset = lake.dataset(r.paths[name]) if name in r.paths else None
            found.setdefault(name, []).extend([dataset] if dataset is not None else [])
    states = {
        name: "absent"
        if all(d.manifest.get("absent") for d in sets)
        else f"used ({sum(int(d.manifest.get('rows_out', 0)) for d in sets)} rows)"
        for name, sets in found.items()
        if sets
    }
    booked = sum(int(d.manifest.get("returns_booked", 0)) for d in found.get("shipments", []))
    if booked and states.get("returns") == "absent":
        states["returns"] = f"used ({booked} rows booked from negative shipments)"
    return states


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
            row |= {metric: _finite(by_model, chosen, metric) for metric in REPORTED}
            for prefix, model in (("baseline", "hist_avg"), ("seasonal_baseline", "same_woy_avg")):
                row[f"{prefix}_mape"] = _finite(by_model, model, "mape")
                row[f"{prefix}_wape"] = _finite(by_model, model, "wape")
            row["by_model"] = {
                model: {metric: _finite(by_model, model, metric) for metric in REPORTED}
                for model in by_model.index
            }
            row["members"] = info.get("members", [])
            row |= _lifecycle_fields(r.lifecycle.get(name))
            if info["note"]:
                row["note"] = info["note"]
            rows.append(row)
    return rows


def bias_warnings(overall: dict[str, Any], segments: list[dict[str, Any]]) -> list[str]:
    """A line when the ensemble's backtest bias over every row is below BIAS_ALERT (it buys
    its error with under-forecasts: stock-outs), naming the segments whose model's is too."""
    value = overall.get("ensemble", {}).get("bias")
    if value is None or not value < BIAS_ALERT:
        return []
    low = [
        f"{s['region']}.{s['store_format']}.{s['velocity']}"
        for s in segments
        if s.get("bias") is not None and s["bias"] < BIAS_ALERT
    ]
    where = f"; segments below it: {', '.join(low[:10])}{' …' if len(low) > 10 else ''}"
    return [
        f"ensemble backtest bias {value * 100:+.1f} % (beyond {BIAS_ALERT * 100:.0f} %): it "
        f"forecasts {-value * 100:.0f} % fewer units than sold{where if low else ''}"
    ]


def member_warnings(segments: list[dict[str, Any]]) -> list[str]:
    """A line per segment whose blend excluded a degenerate member (forecasts far off the
    actuals' level on validation), with the reason."""
    return [
        f"{s['region']}.{s['store_format']}.{s['velocity']}: member {m['name']} excluded, "
        f"{m['reason']}"
        for s in segments
        for m in s.get("members", [])
        if m.get("status") == "degenerate"
    ]


def _finite(by_model: pd.DataFrame, model: str, metric: str) -> float | None:
    if model not in by_model.index or metric not in by_model.columns:
        return None
    value = float(by_model[metric].astype(float)[model])
    return None if np.isnan(value) else round(value, 6)


def _overall(lake: Lake, results: list[RegionResult]) -> pd.DataFrame:
    """Holdout metrics of each model over every row of every region, streamed: one region's
    holdout rows in memory at a time, reduced to sums per model."""
    sums = pd.concat(
        [metric_sums(lake.read_csv(f"{r.paths['model']}/holdout.csv"), ["model"]) for r in results]
    )
    return metrics_from_sums(sums.groupby("model", sort=True).sum().reset_index(), ["model"])


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
                "segments.csv": frame_to_csv_bytes(
                    pd.DataFrame(segments).drop(columns=["by_model", "members"])
                ),
                "by_model.csv": frame_to_csv_bytes(detail),
                "overall.csv": frame_to_csv_bytes(overall),
            },
            {"version": version, "models": model_versions},
        )
    return lake.location(path)


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
    columns = ["run_id", "scoring_date", "segment", "champion_version", "trained_on", "age_days",
               "stale", "fallback", "candidate_version", "promoted", "retrain_reasons",
               "gate_reasons"]  # fmt: skip
    lake.write_bytes(path, frame_to_csv_bytes(pd.DataFrame(rows, columns=columns)))
    report["champions_path"] = lake.location(path)
