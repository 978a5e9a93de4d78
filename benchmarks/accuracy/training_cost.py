"""Per-segment training time and peak memory, each segment in a fresh process.

Every segment's full training — the members' trial, the rolling-origin backtest and the final
fit, by `ml.train.train_segment` as the batch's `train_region` does them — runs in its own new
worker process (`maxtasksperchild=1`), on the feature table the batch committed, so the peak
resident memory reported is that of a process that trains one segment: interpreter, pandas,
PyTorch and the segment's data.
"""

from __future__ import annotations

import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import pandas as pd

from demandops.core.lake import Lake
from demandops.core.settings import Settings
from ml.fit_memo import FitMemo
from ml.metrics import metrics_by
from ml.segments import assign_segments, product_velocity, segments_of
from ml.train import TrainParams, backtest_origins, train_segment


def _train_one(features_file: str, segment_name: str, params: TrainParams) -> dict[str, Any]:
    frame = pd.read_parquet(features_file)
    history = frame[~frame["is_future"] & frame["units"].notna()]
    history = history.sort_values(["week_start", "store_id", "product_id"])
    weeks = history["week_start"].drop_duplicates().sort_values()
    origins = backtest_origins(weeks, params)
    training = history[history["week_start"] < origins[0]]
    history = assign_segments(history, product_velocity(training, params.velocity_threshold))
    segment = next(s for s in segments_of(history) if s.name == segment_name)
    part = history[
        (history["store_format"] == segment.store_format)
        & (history["velocity"] == segment.velocity)
    ]
    start = time.perf_counter()
    predictions, _ = train_segment(segment, part, origins, params, FitMemo())
    holdout = metrics_by(predictions, ["model"])
    return {
        "segment": segment_name,
        "rows": len(part),
        "train_seconds": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "backtest_pct": {  # MAPE / WAPE / bias of each model over the backtest's windows
            str(model): [round(100 * mape, 2), round(100 * wape, 2), round(100 * bias, 2)]
            for model, mape, wape, bias in zip(
                holdout["model"], holdout["mape"], holdout["wape"], holdout["bias"], strict=True
            )
        },
    }


def segment_costs(settings: Settings, report: dict[str, Any]) -> list[dict[str, Any]]:
    """Time and peak memory of training every segment of `report`, two processes at a time."""
    lake = Lake(settings.environment.lake)
    cfg = settings.pipeline
    params = TrainParams.from_config(cfg, ensemble_members=TrainParams.ensemble_members)
    jobs = []
    for s in report["segments"]:
        features = report["regions"][s["region"]]["paths"]["features"]
        name = f"{s['region']}.{s['store_format']}.{s['velocity']}"
        jobs.append((lake.full_path(f"{features}/features.parquet"), name, params))
    context = get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context, max_tasks_per_child=1) as pool:
        return list(pool.map(_train_one, *zip(*jobs, strict=True)))
