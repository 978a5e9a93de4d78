"""Drift between the training window and the scoring batch: PSI and the Kolmogorov-Smirnov
statistic per feature, PSI of the target.

- Features: the last `reference_weeks` of history (the training window) against the rows to
  forecast (`is_future`).
- Target (`units`): the scoring batch has no actuals yet, so the latest H weeks of actuals (as
  many weeks as are forecast) against the `reference_weeks` before them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandops.settings import DriftConfig

EPSILON = 1e-4  # the share given to an empty bin, so that PSI stays finite
IDENTIFIERS = {"store_id", "product_id", "week_start", "units", "is_future", "region"}
COLUMNS = ["feature", "kind", "psi", "ks", "alert", "reason", "n_reference", "n_current"]


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
    rows = [
        _row(name, reference[name], future[name], config)
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


def _row(
    name: str, reference: pd.Series, current: pd.Series, config: DriftConfig, kind: str = ""
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
    if value_psi is not None and value_psi >= config.psi_alert:
        reasons.append(f"psi {value_psi:.3f} >= {config.psi_alert}")
    if value_ks is not None and value_ks >= config.ks_alert:
        reasons.append(f"ks {value_ks:.3f} >= {config.ks_alert}")
    return {
        "feature": name,
        "kind": kind or ("numeric" if numeric else "categorical"),
        "psi": value_psi,
        "ks": value_ks,
        "alert": bool(reasons),
        "reason": "; ".join(reasons),
        "n_reference": n_ref,
        "n_current": n_cur,
    }
