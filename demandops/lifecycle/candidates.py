"""What a candidate's MLflow run and model version record: params, metrics, lineage tags."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from demandops.core.hashing import code_version, digest
from demandops.core.lake import Dataset
from demandops.lifecycle.context import LifecycleContext
from ml.train import TrainedRegion


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


def run_params(model: Dataset, kind: str, n_rows: int) -> dict[str, Any]:
    params = dict(model.manifest.get("params", {}))
    return params | {"model_kind": kind, "n_rows": n_rows}


def segment_metrics(trained: TrainedRegion, segment: str) -> pd.DataFrame:
    _, store_format, velocity = segment.split(".")
    m = trained.metrics
    return m[(m["store_format"] == store_format) & (m["velocity"] == velocity)]


def run_metrics(trained: TrainedRegion, segment: str) -> dict[str, float]:
    out = {}
    for row in segment_metrics(trained, segment).to_dict("records"):
        for metric in ("mape", "wape", "rmse", "rmse0", "bias"):
            value = float(row[metric])
            if pd.notna(value):
                out[f"{row['model']}.{metric}"] = value
    return out


def holdout_window(trained: TrainedRegion) -> tuple[str, str]:
    return str(pd.Timestamp(trained.holdout_start).date()), str(
        pd.Timestamp(trained.last_week).date()
    )


def candidate_tags(
    ctx: LifecycleContext,
    trained: TrainedRegion,
    model: Dataset,
    features: Dataset,
    segment: str,
    kind: str,
) -> dict[str, str]:
    region, store_format, velocity = segment.split(".")
    holdout_start, trained_through = holdout_window(trained)
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
