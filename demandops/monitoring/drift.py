"""Drift between the training window and the scoring batch: PSI and the Kolmogorov-Smirnov
statistic per feature, PSI of the target.

- Features: the last `reference_weeks` of history (the training window) against the rows to
  forecast (`is_future`).
- Target (`units`): the scoring batch has no actuals yet, so the latest H weeks of actuals (as
  many weeks as are forecast) against the `reference_weeks` before them.
- Seasonal features (`seasonal`: weather, events, holidays): the same weeks a year earlier
  (± `seasonal_window_weeks`) instead of the recent weeks, because they move with the calendar;
  and the alert is on the standardized mean shift |mean(current) − mean(reference)| / sd(reference)
  ≥ `shift_alert`, because a few zip codes × H weeks of forecasts is too small a sample for
  decile PSI or KS (PSI and KS are still reported). Less than a year of history: the recent
  weeks are the reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandops.core.pipeline_config import DriftConfig

EPSILON = 1e-4  # the share given to an empty bin, so that PSI stays finite
IDENTIFIERS = {"store_id", "product_id", "week_start", "units", "is_future", "region"}
COLUMNS = ["feature", "kind", "reference", "psi", "ks", "shift", "alert", "reason",
           "n_reference", "n_current"]  # fmt: skip
RECENT, LAST_YEAR = "recent", "same_weeks_last_year"


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index Σ (c − r) · ln(c / r) over the shares of aligned bins."""
    r = np.clip(reference, EPSILON, None)
    c = np.clip(current, EPSILON, None)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_psi(reference: pd.Series, current: pd.Series, bins: int) -> float:
    """PSI over the quantile bins of `reference` (NaN dropped)."""
    ref, cur = reference.dropna().to_numpy(float), current.dropna().to_numpy(float)
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
    shares = [
        np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1) / len(x)
        for x in (ref, cur)
    ]
    return psi(shares[0], shares[1])


def categorical_psi(reference: pd.Series, current: pd.Series) -> float:
    """PSI over the categories seen in either sample."""
    ref = reference.astype(str).value_counts(normalize=True)
    cur = current.astype(str).value_counts(normalize=True)
    both = ref.index.union(cur.index)
    return psi(*(s.reindex(both, fill_value=0).to_numpy() for s in (ref, cur)))


def ks(reference: pd.Series, current: pd.Series) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    ref = np.sort(reference.dropna().to_numpy(float))
    cur = np.sort(current.dropna().to_numpy(float))
    points = np.concatenate([ref, cur])
    gap = np.searchsorted(ref, points, side="right") / len(ref) - np.searchsorted(
        cur, points, side="right"
    ) / len(cur)
    return float(np.max(np.abs(gap)))


def feature_drift(features: pd.DataFrame, config: DriftConfig) -> pd.DataFrame:
    """One row per feature and one for the target: PSI, KS (numeric), alert and its reason."""
    history = features[~features["is_future"]]
    weeks = np.sort(history["week_start"].unique())
    future = features[features["is_future"]]
    horizon = max(future["week_start"].nunique(), 1)
    reference = history[history["week_start"] >= weeks[-config.reference_weeks :][0]]
    seasonal = _same_weeks_last_year(history, future, config.seasonal_window_weeks)
    seasonal, which = (seasonal, LAST_YEAR) if len(seasonal) else (reference, RECENT)
    rows = [
        _row(name, reference[name], future[name], config)
        if name not in config.seasonal
        else _seasonal_row(name, seasonal[name], future[name], config, which)
        for name in features.columns
        if name not in IDENTIFIERS and name not in config.exclude
    ]
    recent = weeks[-horizon:]
    before = weeks[:-horizon][-config.reference_weeks :]
    rows.append(
        _row(
            "units",
            history.loc[history["week_start"].isin(before), "units"],
            history.loc[history["week_start"].isin(recent), "units"],
            config,
            kind="target",
        )
    )
    return pd.DataFrame(rows, columns=COLUMNS)


def _same_weeks_last_year(history: pd.DataFrame, future: pd.DataFrame, window: int) -> pd.DataFrame:
    """History rows of the forecast weeks one year (52 weeks) earlier, ± `window` weeks."""
    if future.empty:
        return history.iloc[:0]
    year, margin = pd.Timedelta(weeks=52), pd.Timedelta(weeks=window)
    first, last = future["week_start"].min() - year, future["week_start"].max() - year
    weeks = history["week_start"]
    return history[(weeks >= first - margin) & (weeks <= last + margin)]


def _seasonal_row(
    name: str, reference: pd.Series, current: pd.Series, config: DriftConfig, which: str
) -> dict[str, object]:
    """PSI and KS for the record; the alert on the standardized mean shift."""
    row = _row(name, reference, current, config, alert=False) | {"reference": which}
    ref, cur = reference.astype(float).dropna(), current.astype(float).dropna()
    if len(ref) and len(cur):
        gap, sd = abs(float(cur.mean()) - float(ref.mean())), float(ref.std())
        shift = gap / sd if sd > 0 else (0.0 if gap == 0 else float("inf"))  # constant before
        row["shift"] = round(shift, 6)
        if shift >= config.shift_alert:
            row |= {"alert": True, "reason": f"shift {shift:.2f} sd >= {config.shift_alert}"}
    return row


def _row(
    name: str,
    reference: pd.Series,
    current: pd.Series,
    config: DriftConfig,
    kind: str = "",
    alert: bool = True,
) -> dict[str, object]:
    numeric = pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference)
    n_ref, n_cur = int(reference.notna().sum()), int(current.notna().sum())
    value_psi = value_ks = None
    if n_ref and n_cur:
        if numeric:
            value_psi = round(numeric_psi(reference, current, config.bins), 6)
            value_ks = round(ks(reference, current), 6)
        else:
            value_psi = round(categorical_psi(reference.dropna(), current.dropna()), 6)
    reasons = []
    if alert and value_psi is not None and value_psi >= config.psi_alert:
        reasons.append(f"psi {value_psi:.3f} >= {config.psi_alert}")
    if alert and value_ks is not None and value_ks >= config.ks_alert:
        reasons.append(f"ks {value_ks:.3f} >= {config.ks_alert}")
    return {
        "feature": name,
        "kind": kind or ("numeric" if numeric else "categorical"),
        "reference": RECENT,
        "psi": value_psi,
        "ks": value_ks,
        "shift": None,
        "alert": bool(reasons),
        "reason": "; ".join(reasons),
        "n_reference": n_ref,
        "n_current": n_cur,
    }
