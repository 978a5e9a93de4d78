"""Champion against challenger: both forecasts of the challenger's stores beside later actuals.

`actuals` joins every committed `challengers.csv` of a region's forecasts (the stores a
challenger served, with the champion's forecast for the same rows) with the actual units the
run's feature table now holds for those weeks. `compare` sums it up per segment and pair of
versions: mean absolute errors, and a paired Wilcoxon signed-rank test on the per-store-week
absolute errors; the challenger is significantly better when its errors are lower and the
two-sided p-value is below `alpha`.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from demandops.core.lake import Lake

PAIR = ["segment", "champion_version", "challenger_version"]
ROW_KEYS = ["store_id", "product_id", "week_start"]
COLUMNS = ["region", *PAIR, *ROW_KEYS, "actual", "champion_forecast", "challenger_forecast"]
SUMMARY = [*PAIR, "pairs", "champion_mae", "challenger_mae", "p_value", "better", "note"]
MIN_PAIRS = 6  # fewer paired errors can never reach p < 0.05 (two-sided, exact)


def actuals(report: dict[str, Any], lake: Lake) -> pd.DataFrame:
    """Every challenger row of the report's regions whose week now has an actual."""
    frames = []
    for region, info in sorted(report["regions"].items()):
        if "features" not in info["paths"]:
            continue
        side = _challenger_rows(lake, region)
        if side.empty:
            continue
        data = lake.read_bytes(f"{info['paths']['features']}/features.parquet")
        features = pd.read_parquet(io.BytesIO(data), columns=[*ROW_KEYS, "units", "is_future"])
        known = features[~features["is_future"]].drop(columns="is_future")
        known["week_start"] = pd.to_datetime(known["week_start"])
        joined = side.merge(known.rename(columns={"units": "actual"}), on=ROW_KEYS)
        frames.append(joined.assign(region=region)[COLUMNS])
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True).drop_duplicates([*PAIR, *ROW_KEYS], keep="last")


def compare(rows: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per segment and pair of versions: MAEs, the Wilcoxon p-value, and what it means."""
    out = []
    for key, part in rows.groupby(PAIR, sort=True):
        champ = (part["champion_forecast"] - part["actual"]).abs().to_numpy(dtype=float)
        chall = (part["challenger_forecast"] - part["actual"]).abs().to_numpy(dtype=float)
        p_value = _wilcoxon(champ, chall)
        better = bool(chall.mean() < champ.mean() and p_value < alpha)
        out.append((*key, len(part), champ.mean(), chall.mean(), p_value, better,
                    _note(len(part), champ.mean(), chall.mean(), p_value, alpha)))  # fmt: skip
    return pd.DataFrame(out, columns=SUMMARY)


def _wilcoxon(champ: np.ndarray, chall: np.ndarray) -> float:
    if len(champ) < MIN_PAIRS or np.allclose(champ, chall):
        return 1.0
    return float(wilcoxon(champ, chall, zero_method="wilcox").pvalue)


def _note(pairs: int, champ: float, chall: float, p_value: float, alpha: float) -> str:
    if pairs < MIN_PAIRS:
        return f"too few store-weeks with actuals ({pairs}) to judge"
    who = "challenger" if chall < champ else "champion"
    if p_value < alpha:
        return f"{who} significantly better (paired Wilcoxon p={p_value:.3g} < {alpha})"
    return f"no significant difference (paired Wilcoxon p={p_value:.3g} >= {alpha})"


def _challenger_rows(lake: Lake, region: str) -> pd.DataFrame:
    frames = []
    for as_of in lake.list_dirs("forecasts"):
        folder = f"forecasts/{as_of}/region={region}"
        for version in lake.list_dirs(folder):
            ds = lake.dataset(f"{folder}/{version}")
            if ds is not None and "challengers.csv" in ds.manifest.get("files", {}):
                frames.append(
                    lake.read_csv(
                        ds.file("challengers.csv"),
                        dtype={
                            "champion_version": str,
                            "challenger_version": str,
                            "store_id": str,
                            "product_id": str,
                        },
                    )
                )
    if not frames:
        return pd.DataFrame()
    side = pd.concat(frames, ignore_index=True)
    side["week_start"] = pd.to_datetime(side["week_start"])
    return side
