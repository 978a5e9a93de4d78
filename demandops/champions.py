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
import pickle
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from demandops.errors import ConfigError
from demandops.hashing import code_version, digest
from demandops.lake import Dataset, Lake, frame_to_csv_bytes
from demandops.lineage import data_lineage
from demandops.settings import Environment, LifecycleConfig
from demandops.steps import load_model, read_features
from ml import lifecycle
from ml.metrics import mape, wape
from ml.registry import Registry, model_name, resolve_uri
from ml.score import SegmentScorer
from ml.train import SegmentModel, TrainedRegion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LifecycleContext:
    """What a region's worker needs to reach the registry (picklable)."""

    registry_uri: str
    artifact_root: str | None
    environment: str
    promotion: str
    today: date
    cfg: LifecycleConfig

    def registry(self) -> Registry:
        return Registry(self.registry_uri, self.artifact_root)


@dataclass
class SegmentDecision:
    """What the lifecycle did for one segment in one batch, and why."""

    segment: str
    retrain_reasons: list[str] = field(default_factory=list)
    candidate_version: str = ""
    promoted: bool = False
    gate_reasons: list[str] = field(default_factory=list)
    champion_version: str = ""
    trained_on: str = ""
    stale: bool = False
    fallback: str = ""
    error: str = ""


def open_registry(env: Environment) -> Registry:
    """The environment's registry, `{lake}` substituted; a bad URI is a ConfigError."""
    lake = Lake(env.lake)
    try:
        uri, artifacts = resolve_uri(env.registry_uri, lake.location(), lake.is_local)
    except ValueError as exc:
        raise ConfigError(f"environments/{env.name}.yaml", "registry_uri", str(exc)) from exc
    return Registry(uri, artifacts)


def context(env: Environment, cfg: LifecycleConfig, today: date) -> LifecycleContext:
    """The context for a batch: the store is created here, once, before workers use it."""
    registry = open_registry(env)
    registry.experiment_id()
    return LifecycleContext(
        registry.uri, registry.artifact_root, env.name, env.promotion, today, cfg
    )


@cache
def git_commit() -> str:
    """The git commit of the code, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def dataset_version(features: Dataset) -> str:
    """The version of the data behind a feature table (its conditioned inputs, not the code)."""
    return digest(features.manifest.get("depends", {}))


# -- before training ----------------------------------------------------------------------
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
        reasons = lifecycle.retrain_reasons(
            tags,
            dataset_version(features),
            code_version(),
            ctx.today,
            ctx.cfg.stale_after_days,
        )
        plans[name.removeprefix(model_name(""))] = reasons
        stale = stale or any(r.startswith("stale") for r in reasons)
    return plans, (ctx.today.isoformat() if stale and ctx.promotion == "auto" else None)


# -- after training -----------------------------------------------------------------------
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
    trained, model, features, lineage = inputs
    name = model_name(decision.segment)
    existing = registry.find(name, model_dataset_version=model.version)
    if existing is not None:  # this model dataset was registered and judged before
        decision.candidate_version = str(existing.version)
        decision.gate_reasons = [r for r in existing.tags.get("gate_reasons", "").split("; ") if r]
        decision.retrain_reasons = []
        return
    if decision.segment in plans and not plans[decision.segment]:
        return  # its champion is current: the region was refit for another segment's sake
    seg_model = trained.models[decision.segment]
    tags = _tags(ctx, trained, model, features, decision.segment, seg_model.kind)
    run_id = registry.log_run(
        f"train.{decision.segment}",
        params=_params(model, seg_model.kind, seg_model.n_rows),
        metrics=_metrics(trained, decision.segment),
        tags=tags,
        artefacts={
            "segment_model.pkl": pickle.dumps(seg_model, protocol=pickle.HIGHEST_PROTOCOL),
            "lineage.json": lineage,
        },
    )
    tags |= {"run_id": run_id, "retrain_reasons": "; ".join(decision.retrain_reasons)}
    version = str(registry.register(name, run_id, tags).version)
    decision.candidate_version = version
    champion = registry.champion(name)
    result, values = gate(ctx, lake, registry, trained, decision.segment, champion, frame)
    registry.tag_version(
        name,
        version,
        {
            "gate_passed": str(result.passed).lower(),
            "gate_reasons": "; ".join(result.reasons),
            "decided_on": ctx.today.isoformat(),
        },
    )
    if result.passed:
        registry.set_champion(name, version)
    else:
        registry.tag_version(name, version, {"status": "rejected"})
    decision.promoted = result.passed
    decision.gate_reasons = result.reasons
    record_decision(
        lake,
        ctx.environment,
        name,
        version,
        "promoted" if result.passed else "rejected",
        result.reasons,
        values | {"retrain_reasons": "; ".join(decision.retrain_reasons), "run_id": run_id},
        ctx.today,
    )


def _params(model: Dataset, kind: str, n_rows: int) -> dict[str, Any]:
    params = dict(model.manifest.get("params", {}))
    return params | {"model_kind": kind, "n_rows": n_rows}


def _segment_metrics(trained: TrainedRegion, segment: str) -> pd.DataFrame:
    _, store_format, velocity = segment.split(".")
    m = trained.metrics
    return m[(m["store_format"] == store_format) & (m["velocity"] == velocity)]


def _metrics(trained: TrainedRegion, segment: str) -> dict[str, float]:
    out = {}
    for row in _segment_metrics(trained, segment).to_dict("records"):
        for metric in ("mape", "wape", "rmse", "rmse0", "bias"):
            value = float(row[metric])
            if pd.notna(value):
                out[f"{row['model']}.{metric}"] = value
    return out


def _window(trained: TrainedRegion) -> tuple[str, str]:
    return str(pd.Timestamp(trained.holdout_start).date()), str(
        pd.Timestamp(trained.last_week).date()
    )


def _tags(
    ctx: LifecycleContext,
    trained: TrainedRegion,
    model: Dataset,
    features: Dataset,
    segment: str,
    kind: str,
) -> dict[str, str]:
    region, store_format, velocity = segment.split(".")
    holdout_start, trained_through = _window(trained)
    return {
        "segment": segment,
        "region": region,
        "store_format": store_format,
        "velocity": velocity,
        "model_kind": kind,
        "model_dataset": model.path,
        "model_dataset_version": model.version,
        "features_dataset": features.path,
        "features_version": features.version,
        "dataset_version": dataset_version(features),
        "code_version": code_version(),
        "git_commit": git_commit(),
        "trained_on": ctx.today.isoformat(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "holdout_start": holdout_start,
        "trained_through": trained_through,
        "environment": ctx.environment,
    }


def scored_model(kind: str) -> str:
    """The backtest's name for the model a segment forecasts with."""
    return "hist_avg" if kind == "baseline" else kind


