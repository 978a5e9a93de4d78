"""What the real-data accuracy benchmarks share (dominicks.py, walmart.py).

A data set's raw files are conditioned by its source profiles (`config/sources/<name>/`) as
the product conditions any feed, the feature table is built by `ml.feature_table`, and the
rolling origin of `demandops backtest` (`ml/backtest.py`) fits, per round and segment, the
model the batch would fit (`ml.train.final_model`) beside peers fit on the whole round: the
published "mean of history" (geometric mean of units per series) and LightGBM on the same
features, on log1p(units) and with the MAPE objective. MAPE, WAPE and bias per model.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from conditioners.context import Context
from conditioners.engine import condition
from conditioners.profile import load_profiles
from conditioners.schemas import SCHEMAS
from demandops.core.settings import load_settings
from ml.backtest import Forecaster, Peer, Protocol, lightgbm_peer, rolling_origin
from ml.ensemble import EnsembleForecaster
from ml.feature_table import ConditionedFeeds
from ml.fit_memo import FitMemo
from ml.members import DEFAULT_MEMBERS
from ml.metrics import bias, mape, wape
from ml.segments import SEGMENT_COLUMNS, Segment
from ml.train import TrainParams, final_model

log = logging.getLogger(__name__)

ENSEMBLE = "ensemble (objective: mape)"
DEFAULT = "ensemble (default configuration: LASSO + net, trees on trial)"
DEFAULT_MEMBER = "default configuration: "  # prefix of its members' forecasts
LGB_MAPE = "LightGBM (MAPE objective)"
HISTORICAL_AVERAGE = "historical average"
LASSO_NET = ("lasso", "nn")
REBLENDED = {  # the same fitted members, blended for another objective or without the trees
    "ensemble of LASSO + net (objective: mape)": ("mape", LASSO_NET),
    "ensemble of LASSO + net (objective: wape)": ("wape", LASSO_NET),
    "ensemble, same members blended for WAPE": ("wape", None),
}
PEERS = (HISTORICAL_AVERAGE, "LightGBM", LGB_MAPE)
MODELS = (ENSEMBLE, *REBLENDED, "lasso", "nn", "lightgbm", "lightgbm_median", *PEERS)
MEMBERS = (  # `ensemble:` of a MAPE user
    *DEFAULT_MEMBERS,
    "ml.boosting:LightGBMForecaster",
    "ml.boosting:LightGBMMedianForecaster",
)
VOLUME_GATE = 0.25  # `ensemble_volume_gate:` of a MAPE user


def mape_params(horizon: int, random_state: int = 0) -> TrainParams:
    """The settings of a user whose headline measure is MAPE (Dominick's configuration):
    LightGBM's trees as third and fourth members (aimed at MAPE and at the median),
    `ensemble_objective: mape` with the volume gate, no per-product calendar slopes (about two
    years of history); at seed `random_state`."""
    return TrainParams(
        horizon_weeks=horizon,
        backtest_origins=1,
        velocity_threshold=12.0,
        lasso_cv_folds=4,
        lasso_calendar_slopes=False,
        ensemble_members=MEMBERS,
        ensemble_objective="mape",
        ensemble_volume_gate=VOLUME_GATE,
        random_state=random_state,
    )


def default_params(horizon: int, random_state: int = 0) -> TrainParams:
    """The default configuration (config/pipeline.yaml: the blend for WAPE, the LASSO and the
    net, the trees on trial) with the MAPE user's horizon and history settings, at seed
    `random_state`."""
    pipeline = load_settings().pipeline
    mape_user = mape_params(horizon)
    return TrainParams.from_config(
        pipeline,
        horizon_weeks=mape_user.horizon_weeks,
        backtest_origins=mape_user.backtest_origins,
        velocity_threshold=mape_user.velocity_threshold,
        lasso_calendar_slopes=mape_user.lasso_calendar_slopes,
        random_state=random_state,
    )


def peers(shipments: pd.DataFrame, random_state: int = 0) -> dict[str, Peer]:
    """The models fit on a whole round: the published mean of history, the LightGBM peers (at
    seed `random_state`)."""

    def historical_average(train: pd.DataFrame, test: pd.DataFrame, cut: Any) -> np.ndarray:
        return geometric_mean(shipments[shipments["week_start"] <= cut], test)

    return {
        HISTORICAL_AVERAGE: historical_average,
        "LightGBM": functools.partial(lightgbm_peer, random_state=random_state),
        LGB_MAPE: functools.partial(lightgbm_peer, objective="mape", random_state=random_state),
    }


def geometric_mean(history: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """The published "mean of history": exp of the mean log units per series, every week."""
    log_units = np.log(history["units"])
    log_mean = log_units.groupby([history["store_id"], history["product_id"]]).mean()
    keys = pd.MultiIndex.from_frame(test[["store_id", "product_id"]])
    return np.exp(log_mean.reindex(keys).to_numpy())


def run_rounds(
    features: pd.DataFrame,
    protocol: Protocol,
    params: TrainParams,
    peers: Mapping[str, Peer] | None = None,
    forecaster: Forecaster | None = None,
) -> pd.DataFrame:
    """Every model's forecasts of every round's weeks (one column per model), through the
    backtest of `demandops backtest` (ml/backtest.py)."""
    long = rolling_origin(
        features, protocol, params, dict(peers or {}), forecaster=forecaster or segment_forecasts
    )
    keys = [*SEGMENT_COLUMNS, "store_id", "product_id", "week_start", "round", "units"]
    wide = long.set_index([*keys, "model"])["forecast"].unstack("model")
    return wide.reset_index().rename_axis(columns=None)


def segment_forecasts(
    segment: Segment,
    train: pd.DataFrame,
    test: pd.DataFrame,
    params: TrainParams,
    fit_memo: FitMemo,
    reblended: Mapping[str, tuple[str, tuple[str, ...] | None]] = REBLENDED,
    label: str = ENSEMBLE,
    default: TrainParams | None = None,
) -> dict[str, np.ndarray]:
    """The ensemble fit as the batch fits a segment's model, its members, and the same fitted
    members re-blended (`EnsembleForecaster.reblended`); with `default`, also the model the
    default configuration fits (as `DEFAULT`, its members prefixed `DEFAULT_MEMBER`: a member
    on trial only where it joined). Each model's note is logged (INFO): which
    members it blended, and the verdicts of members on trial."""
    trained = final_model(segment, train, params, fit_memo)
    log.info("%s, round to %s: %s", segment.name, train["week_start"].max(), trained.note)
    if not isinstance(trained.estimator, EnsembleForecaster):
        raise RuntimeError(f"{segment.name}: no ensemble: {trained.note}")
    out = {label: trained.estimator.predict(test)}
    for name, member in getattr(trained.estimator, "named_estimators_", {}).items():
        out[name] = member.predict(test)
    for name, (objective, members) in reblended.items():
        out[name] = trained.estimator.reblended(objective, members=members).predict(test)
    if default is not None:
        model = final_model(segment, train, default, fit_memo)
        log.info("%s, round to %s: %s", segment.name, train["week_start"].max(), model.note)
        out[DEFAULT] = model.estimator.predict(test)
        for name, member in getattr(model.estimator, "named_estimators_", {}).items():
            out[DEFAULT_MEMBER + name] = member.predict(test)
    return out


def complete_columns(forecasts: pd.DataFrame, prefix: str) -> list[str]:
    """The forecast columns whose names start with `prefix` and that forecast every row: a
    member on trial forecasts only the rounds and segments it joined, and is not reported
    alone."""
    return [str(c) for c in forecasts if str(c).startswith(prefix) and forecasts[c].notna().all()]


def summarise(forecasts: pd.DataFrame, models: Iterable[str] = MODELS) -> dict[str, Any]:
    return {
        m: {
            "mape": mape(forecasts["units"], forecasts[m]),
            "wape": wape(forecasts["units"], forecasts[m]),
            "bias": bias(forecasts["units"], forecasts[m]),
        }
        for m in models
    }


def conditioned_feeds(
    profiles: Path,
    files: Mapping[str, bytes],
    category: str,
    tolerated: frozenset[str] = frozenset(),
) -> ConditionedFeeds:
    """Raw files (raw path -> content) through the data set's source profiles, as the product
    conditions any feed. A rejected row fails, unless its reason is `tolerated` (e.g.
    `duplicate`: a store list read from a file that repeats the store on every row)."""
    tables: dict[str, list[pd.DataFrame]] = {}
    for profile in load_profiles(profiles).values():
        for raw_path, data in files.items():
            if profile.matches(raw_path):
                result = condition(data, raw_path, profile, Context())
                rejects = result.rejects
                if len(rejects) and "reason" in rejects:
                    rejects = rejects[~rejects["reason"].isin(tolerated)]
                if len(rejects):
                    raise ValueError(f"{profile.name}: {len(rejects)} rows rejected")
                tables.setdefault(profile.source, []).append(result.frame)

    def table(source: str) -> pd.DataFrame:
        if source in tables:
            return pd.concat(tables[source], ignore_index=True)
        columns = SCHEMAS[source].columns
        return pd.DataFrame({c.name: pd.Series(dtype=_DTYPES[c.kind]) for c in columns})

    shipments = table("shipments")
    products = shipments[["product_id"]].drop_duplicates()
    return ConditionedFeeds(
        shipments=shipments,
        stores=table("stores"),
        products=products.assign(category=category, pack_size=1, regular_price=np.nan),
        promotions=table("promotions"),
        shoppers=table("shoppers"),
        weather=table("weather"),
        events=table("events"),
        returns=table("returns"),
    )


_DTYPES = {"str": "str", "int": "int64", "float": "float64", "date": "datetime64[ns]"}


def table(
    result: dict[str, Any], published: Mapping[str, float] | None = None, rounds: int = 12
) -> str:
    published = published or {}
    lines = [
        "| model | MAPE % | WAPE % | bias % | published MAPE % |",
        "|---|---|---|---|---|",
    ]
    for model, m in result["metrics"].items():
        ref = f"{100 * published[model]:.2f}" if model in published else ""
        lines.append(
            f"| {model} | {100 * m['mape']:.2f} | {100 * m['wape']:.2f} "
            f"| {100 * m['bias']:+.1f} | {ref} |"
        )
    lines.append(
        f"\n{result['rows']} forecasts of {result['series']} series in {rounds} rounds; "
        f"{result['seconds']:.0f} s on this machine."
    )
    return "\n".join(lines)
