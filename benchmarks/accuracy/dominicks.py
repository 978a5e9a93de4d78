"""Accuracy on Dominick's orange juice with the published protocol (TSPerf OrangeJuice_Pt_3Weeks).

12 rounds: in round k, train on weeks 40 … 133+2k and forecast weeks 135+2k and 136+2k (one
week of gap), with prices, deals and feature ads known through the forecast weeks: the rolling
origin of `demandops backtest` (ml/backtest.py) with rounds 12, horizon 2, gap 1, step 2. MAPE
over every series and round, `mean(|forecast − units| / units)`, and WAPE beside it.

The product's own path: the raw files are conditioned with the Dominick's source profiles
(`config/sources/dominicks/`), the feature table is built by `ml.features` with H = 3 (lags
≥ 3 weeks, valid for both forecast weeks), segments and models come from `ml.train`. Beside
them: the published "mean of history" (the geometric mean of units per series, which
reproduces 70.74 %) and a LightGBM model on the same features trained in the same run.
The configuration is a user's whose headline measure is MAPE: `ensemble_objective: mape` (blend
weights minimising MAPE, the blend shrunk within the WAPE tolerance, the trees aiming at MAPE),
LightGBM's trees as third and fourth members (aimed at MAPE, and at the median for the blend
for WAPE only) and the volume gate (`ensemble_volume_gate: 0.25`: weeks forecast far above the
mean take the blend for WAPE). The same fitted members are also reported blended for WAPE
and as the LASSO + net ensemble alone (`EnsembleForecaster.reblended`). The default
configuration (config/pipeline.yaml: LASSO + net blended for WAPE, the trees on trial) is fit
in the same rounds beside it, with its members (a member on trial only where it joined).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.accuracy import rolling
from benchmarks.accuracy.rolling import summarise
from demandops.pipeline.compute.local import one_native_thread
from ml.backtest import Protocol
from ml.feature_table import ConditionedFeeds, feature_table
from ml.train import TrainParams, model_features

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "dominicks_oj"
PROFILES = ROOT / "config" / "sources" / "dominicks"
FILES = {"yx.csv.gz": "dominicks_oj/yx.csv.gz", "storedemo.csv": "dominicks_oj/storedemo.csv"}
WEEK_1 = pd.Timestamp("1989-09-14")  # a Thursday: Dominick's week 1 starts here
PUBLISHED = {"historical average": 0.7074, "LightGBM (MAPE objective)": 0.3628}


def week_start(week: int | pd.Series) -> Any:
    """The Monday of the ISO week holding Dominick's week's Thursday (as the profiles do)."""
    thursday = WEEK_1 + pd.to_timedelta(7 * (np.asarray(week) - 1), unit="D")
    return thursday - pd.Timedelta(days=3)


PROTOCOL = Protocol(rounds=12, horizon=2, gap=1, step=2)  # train ..133+2k, forecast 135+2k, 136+2k
HORIZON = PROTOCOL.lead  # forecast weeks T+2 and T+3 from lags ≥ 3
MEMBERS = rolling.MEMBERS  # `ensemble:` for this data


MODELS = (rolling.DEFAULT, *rolling.MODELS)


def run_rounds(
    features: pd.DataFrame,
    shipments: pd.DataFrame,
    params: TrainParams,
    default: TrainParams | None = None,
) -> pd.DataFrame:
    """Every model's forecasts of every round's two weeks (one column per model), through the
    backtest of `demandops backtest` (ml/backtest.py) with the published protocol; with
    `default`, the default configuration's ensemble beside them (sharing the fits it can); the
    peers at `params`' seed."""
    known = pd.DatetimeIndex(features.loc[features["units"].notna(), "week_start"].unique())
    if PROTOCOL.cuts(known)[0][0] != week_start(135):
        raise RuntimeError("the data do not end in week 160: the rounds are not the published")
    forecaster = functools.partial(rolling.segment_forecasts, default=default)
    return rolling.run_rounds(
        features,
        PROTOCOL,
        params,
        rolling.peers(shipments, params.random_state),
        forecaster=forecaster,
    )


def conditioned_feeds(data: Path = DATA) -> ConditionedFeeds:
    """Dominick's raw files through its source profiles, as the product conditions any feed."""
    files = {raw_path: (data / name).read_bytes() for name, raw_path in FILES.items()}
    return rolling.conditioned_feeds(PROFILES, files, category="orange juice")


def run(random_state: int = 0) -> dict[str, Any]:
    """Condition, build features (H = 3; weeks absent from the data are unknown), 12 rounds of
    both configurations and the peers, all at seed `random_state`."""
    start = time.perf_counter()
    one_native_thread()  # as the batch's workers: torch's and OpenMP's threads only contend
    feeds = conditioned_feeds()
    features, panel = feature_table(feeds, HORIZON, baseline_window=13, absent_is_zero=False)
    forecasts = run_rounds(
        features,
        feeds.shipments,
        rolling.mape_params(HORIZON, random_state),
        rolling.default_params(HORIZON, random_state),
    )
    return {
        "dataset": "Dominick's orange juice, 12 rounds, weeks t+2..t+3",
        "series": len(panel.keys),
        "rows": len(forecasts),
        "features": list(model_features(features)),
        "metrics": summarise(forecasts, [*MODELS[:1], *_default_members(forecasts), *MODELS[1:]]),
        "seconds": time.perf_counter() - start,
    }


def _default_members(forecasts: pd.DataFrame) -> list[str]:
    """The default configuration's members that forecast every round."""
    return rolling.complete_columns(forecasts, rolling.DEFAULT_MEMBER)


def table(result: dict[str, Any]) -> str:
    return rolling.table(result, PUBLISHED, PROTOCOL.rounds)
