"""Judging a segment's candidate: its gates against the baseline and the current champion."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from demandops.core.lake import Lake
from demandops.lifecycle import policy
from demandops.lifecycle.candidates import holdout_window, segment_metrics
from demandops.lifecycle.context import LifecycleContext, load_segment_model
from demandops.lifecycle.registry import Registry
from ml.metrics import mape, wape
from ml.train import TrainedRegion

log = logging.getLogger(__name__)


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
) -> tuple[policy.GateResult, dict[str, Any]]:
    """Apply the gates to a segment's candidate; also return the numbers they compared."""
    cfg = ctx.cfg
    kind = trained.models[segment].kind
    by_model = segment_metrics(trained, segment).set_index("model")[cfg.gate_metric]
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
    gate_cfg = policy.GateConfig(
        cfg.gate_metric, cfg.max_error, cfg.min_improvement_over_baseline, cfg.champion_tolerance
    )
    result = policy.evaluate_gates(candidate, baseline, same, gate_cfg, label)
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
    by_model = segment_metrics(trained, segment).set_index("model")[metric]
    if (tags.get("holdout_start"), tags.get("trained_through")) == holdout_window(trained):
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
