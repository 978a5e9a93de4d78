"""The LASSO member's forecasts with scikit-learn's LassoCV (the former solver) vs GramLassoCV.

For every segment of the given regions of a lake a batch ran on, fits the segment's LASSO
(`ml.train.lasso`, the batch's configuration) on its history twice, once per solver, and
compares the chosen alphas and the forecasts of the future weeks; prints CPU seconds of each.

    .venv/bin/python -m benchmarks.scale.lasso_forecasts --lake .lake --region pnw mda
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LassoCV
from sklearn.model_selection import TimeSeriesSplit

import ml.models
from demandops.core.settings import load_settings
from ml.gram_lasso import GramLassoCV
from ml.segments import Segment, assign_segments, product_velocity, segments_of
from ml.train import TrainParams, backtest_origins, lasso, model_features


def lasso_cv(n_splits: int, n_alphas: int, max_iter: int, tol: float) -> LassoCV:
    """What `LassoForecaster` ran before `ml/gram_lasso.py`."""
    return LassoCV(alphas=n_alphas, cv=TimeSeriesSplit(n_splits), max_iter=max_iter, tol=tol)


def segments(features: Path, params: TrainParams) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(name, history in time order, future rows) of each segment, as training splits them."""
    frame = pd.read_parquet(features)
    history = frame[~frame["is_future"] & frame["units"].notna()]
    history = history.sort_values(["week_start", "store_id", "product_id"])
    origins = backtest_origins(history["week_start"].drop_duplicates().sort_values(), params)
    training = history[history["week_start"] < origins[0]]
    velocity = product_velocity(training, params.velocity_threshold)
    history = assign_segments(history, velocity)
    future = assign_segments(frame[frame["is_future"]], velocity)
    return [(s.name, _of(history, s), _of(future, s)) for s in segments_of(history)]


def _of(frame: pd.DataFrame, s: Segment) -> pd.DataFrame:
    return frame[(frame["store_format"] == s.store_format) & (frame["velocity"] == s.velocity)]


def compare(
    name: str, history: pd.DataFrame, future: pd.DataFrame, params: TrainParams
) -> dict[str, Any]:
    fits = {}
    for solver, cv in (("lassocv", lasso_cv), ("gram", GramLassoCV)):
        ml.models.GramLassoCV = cv  # type: ignore[misc, assignment]
        cpu = time.process_time()
        model = lasso(params, model_features(history)).fit(history, history["units"])
        fits[solver] = (model, model.predict(future), time.process_time() - cpu)
    ml.models.GramLassoCV = GramLassoCV  # type: ignore[misc]
    (old, before, old_cpu), (new, after, new_cpu) = fits["lassocv"], fits["gram"]
    return {
        "segment": name,
        "rows": len(history),
        "columns": int(old.n_features_in_),
        "same_alpha": bool(np.isclose(old.alpha_, new.alpha_, rtol=1e-9)),
        "max_rel_forecast_diff": float(np.max(np.abs(before - after) / np.maximum(before, 1.0))),
        "lassocv_cpu_s": round(old_cpu, 2),
        "gram_cpu_s": round(new_cpu, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--region", nargs="+", required=True)
    args = parser.parse_args()
    params = TrainParams.from_config(load_settings().pipeline)
    for region in args.region:
        tables = sorted(args.lake.glob(f"features/region={region}/*/features.parquet"))
        if not tables:
            raise SystemExit(f"no feature table for region {region} in {args.lake}")
        for name, history, future in segments(tables[-1], params):
            print(json.dumps(compare(name, history, future, params)), flush=True)


if __name__ == "__main__":
    main()
