"""The registry layer over the lake's model datasets: plan, register, gate, promote, resolve.

Per region, after `train_for_region` committed `models/region=<r>/v=<h>/`, every segment's
model is logged as an MLflow run and registered as a candidate of `demand.<segment>`; the gates
decide whether it becomes the champion. Scoring then uses each segment's champion, loaded from
the model dataset its version points to, and the baseline where there is none or it fails.
Every step is per segment: an error in one is recorded and the others go on.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from demandops.core.errors import ConfigError
from demandops.core.hashing import code_version
from demandops.core.lake import Dataset, Lake, frame_to_csv_bytes
from demandops.lifecycle import policy
from demandops.lifecycle.candidates import candidate_tags, dataset_version, run_metrics, run_params
from demandops.lifecycle.context import (
    LifecycleContext,
    SegmentDecision,
    context,
    load_segment_model,
    open_registry,
)
from demandops.lifecycle.gates import gate
from demandops.lifecycle.lineage import data_lineage
from demandops.lifecycle.registry import Registry, model_name
from ml import pyfunc
from ml.artifacts import load_model, read_features
from ml.score import SegmentScorer
from ml.train import TrainedRegion

__all__ = [
    "ConfigError",
    "LifecycleContext",
    "SegmentDecision",
    "context",
    "open_registry",
    "plan_region",
    "record_decision",
    "register_region",
    "resolve_challengers",
    "resolve_scorers",
]

log = logging.getLogger(__name__)


def plan_region(
    ctx: LifecycleContext, region: str, features: Dataset
) -> tuple[dict[str, list[str]], str | None]:
    """Per registered segment of the region, why it needs retraining; and a refresh token.

    The token (the scoring date) is set when a champion is stale: it makes the training step's
    version new, so the region is refit even on unchanged data and code.
    """
    registry = ctx.registry()
    plans: dict[str, list[str]] = {}
    stale = False
    for name in registry.names(model_name(region + ".")):
        champion = registry.champion(name)
        tags = dict(champion.tags) if champion is not None else None
        reasons = policy.retrain_reasons(
            tags,
            dataset_version(features),
            code_version(),
            ctx.today,
            ctx.cfg.stale_after_days,
        )
        plans[name.removeprefix(model_name(""))] = reasons
        stale = stale or any(r.startswith("stale") for r in reasons)
    return plans, (ctx.today.isoformat() if stale and ctx.promotion == "auto" else None)


def register_region(
    ctx: LifecycleContext,
    lake: Lake,
    model: Dataset,
    features: Dataset,
    plans: dict[str, list[str]],
) -> dict[str, SegmentDecision]:
    """Register each segment's new model as a candidate and apply the gates."""
    trained = load_model(lake, model)
    frames: dict[str, pd.DataFrame] = {}

    def frame() -> pd.DataFrame:
        if "f" not in frames:
            frames["f"] = read_features(lake, features)
        return frames["f"]

    decisions = {s: SegmentDecision(s, plans.get(s, ["no champion"])) for s in trained.models}
    if ctx.promotion != "auto":  # champions are set by hand here: nothing to register
        return decisions
    registry = ctx.registry()
    lineage = json.dumps(data_lineage(lake, features), indent=2, sort_keys=True).encode()
    for segment, decision in sorted(decisions.items()):
        try:
            _register_segment(
                ctx, registry, lake, (trained, model, features, lineage), plans, decision, frame
            )
        except Exception as exc:  # one segment's registry failure never stops the others
            log.warning("segment %s: registration failed: %s", segment, exc)
            decision.error = f"registration failed: {type(exc).__name__}: {exc}"[:300]
    return decisions


