"""Forecast accuracy metrics, per call or per group.

- MAPE is the mean of |forecast - actual| / actual over rows whose actual is > 0 only: rows
  with a zero actual are excluded because their percentage error is undefined.
- WAPE is sum |forecast - actual| / sum actual over all rows. It guards against a MAPE bought
  by forecasting low: under-forecasting caps each row's MAPE term at 1 (100 %), however large
  the actual, while WAPE weights every unit missed equally.
- RMSE is over all rows; RMSE0 is the RMSE over rows whose actual is 0, so it measures
  over-forecasting where nothing sold.
- Bias is sum(forecast - actual) / sum actual: positive means over-forecasting.
- Coverage (`coverage80`) is the share of rows whose actual lies within the forecast's 80 %
  interval, columns `p10` and `p90` (ml/intervals.py); NaN where a frame has no interval.

A metric whose rows or denominator are empty or zero is NaN. Rows with a missing actual or
forecast raise ValueError rather than being dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

ArrayLike = Sequence[float] | np.ndarray | pd.Series

METRICS = ("mape", "wape", "rmse", "rmse0", "bias")
COVERAGE = "coverage80"  # share of actuals within [p10, p90]
REPORTED = (*METRICS, COVERAGE)  # what `metrics_by` gives per group
BIAS_ALERT = -0.10  # an ensemble forecasting more than 10 % below the actuals is reported
OBJECTIVES = ("wape", "mape")  # what an ensemble and its members may aim at


def check_objective(objective: str) -> None:
    """A ValueError naming the choices unless `objective` is one of OBJECTIVES."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")


def mape_weights(units: np.ndarray, wape_weight: float = 1.0) -> np.ndarray:
    """Per row, 1/units over the share of rows that sold (0 for a zero: MAPE leaves those rows
    out) + `wape_weight`/mean units, normalised to mean 1: the absolute error weighted so is
    the row's percentage error plus its share of the total error, and the best constant
    forecast for a set of rows, their weighted median, minimises MAPE + `wape_weight` × WAPE
    (the same in logs as in units, medians being unchanged by logs).

    Scale-free: multiplying every unit by c gives the same weights. (Weighting a zero row as
    one unit sold did not: at 30,000 units a week a single zero weighed as much as 30,000 sold
    rows and pulled the trees' and the net's forecasts to about 0.)"""
    units = np.asarray(units, dtype=float)
    sold = units > 0
    if not sold.any():
        return np.ones(len(units), dtype=np.float32)
    share = sold.mean()
    percentage = np.divide(1.0, units * share, out=np.zeros_like(units), where=sold)
    weights = percentage + wape_weight / float(np.mean(units))
    return (weights / weights.mean()).astype(np.float32)


