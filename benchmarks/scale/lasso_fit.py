"""One LASSO fit at production density: scikit-learn's LassoCV (the former solver) vs GramLassoCV.

The design is the one `ml.models.LassoForecaster` builds for a production segment: 25 products,
10 features sloped per product (250 sparse slope columns), a dense block and the delivery gate:
269 columns of density about 0.15, as the issue's profile found. Same folds (4), alphas (30),
tolerance; reports CPU seconds, the chosen alphas and the largest coefficient difference.

    .venv/bin/python -m benchmarks.scale.lasso_fit --rows 50000
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LassoCV
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.gram_lasso import GramLassoCV
from ml.models import LassoForecaster

SLOPED = ("promo", "discount", "woy_sin1", "woy_cos1", "woy_sin2", "woy_cos2", "holiday",
          "trend_years", "temp_anomaly_c", "event_a")  # fmt: skip
DENSE = (*SLOPED, "log_level", "hist_avg", "same_woy_avg", "price_index", "lag_52", "roll_mean_8",
         "roll_std_8", "cycle_ship_share")  # fmt: skip


def segment_frame(rows: int, products: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows in time order with the features of a segment and a log-linear target."""
    rng = np.random.default_rng(seed)
    week = np.sort(rng.integers(0, 156, rows))
    frame = pd.DataFrame({c: rng.normal(size=rows) for c in DENSE})
    frame["promo"] = (rng.random(rows) < 0.2).astype(float)
    frame["discount"] = np.where(frame["promo"] > 0, rng.uniform(0.05, 0.4, rows), 0.0)
    frame["holiday"] = (week % 52 < 2).astype(float)
    frame["woy_sin1"], frame["woy_cos1"] = (
        np.sin(2 * np.pi * week / 52),
        np.cos(2 * np.pi * week / 52),
    )
    frame["cycle_ship_share"] = rng.uniform(0.5, 1.0, rows)
    frame["product_id"] = rng.integers(0, products, rows).astype(str)
    slope = rng.normal(0, 0.5, (products, len(SLOPED)))[frame["product_id"].astype(int)]
    signal = (slope * frame[list(SLOPED)].to_numpy()).sum(axis=1) + 0.8 * frame["log_level"]
    units = np.round(np.expm1(np.clip(2.0 + signal + rng.normal(0, 0.4, rows), 0, 8)))
    return frame, units


def _fit(estimator: Any, design: Any, y: np.ndarray) -> tuple[Any, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    model = make_pipeline(StandardScaler(with_mean=False), estimator).fit(design, y)
    return model[-1], time.process_time() - cpu, time.perf_counter() - wall


def compare(rows: int, products: int) -> dict[str, Any]:
    frame, units = segment_frame(rows, products)
    forecaster = LassoForecaster(
        features=DENSE, slopes_by="product_id", sloped=SLOPED, gate="cycle_ship_share"
    )
    forecaster.slope_levels_ = sorted(frame["product_id"].unique())
    design, y = forecaster._columns(frame), np.log1p(units)
    sklearn_cv = LassoCV(alphas=30, cv=TimeSeriesSplit(4), max_iter=20000, tol=1e-3)
    old, old_cpu, old_wall = _fit(sklearn_cv, design, y)
    new, new_cpu, new_wall = _fit(GramLassoCV(4, 30, max_iter=20000, tol=1e-3), design, y)
    return {
        "rows": rows,
        "columns": design.shape[1],
        "density": round(design.nnz / np.prod(design.shape), 3),
        "lassocv_cpu_s": round(old_cpu, 2),
        "lassocv_wall_s": round(old_wall, 2),
        "gram_cpu_s": round(new_cpu, 2),
        "gram_wall_s": round(new_wall, 2),
        "speedup_cpu": round(old_cpu / new_cpu, 1),
        "same_alpha": bool(np.isclose(old.alpha_, new.alpha_, rtol=1e-9)),
        "max_coef_diff": float(np.max(np.abs(old.coef_ - new.coef_))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000])
    parser.add_argument("--products", type=int, default=25)
    args = parser.parse_args()
    for rows in args.rows:
        print(json.dumps(compare(rows, args.products)), flush=True)


if __name__ == "__main__":
    main()