def _register_segment(
    ctx: LifecycleContext,
    registry: Registry,
    lake: Lake,
    inputs: tuple[TrainedRegion, Dataset, Dataset, bytes],
    plans: dict[str, list[str]],
    decision: SegmentDecision,
    frame: Callable[[], pd.DataFrame],
) -> None:
    """Register the segment's model once per model dataset, and decide it once: a version a
    crash left `candidate` (registered, or gated, but not decided) is decided now."""
    trained, model = inputs[0], inputs[1]
    name = model_name(decision.segment)
    existing = registry.find(name, model_dataset_version=model.version)
    if existing is not None and existing.tags.get("status") != "candidate":
        decision.candidate_version = str(existing.version)  # registered and judged before
        decision.gate_reasons = [r for r in existing.tags.get("gate_reasons", "").split("; ") if r]
        decision.retrain_reasons = []
        return
    if existing is None and decision.segment in plans and not plans[decision.segment]:
        return  # its champion is current: the region was refit for another segment's sake
    version = existing or _register(ctx, registry, inputs, decision, frame)
    decision.candidate_version = str(version.version)
    passed, reasons, values = _judge(ctx, registry, lake, trained, version, decision, frame)
    if passed:
        registry.set_champion(name, str(version.version))
    else:
        registry.tag_version(name, str(version.version), {"status": "rejected"})
    for older in registry.versions(name):  # a crash's undecided candidate of older data
        if older.tags.get("status") == "candidate" and older.version != version.version:
            registry.tag_version(name, str(older.version), {"status": "superseded"})
    decision.promoted = passed
    decision.gate_reasons = reasons
    values |= {"retrain_reasons": version.tags.get("retrain_reasons", ""),
               "run_id": version.tags.get("run_id", "")}  # fmt: skip
    outcome = "promoted" if passed else "rejected"
    record_decision(
        lake, ctx.environment, name, str(version.version), outcome, reasons, values, ctx.today
    )


def _register(
    ctx: LifecycleContext,
    registry: Registry,
    inputs: tuple[TrainedRegion, Dataset, Dataset, bytes],
    decision: SegmentDecision,
    frame: Callable[[], pd.DataFrame],
) -> ModelVersion:
    """Log the segment's training run (its model an MLflow pyfunc, with example rows of the
    feature `frame`) and register it as a new candidate version."""
    trained, model, features, lineage = inputs
    seg_model = trained.models[decision.segment]
    tags = candidate_tags(ctx, trained, model, features, decision.segment, seg_model.kind)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp, "model")
        pyfunc.save(folder, seg_model, pyfunc.example_rows(frame(), trained, decision.segment))
        run_id = registry.log_run(
            f"train.{decision.segment}",
            params=run_params(model, seg_model.kind, seg_model.n_rows),
            metrics=run_metrics(trained, decision.segment),
            tags=tags,
            artefacts={"lineage.json": lineage},
            model_dir=folder,
        )
    tags |= {"run_id": run_id, "retrain_reasons": "; ".join(decision.retrain_reasons)}
    return registry.register(model_name(decision.segment), run_id, tags)


def _judge(
    ctx: LifecycleContext,
    registry: Registry,
    lake: Lake,
    trained: TrainedRegion,
    version: ModelVersion,
    decision: SegmentDecision,
    frame: Callable[[], pd.DataFrame],
) -> tuple[bool, list[str], dict[str, Any]]:
    """The gates' verdict on a candidate: recorded on it already (a crash came after the
    gates), or computed against the current champion and tagged on the version."""
    name, tags = model_name(decision.segment), version.tags
    if tags.get("gate_passed") in ("true", "false"):
        reasons = [r for r in tags.get("gate_reasons", "").split("; ") if r]
        return tags["gate_passed"] == "true", reasons, {}
    champion = registry.champion(name)
    result, values = gate(ctx, lake, registry, trained, decision.segment, champion, frame)
    registry.tag_version(
        name,
        str(version.version),
        {
            "gate_passed": str(result.passed).lower(),
            "gate_reasons": "; ".join(result.reasons),
            "decided_on": ctx.today.isoformat(),
        },
    )
    return result.passed, result.reasons, values


