"""Accuracy on Dominick's orange juice with the published protocol (TSPerf OrangeJuice_Pt_3Weeks).

12 rounds: in round k, train on weeks 40 … 133+2k and forecast weeks 135+2k and 136+2k (one
week of gap), with prices, deals and feature ads known through the forecast weeks. MAPE over
every series and round, `mean(|forecast − units| / units)`, and WAPE beside it.

The product's own path: the raw files are conditioned with the Dominick's source profiles
(`config/sources/dominicks/`), the feature table is built by `ml.features` with H = 3 (lags
≥ 3 weeks, valid for both forecast weeks), segments and models come from `ml.train`. Beside
them: the published "mean of history" (the geometric mean of units per series, which
reproduces 70.74 %) and a LightGBM model on the same features trained in the same run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.features import CATEGORICAL_FEATURES
from ml.metrics import mape, wape
from ml.segments import assign_segments, product_velocity, segments_of
from ml.train import TrainParams, final_model, model_features

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "dominicks_oj"
WEEK_1 = pd.Timestamp("1989-09-14")  # a Thursday: Dominick's week 1 starts here
HORIZON = 3  # forecast weeks T+2 and T+3 from lags ≥ 3
PUBLISHED = {"historical average": 0.7074, "LightGBM": 0.3628}


def week_start(week: int | pd.Series) -> Any:
    """The Monday of the ISO week holding Dominick's week's Thursday (as the profiles do)."""
    thursday = WEEK_1 + pd.to_timedelta(7 * (np.asarray(week) - 1), unit="D")
    return thursday - pd.Timedelta(days=3)


def rounds() -> list[tuple[int, list[int]]]:
    return [(133 + 2 * k, [135 + 2 * k, 136 + 2 * k]) for k in range(1, 13)]


def run_rounds(
    features: pd.DataFrame, shipments: pd.DataFrame, params: TrainParams, log: bool = True
) -> pd.DataFrame:
    """Every model's forecasts of every round's two weeks."""
    out = []
    for last, targets in rounds():
        start = time.perf_counter()
        cut = week_start(last)
        train = features[(features["week_start"] <= cut) & features["units"].notna()]
        train = train.sort_values(["week_start", "store_id", "product_id"])
        test = features[features["week_start"].isin(week_start(np.array(targets)))]
        test = test[test["units"].notna()].copy()
        velocity = product_velocity(train, params.velocity_threshold)
        train, test = assign_segments(train, velocity), assign_segments(test, velocity)
        test["ensemble"] = np.nan
        for segment in segments_of(train):
            rows = _in(train, segment)
            trained = final_model(segment, train[rows], params)
            mask = _in(test, segment)
            test.loc[mask, "ensemble"] = trained.estimator.predict(test[mask])
            for name, member in getattr(trained.estimator, "named_estimators_", {}).items():
                test.loc[mask, name] = member.predict(test[mask])
        history = shipments[shipments["week_start"] <= cut]
        test["historical average"] = _geometric_mean(history, test)
        test["LightGBM"] = _lightgbm(train, test)
        test["round"] = last
        out.append(test)
        if log:
            print(
                f"round ending week {last}: {len(test)} rows, {time.perf_counter() - start:.1f} s"
            )
    return pd.concat(out, ignore_index=True)


def _in(frame: pd.DataFrame, segment: Any) -> pd.Series:
    return (
        (frame["region"] == segment.region)
        & (frame["store_format"] == segment.store_format)
        & (frame["velocity"] == segment.velocity)
    )


def _geometric_mean(history: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """The published "mean of history": exp of the mean log units per series, every week."""
    log_units = np.log(history["units"])
    log_mean = log_units.groupby([history["store_id"], history["product_id"]]).mean()
    keys = pd.MultiIndex.from_frame(test[["store_id", "product_id"]])
    return np.exp(log_mean.reindex(keys).to_numpy())


def _lightgbm(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """A peer on the same features: LightGBM on log1p(units), squared error."""
    columns = list(model_features(train))
    categories = [c for c in CATEGORICAL_FEATURES if c in ("store_id", "product_id")]
    X, Xt = train[columns + categories].copy(), test[columns + categories].copy()
    for c in categories:
        X[c] = X[c].astype("category")
        Xt[c] = pd.Categorical(Xt[c], categories=X[c].cat.categories)
    model = lgb.LGBMRegressor(
        n_estimators=600, learning_rate=0.03, num_leaves=63, min_child_samples=20,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=0, verbose=-1,
        n_jobs=1,
    )  # fmt: skip
    model.fit(X, np.log1p(train["units"]))
    return np.clip(np.expm1(model.predict(Xt)), 0.0, None)


MODELS = ("ensemble", "lasso", "nn", "historical average", "LightGBM")


def summarise(forecasts: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {
        m: {
            "mape": mape(forecasts["units"], forecasts[m]),
            "wape": wape(forecasts["units"], forecasts[m]),
        }
        for m in MODELS
    }


def table(result: dict[str, Any]) -> str:
    lines = ["| model | MAPE % | WAPE % | published MAPE % |", "|---|---|---|---|"]
    for model, m in result["metrics"].items():
        published = PUBLISHED.get(model)
        ref = f"{100 * published:.2f}" if published else ""
        lines.append(f"| {model} | {100 * m['mape']:.2f} | {100 * m['wape']:.2f} | {ref} |")
    lines.append(
        f"\n{result['rows']} forecasts of {result['series']} series in 12 rounds; "
        f"{result['seconds']:.0f} s on this machine."
    )
    return "\n".join(lines)