def gate(
    ctx: LifecycleContext,
    lake: Lake,
    registry: Registry,
    trained: TrainedRegion,
    segment: str,
    champion: Any,
    frame: Callable[[], pd.DataFrame],
) -> tuple[lifecycle.GateResult, dict[str, Any]]:
    """Apply the gates to a segment's candidate; also return the numbers they compared."""
    cfg = ctx.cfg
    kind = trained.models[segment].kind
    by_model = _segment_metrics(trained, segment).set_index("model")[cfg.gate_metric]
    candidate = _float(by_model.get(scored_model(kind)))
    baseline = _float(by_model.get("hist_avg"))
    same, label = None, "champion"
    if champion is not None:
        label = f"champion v{champion.version}"
        try:
            same = _on_same_window(
                cfg.gate_metric, lake, registry, trained, segment, champion, frame
            )
        except Exception as exc:  # an unusable champion cannot block its replacement
            log.warning("segment %s: champion not comparable: %s", segment, exc)
            label = f"champion v{champion.version} (unusable: {type(exc).__name__})"
    gate_cfg = lifecycle.GateConfig(
        cfg.gate_metric, cfg.max_error, cfg.min_improvement_over_baseline, cfg.champion_tolerance
    )
    result = lifecycle.evaluate_gates(candidate, baseline, same, gate_cfg, label)
    values = {
        "gate_metric": cfg.gate_metric,
        "candidate": candidate,
        "baseline": baseline,
        "champion_version": "" if champion is None else str(champion.version),
        "champion_same_window": None if same is None else same[0],
        "candidate_same_window": None if same is None else same[1],
    }
    return result, values


def _float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _on_same_window(
    metric: str,
    lake: Lake,
    registry: Registry,
    trained: TrainedRegion,
    segment: str,
    champion: Any,
    frame: Callable[[], pd.DataFrame],
) -> tuple[float, float] | None:
    """(champion, candidate) metric on one window both can be judged on, or None.

    Same backtest windows (same history): the champion's own logged backtest metric against
    the candidate's. Newer history: the champion's frozen model on the candidate's backtest
    rows after the last week it was trained on, against the candidate's forecasts of them.
    """
    tags = champion.tags
    kind = trained.models[segment].kind
    by_model = _segment_metrics(trained, segment).set_index("model")[metric]
    if (tags.get("holdout_start"), tags.get("trained_through")) == _window(trained):
        logged = registry.run(tags["run_id"]).data.metrics
        key = f"{scored_model(tags['model_kind'])}.{metric}"
        return float(logged[key]), float(by_model[scored_model(kind)])
    holdout = trained.holdout
    _, store_format, velocity = segment.split(".")
    rows = holdout[
        (holdout["store_format"] == store_format)
        & (holdout["velocity"] == velocity)
        & (holdout["model"] == scored_model(kind))
        & (pd.to_datetime(holdout["week_start"]) > pd.Timestamp(tags["trained_through"]))
    ]
    if rows.empty:
        return None
    keys = ["store_id", "product_id", "week_start"]
    X = rows[keys].merge(frame(), on=keys, how="left")
    champ = load_segment_model(lake, tags["model_dataset"], segment).estimator.predict(X)
    score = mape if metric == "mape" else wape
    return score(rows["units"], champ), score(rows["units"], rows["forecast"])


def load_segment_model(
    lake: Lake,
    model_dataset: str,
    segment: str,
    loaded: dict[str, TrainedRegion] | None = None,
) -> SegmentModel:
    """One segment's fitted model from a committed model dataset of the lake (`loaded` caches
    the region models already read)."""
    loaded = {} if loaded is None else loaded
    if model_dataset not in loaded:
        ds = lake.dataset(model_dataset)
        if ds is None:
            raise FileNotFoundError(
                f"model dataset {lake.location(model_dataset)} is not committed"
            )
        loaded[model_dataset] = load_model(lake, ds)
    models = loaded[model_dataset].models
    if segment not in models:
        raise KeyError(f"{model_dataset} has no model for segment {segment}")
    return models[segment]


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


# -- scoring ------------------------------------------------------------------------------
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
    stale = lifecycle.is_stale(date.fromisoformat(trained_on), ctx.today, ctx.cfg.stale_after_days)
    seg_model = load_segment_model(lake, tags["model_dataset"], segment, loaded)
    return SegmentScorer(
        seg_model.kind,
        seg_model.estimator,
        str(champion.version),
        tags.get("run_id", ""),
        trained_on,
        stale,
    )
