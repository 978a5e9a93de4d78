"""Model lifecycle rules: promotion gates, staleness and retraining triggers. Pure functions.

Gates (all must pass for a candidate to become champion), on the configured metric (MAPE or
WAPE) over the candidate's rolling-origin backtest:
  1. the metric is at most `max_error` (0.45);
  2. it is at least `min_improvement` (20 %) lower than the historical-average baseline's;
  3. it is not worse than the current champion's on the same evaluation window by more than
     `champion_tolerance` (relative).

Staleness: a champion trained more than `stale_after_days` days before the scoring date is
stale. Both dates are calendar dates of the batch's clock (wall clock, injectable): the training
date is the day the model was fit, the scoring date the day the batch forecasts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class GateConfig:
    metric: str = "wape"
    max_error: float = 0.45
    min_improvement: float = 0.20
    champion_tolerance: float = 0.05


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)


def _bad(value: float | None) -> bool:
    return value is None or math.isnan(value)


def evaluate_gates(
    candidate: float | None,
    baseline: float | None,
    same_window: tuple[float, float] | None,
    cfg: GateConfig,
    champion_label: str = "champion",
) -> GateResult:
    """Apply the three gates.

    `candidate` and `baseline` are backtest metrics over the same rows; `same_window` is
    (champion, candidate) on a window both can be judged on, or None without a champion.
    """
    m = cfg.metric
    if _bad(candidate):
        return GateResult(False, [f"{m}: no backtest value for the candidate"])
    assert candidate is not None
    reasons: list[str] = []
    ok = candidate <= cfg.max_error
    reasons.append(f"{m} {candidate:.4f} {'<=' if ok else '>'} max {cfg.max_error:g}")
    passed = ok
    if _bad(baseline) or baseline == 0:
        reasons.append(f"{m}: no baseline value to beat")
        passed = False
    else:
        assert baseline is not None
        gain = 1.0 - candidate / baseline
        ok = gain >= cfg.min_improvement
        reasons.append(
            f"{gain:.1%} better than hist_avg {m} {baseline:.4f} "
            f"({'>=' if ok else '<'} {cfg.min_improvement:.0%} required)"
        )
        passed = passed and ok
    if same_window is None or _bad(same_window[0]) or _bad(same_window[1]):
        reasons.append(f"no {champion_label} to compare on the same window")
    else:
        champion, challenger = same_window
        ok = challenger <= champion * (1.0 + cfg.champion_tolerance)
        reasons.append(
            f"{m} {challenger:.4f} vs {champion_label} {champion:.4f} on the same window "
            f"({'within' if ok else 'beyond'} {cfg.champion_tolerance:.0%} tolerance)"
        )
        passed = passed and ok
    return GateResult(passed, reasons)


def age_days(trained_on: date, scoring_date: date) -> int:
    return (scoring_date - trained_on).days


def is_stale(trained_on: date, scoring_date: date, stale_after_days: int) -> bool:
    """Stale when trained more than `stale_after_days` days before the scoring date."""
    return age_days(trained_on, scoring_date) > stale_after_days


def retrain_reasons(
    champion: dict[str, str] | None,
    dataset_version: str,
    code_version: str,
    scoring_date: date,
    stale_after_days: int,
) -> list[str]:
    """Why a segment needs a new model (empty: its champion is current).

    `champion` holds the champion's lineage tags: `dataset_version` (the data behind it),
    `code_version`, `trained_on` (ISO date).
    """
    if champion is None:
        return ["no champion"]
    reasons = []
    if champion.get("code_version") != code_version:
        reasons.append(f"code changed: {champion.get('code_version')} -> {code_version}")
    if champion.get("dataset_version") != dataset_version:
        reasons.append(f"new data: {champion.get('dataset_version')} -> {dataset_version}")
    trained_on = date.fromisoformat(champion["trained_on"])
    if is_stale(trained_on, scoring_date, stale_after_days):
        reasons.append(
            f"stale: trained {age_days(trained_on, scoring_date)} days before the scoring date "
            f"(> {stale_after_days})"
        )
    return reasons
