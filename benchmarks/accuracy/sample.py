"""Accuracy on the default sample data: every segment's ensemble against both baselines.

The gate of the models issue, per segment: ensemble MAPE ≤ 45 %, at least 40 % below the
better (lower-MAPE) of the two historical-average baselines, and WAPE below that baseline's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.accuracy.training_cost import segment_costs
from demandops.core.lake import Lake
from demandops.core.settings import Settings, load_settings
from demandops.pipeline.batch import run_batch
from demandops.sample.data import SampleSpec, generate
from ml.features import BASELINE_COLUMNS

BASELINES = BASELINE_COLUMNS  # the baselines are reported under their column names


def segment_gates(segment: dict[str, Any]) -> dict[str, Any]:
    """The segment's ensemble beside its better baseline, and whether it passes the gate."""
    by_model = segment["by_model"]
    best = min(BASELINES, key=lambda m: by_model[m]["mape"])
    ensemble, baseline = by_model["ensemble"], by_model[best]
    reduction = 1.0 - ensemble["mape"] / baseline["mape"]
    return {
        "segment": f"{segment['region']}.{segment['store_format']}.{segment['velocity']}",
        "ensemble_mape": ensemble["mape"],
        "ensemble_wape": ensemble["wape"],
        "ensemble_bias": ensemble["bias"],
        "lasso_mape": by_model["lasso"]["mape"],
        "nn_mape": by_model["nn"]["mape"],
        "best_baseline": best,
        "baseline_mape": baseline["mape"],
        "baseline_wape": baseline["wape"],
        "mape_reduction": reduction,
        "passes": ensemble["mape"] <= 0.45
        and reduction >= 0.40
        and ensemble["wape"] < baseline["wape"],
    }


def run(workdir: Path | None = None) -> dict[str, Any]:
    """Generate the default sample data in a fresh lake and run the whole weekly batch."""
    root = Path(workdir or tempfile.mkdtemp(prefix="demandops-accuracy-"))
    defaults = load_settings()
    env = defaults.environment.model_copy(update={"lake": str(root / "lake")})
    settings: Settings = defaults.model_copy(update={"environment": env})
    generate(Lake(env.lake), settings.regions, SampleSpec())
    report = run_batch(settings, settings.region_ids(), progress=True)
    rows = [segment_gates(s) for s in report["segments"]]
    costs = {c["segment"]: c for c in segment_costs(settings, report)}
    for row in rows:
        row |= {k: costs[row["segment"]][k] for k in ("train_seconds", "peak_rss_mb")}
    return {
        "dataset": "default sample data (14 regions, 20 products, 156 weeks)",
        "seconds": report["seconds"],
        "overall": report["overall"],
        "segments": rows,
        "passing": sum(r["passes"] for r in rows),
    }
