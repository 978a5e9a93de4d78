"""Prediction intervals (P10, P50, P90) from the backtest's residuals: split conformal, per
segment and model, on the log scale.

A residual is log1p(actual) − log1p(forecast) over the rolling-origin backtest rows. The
interval of a new forecast f is expm1(log1p(f) + q) for q the residuals' 10 %, 50 % and 90 %
quantiles (finite-sample conformal levels: the ⌈(n + 1)·p⌉-th smallest of n), clipped at 0; on
the log scale a large series' interval is as wide, relatively, as a small one's. P50 is the
forecast corrected by the median residual, so it can differ from the point forecast.

The backtest's own intervals, which measure the coverage, leave out the window they cover:
each origin's rows get the quantiles of the other origins' residuals (cross-conformal), so the
coverage is measured on residuals the interval did not see.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

LEVELS = (0.1, 0.5, 0.9)
COLUMNS = ("p10", "p50", "p90")
KEYS = ["region", "store_format", "velocity", "model"]


def offsets(residuals: np.ndarray) -> tuple[float, float, float] | None:
    """The conformal quantiles of `residuals` at LEVELS; None without any residual."""
    r = np.sort(residuals[np.isfinite(residuals)])
    n = len(r)
    if n == 0:
        return None
    low = max(math.floor((n + 1) * LEVELS[0]), 1)
    mid, high = (min(math.ceil((n + 1) * p), n) for p in LEVELS[1:])
    return float(r[low - 1]), float(r[mid - 1]), float(r[high - 1])


def residuals(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """log1p(actual) − log1p(forecast)."""
    return np.log1p(np.clip(actual, 0, None)) - np.log1p(np.clip(forecast, 0, None))


def apply(forecast: np.ndarray, quantiles: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """rows × 3: P10, P50, P90 of `forecast`; `quantiles` one triple, or one per row."""
    base = np.log1p(np.clip(np.asarray(forecast, dtype=float), 0, None))
    shift = np.atleast_2d(np.asarray(quantiles, dtype=float))
    return np.clip(np.expm1(base[:, None] + shift), 0.0, None)


def table(holdout: pd.DataFrame) -> pd.DataFrame:
    """Per segment and model (KEYS) of a backtest holdout: its quantiles (q10, q50, q90), n."""
    rows = []
    for key, part in holdout.groupby(KEYS, sort=True):
        found = offsets(residuals(part["units"].to_numpy(), part["forecast"].to_numpy()))
        if found is not None:
            rows.append(dict(zip(KEYS, key, strict=True)) | _named(found) | {"n": len(part)})
    return pd.DataFrame(rows, columns=[*KEYS, "q10", "q50", "q90", "n"])


def backtest(holdout: pd.DataFrame) -> pd.DataFrame:
    """`holdout` with P10/P50/P90 per row, each origin's from the other origins' residuals
    (NaN where there is no other origin)."""
    out = holdout.copy()
    values = np.full((len(out), 3), np.nan)
    actual, forecast = out["units"].to_numpy(float), out["forecast"].to_numpy(float)
    origin = out["origin"].to_numpy()
    for rows in out.groupby(KEYS, sort=False).indices.values():
        res = residuals(actual[rows], forecast[rows])
        for o in np.unique(origin[rows]):
            mine = origin[rows] == o
            found = offsets(res[~mine])
            if found is not None:
                values[rows[mine]] = apply(forecast[rows[mine]], found)
    for j, column in enumerate(COLUMNS):
        out[column] = values[:, j]
    return out


def _named(found: tuple[float, float, float]) -> dict[str, float]:
    return dict(zip(("q10", "q50", "q90"), found, strict=True))
