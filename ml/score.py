"""Scoring step: forecasts for the coming weeks with each segment's model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.models import ColumnBaseline
from ml.segments import assign_segments
from ml.train import TrainedRegion

FORECAST_COLUMNS = [
    "region",
    "store_id",
    "product_id",
    "week_start",
    "horizon",
    "store_format",
    "velocity",
    "forecast",
    "baseline_forecast",
    "model",
]


def score_region(features: pd.DataFrame, trained: TrainedRegion) -> pd.DataFrame:
    """One forecast per store × product × future week; unseen segments get the baseline."""
    future = assign_segments(features[features["is_future"]], trained.velocity)
    future = future.sort_values(["store_id", "product_id", "week_start"]).reset_index(drop=True)
    X = future
    future["horizon"] = ((future["week_start"] - trained.last_week).dt.days // 7).astype(int)
    future["baseline_forecast"] = ColumnBaseline("hist_avg").fit(X).predict(X)
    future["forecast"] = future["baseline_forecast"]
    future["model"] = "baseline"
    seg_names = future["region"] + "." + future["store_format"] + "." + future["velocity"]
    for name, seg_model in trained.models.items():
        rows = (seg_names == name).to_numpy()
        if rows.any():
            future.loc[rows, "forecast"] = seg_model.estimator.predict(X[rows])
            future.loc[rows, "model"] = seg_model.kind
    future["forecast"] = np.round(future["forecast"], 3)
    future["baseline_forecast"] = np.round(future["baseline_forecast"], 3)
    return future[FORECAST_COLUMNS]