def _arrays(actual: ArrayLike, forecast: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """`actual` and `forecast` as 1-D float arrays of equal length with no NaN."""
    a = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    if a.ndim != 1 or f.ndim != 1:
        raise ValueError(f"actual and forecast must be 1-D, got shapes {a.shape} and {f.shape}")
    if len(a) != len(f):
        raise ValueError(f"actual has {len(a)} rows but forecast has {len(f)}")
    for name, values in (("actual", a), ("forecast", f)):
        missing = int(np.isnan(values).sum())
        if missing:
            raise ValueError(f"{name} has {missing} NaN row(s) of {len(values)}")
    return a, f


def _rmse(err: np.ndarray) -> float:
    return float(np.sqrt(np.mean(err**2))) if len(err) else np.nan


def mape(actual: ArrayLike, forecast: ArrayLike) -> float:
    """Mean absolute percentage error (a fraction) over rows whose actual is > 0."""
    a, f = _arrays(actual, forecast)
    sold = a > 0
    return float(np.mean(np.abs(f[sold] - a[sold]) / a[sold])) if sold.any() else np.nan


def wape(actual: ArrayLike, forecast: ArrayLike) -> float:
    """Sum of absolute errors over the sum of actuals."""
    a, f = _arrays(actual, forecast)
    total = a.sum()
    return float(np.abs(f - a).sum() / total) if total != 0 else np.nan


def rmse(actual: ArrayLike, forecast: ArrayLike) -> float:
    """Root mean squared error over all rows."""
    a, f = _arrays(actual, forecast)
    return _rmse(f - a)


def rmse0(actual: ArrayLike, forecast: ArrayLike) -> float:
    """Root mean squared error over rows whose actual is 0."""
    a, f = _arrays(actual, forecast)
    none_sold = a == 0
    return _rmse(f[none_sold] - a[none_sold])


def bias(actual: ArrayLike, forecast: ArrayLike) -> float:
    """Sum of errors over the sum of actuals; positive means over-forecasting."""
    a, f = _arrays(actual, forecast)
    total = a.sum()
    return float((f - a).sum() / total) if total != 0 else np.nan


def score_all(actual: ArrayLike, forecast: ArrayLike) -> dict[str, float]:
    """Every metric in METRICS, plus `n_rows`."""
    a, f = _arrays(actual, forecast)
    return {
        "n_rows": len(a),
        "mape": mape(a, f),
        "wape": wape(a, f),
        "rmse": rmse(a, f),
        "rmse0": rmse0(a, f),
        "bias": bias(a, f),
    }


def metrics_by(
    frame: pd.DataFrame, by: list[str], actual: str = "units", forecast: str = "forecast"
) -> pd.DataFrame:
    """One row per group of `by` (or one overall row if `by` is empty): `by`, n_rows, REPORTED
    (coverage from the columns `p10` and `p90` where the frame has them).

    Vectorised: sums the needed terms per group and derives every metric from those sums.
    """
    return metrics_from_sums(metric_sums(frame, by, actual, forecast), by)


def metric_sums(
    frame: pd.DataFrame, by: list[str], actual: str = "units", forecast: str = "forecast"
) -> pd.DataFrame:
    """The per-group sums every metric is derived from: sums of several frames (grouped again
    by `by` and summed) give the metrics of their rows together, without concatenating them."""
    a, f = _arrays(frame[actual], frame[forecast])
    err = f - a
    sold, none_sold = a > 0, a == 0
    terms = pd.DataFrame(
        {
            "n_rows": 1,
            "actual": a,
            "err": err,
            "abs_err": np.abs(err),
            "sq_err": err**2,
            "n_sold": sold,
            "ape": np.divide(np.abs(err), a, out=np.zeros_like(a), where=sold),
            "n_none_sold": none_sold,
            "sq_err_none_sold": np.where(none_sold, err**2, 0.0),
            "covered": _covered(frame, a),
            "n_interval": "p10" in frame.columns and "p90" in frame.columns,
        },
        index=frame.index,
    )
    if by:
        keys = [frame[column] for column in by]
        return terms.groupby(keys, sort=True, observed=True, dropna=False).sum().reset_index()
    return terms.sum().to_frame().T


def metrics_from_sums(sums: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """`metrics_by`'s table from `metric_sums` (one row per group of `by`)."""
    total = sums["actual"].where(sums["actual"] != 0)
    out = sums[by].copy()
    out["n_rows"] = sums["n_rows"].astype(int)
    out["mape"] = sums["ape"] / sums["n_sold"].where(sums["n_sold"] > 0)
    out["wape"] = sums["abs_err"] / total
    out["rmse"] = np.sqrt(sums["sq_err"] / sums["n_rows"].where(sums["n_rows"] > 0))
    out["rmse0"] = np.sqrt(
        sums["sq_err_none_sold"] / sums["n_none_sold"].where(sums["n_none_sold"] > 0)
    )
    out["bias"] = sums["err"] / total
    out[COVERAGE] = sums["covered"] / sums["n_interval"].where(sums["n_interval"] > 0)
    return out.astype(dict.fromkeys(REPORTED, float))


def _covered(frame: pd.DataFrame, actual: np.ndarray) -> np.ndarray:
    """1 where the actual is within [p10, p90], else 0 (also without interval columns)."""
    if "p10" not in frame.columns or "p90" not in frame.columns:
        return np.zeros(len(actual))
    low, high = frame["p10"].to_numpy(dtype=float), frame["p90"].to_numpy(dtype=float)
    return ((actual >= low) & (actual <= high)).astype(float)