def record_decision(
    lake: Lake,
    environment: str,
    name: str,
    version: str,
    decision: str,
    reasons: list[str],
    values: dict[str, Any],
    today: date,
) -> None:
    """One row in `monitoring/promotions/<name>/v<version>-<decision>[-<time>].csv`.

    The gates judge a version once; manual operations (which may repeat) add the time.
    """
    now = datetime.now(UTC)
    row = {
        "decided_on": today.isoformat(),
        "decided_at": now.isoformat(timespec="seconds"),
        "environment": environment,
        "model": name,
        "version": version,
        "decision": decision,
        "reasons": "; ".join(reasons),
    } | values
    stamp = "" if decision in ("promoted", "rejected") else f"-{now:%Y%m%dT%H%M%S%fZ}"
    lake.write_bytes(
        f"monitoring/promotions/{name}/v{version}-{decision}{stamp}.csv",
        frame_to_csv_bytes(pd.DataFrame([row])),
    )


def resolve_scorers(
    ctx: LifecycleContext, lake: Lake, trained: TrainedRegion, decisions: dict[str, SegmentDecision]
) -> dict[str, SegmentScorer]:
    """Each segment's champion (or the baseline, and why), with its training date and age."""
    registry = ctx.registry()
    scorers = {}
    loaded: dict[str, TrainedRegion] = {}
    for segment in sorted(trained.models):
        decision = decisions.setdefault(segment, SegmentDecision(segment))
        try:
            scorer = _champion_scorer(ctx, lake, registry, segment, loaded)
        except Exception as exc:  # a broken champion: this segment forecasts the baseline
            log.warning("segment %s: champion unusable: %s", segment, exc)
            scorer = SegmentScorer("baseline", None, fallback=f"champion unusable: {exc}"[:200])
        scorers[segment] = scorer
        decision.champion_version = scorer.version
        decision.trained_on = scorer.trained_on
        decision.stale = scorer.stale
        decision.fallback = scorer.fallback
    return scorers


def _champion_scorer(
    ctx: LifecycleContext,
    lake: Lake,
    registry: Registry,
    segment: str,
    loaded: dict[str, TrainedRegion],
) -> SegmentScorer:
    champion = registry.champion(model_name(segment))
    if champion is None:
        return SegmentScorer("baseline", None, fallback="no champion")
    tags = champion.tags
    trained_on = tags["trained_on"]
    stale = policy.is_stale(date.fromisoformat(trained_on), ctx.today, ctx.cfg.stale_after_days)
    seg_model = load_segment_model(lake, tags["model_dataset"], segment, loaded)
    return SegmentScorer(
        seg_model.kind,
        seg_model.estimator,
        str(champion.version),
        tags.get("run_id", ""),
        trained_on,
        stale,
    )


def resolve_challengers(
    ctx: LifecycleContext, lake: Lake, trained: TrainedRegion, scorers: dict[str, SegmentScorer]
) -> dict[str, SegmentScorer]:
    """Each segment's challenger (the registry alias, else `lifecycle.challengers`), where it
    is not the champion; one that cannot be loaded is left out with a warning."""
    registry = ctx.registry()
    out: dict[str, SegmentScorer] = {}
    for segment in sorted(trained.models):
        try:
            found = registry.challenger(model_name(segment))
            if found is None and segment in ctx.cfg.challengers:
                found = registry.version(model_name(segment), ctx.cfg.challengers[segment])
            if found is None or str(found.version) == scorers[segment].version:
                continue
            tags = found.tags
            seg_model = load_segment_model(lake, tags["model_dataset"], segment)
        except Exception as exc:  # a broken challenger never stops the champion's forecasts
            log.warning("segment %s: challenger unusable: %s", segment, exc)
            continue
        trained_on = tags.get("trained_on", "")
        stale = bool(trained_on) and policy.is_stale(
            date.fromisoformat(trained_on), ctx.today, ctx.cfg.stale_after_days
        )
        out[segment] = SegmentScorer(
            seg_model.kind, seg_model.estimator, str(found.version), tags.get("run_id", ""),
            trained_on, stale,
        )  # fmt: skip
    return out
