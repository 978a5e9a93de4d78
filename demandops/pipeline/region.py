"""One region's run: its steps chained up to a stage, each reusing a committed output.

This is the unit of work a compute backend executes (in a local worker process, or in an Azure ML
job through the `demandops` CLI)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from demandops.core import telemetry
from demandops.core.lake import Lake
from demandops.core.pipeline_config import PipelineConfig
from demandops.lifecycle import champions
from demandops.pipeline import steps

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
    quality: list[dict[str, Any]] = field(default_factory=list)  # data-quality checks
    lifecycle: dict[str, dict[str, Any]] = field(default_factory=dict)  # registry decisions


FAILED_STEP = "demandops_failed_step"  # set on the exception of a failed step


def _timed(result: RegionResult, name: str, fn: Any, *args: Any) -> Any:
    """Run one step in its telemetry span; a failure carries the step and the seconds so far
    (in its attribute FAILED_STEP) for the monitoring tables."""
    start = time.perf_counter()
    try:
        with telemetry.step(name, region=result.region) as span:
            output = fn(*args)
            span.set(rows=_rows(output))
    except Exception as exc:
        result.seconds[name] = round(time.perf_counter() - start, 3)
        setattr(exc, FAILED_STEP, {"step": name, "seconds": dict(result.seconds)})
        raise
    result.seconds[name] = round(time.perf_counter() - start, 3)
    return output


def _rows(output: Any) -> int | None:
    """Rows a step produced: its dataset's rows, the shipments conditioned, or segments."""
    if isinstance(output, steps.RegionInputs):
        output = output.shipments
    if isinstance(output, dict):
        return len(output)
    manifest = getattr(output, "manifest", {})
    rows = manifest.get("rows", manifest.get("rows_out"))
    return int(rows) if rows is not None else None


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
    with telemetry.step("region", region=region, stage=until):
        return _run_region(Lake(lake_url), region, ref, cfg, until, life)


def _run_region(
    lake: Lake,
    region: str,
    ref: steps.Reference,
    cfg: PipelineConfig,
    until: Stage,
    life: champions.LifecycleContext | None,
) -> RegionResult:
    result = RegionResult(region)
    inputs = _timed(
        result, "condition", steps.condition_region, lake, region, ref, cfg.horizon_weeks
    )
    outputs = inputs.datasets()
    result.quality = inputs.quality.manifest["results"]
    if until != "condition":
        features = _timed(
            result, "features", steps.features_for_region, lake, region, ref, inputs, cfg
        )
        plans, refresh = _plan(life, region, features)
        model = _timed(
            result, "train", steps.train_for_region, lake, region, features, cfg, refresh
        )
        outputs |= {"features": features, "model": model}
        scorers, rivals = None, {}
        if life is not None:
            decisions = _timed(
                result, "register", champions.register_region, life, lake, model, features, plans
            )
            trained = steps.load_model(lake, model)
            scorers = champions.resolve_scorers(life, lake, trained, decisions)
            rivals = champions.resolve_challengers(life, lake, trained, scorers)
            result.lifecycle = {name: asdict(d) for name, d in decisions.items()}
        metrics = lake.read_csv(model.file("metrics.csv"))
        result.metrics = [{str(k): v for k, v in row.items()} for row in metrics.to_dict("records")]
        result.models = lake.read_json(model.file("segments.json"))
        if until == "score":
            outputs["forecasts"] = _timed(
                result,
                "score",
                steps.score_for_region,
                lake,
                region,
                features,
                model,
                scorers,
                (rivals, life.cfg.challenger_share if life else 0.0),
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
