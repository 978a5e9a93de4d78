"""Which members a blend uses, and with what weights, from their forecasts of validation windows.

Given every member's forecasts of the same validation rows (several backtest windows):

1. A member is **degenerate** if its forecasts are not finite or their median ratio to the
   actuals (rows that sold) is outside [1/`degenerate_ratio`, `degenerate_ratio`]: it is
   excluded (forecasting near zero on data of tens of thousands of units a week, say). A
   member the caller excludes from this blend (`excluded`: one blended for another objective
   only) is checked and reported alike, with no weight.
2. The **best member** is the one with the lowest validation score (the objective).
3. A member is **out of line**, and dropped, if its absolute bias exceeds the best member's by
   more than `bias_tolerance`, or its score exceeds the best member's by more than
   `error_tolerance` (relative).
4. The remaining members get the convex weights (grid step `step`) that minimise the score
   over all validation rows.
5. Those weights are **shrunk towards the best member** by the evidence that the blend beats
   it: with gain g (the best member's score less the blend's) and s the standard error of that
   difference (series resampled: every row of a series in one group), the blend keeps
   g² / (g² + s²) of its weights. A blend that wins by noise alone is mostly the best member.

The score being convex in the weights (absolute errors), the result scores no worse than the
best member on the validation rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from ml.metrics import bias, check_objective


@dataclass(frozen=True)
class Validation:
    """Every member's forecasts of the validation rows (rows × members), the actuals, and each
    row's group (its series) for the noise estimate."""

    actual: np.ndarray
    preds: np.ndarray
    groups: np.ndarray


@dataclass(frozen=True)
class MemberCheck:
    """One member's validation record and what the blend did with it."""

    name: str
    status: str  # "used", "unused" (zero weight or excluded), "dropped" (out of line), "degenerate"
    weight: float
    score: float | None
    bias: float | None
    median_ratio: float | None
    reason: str

    def record(self) -> dict[str, object]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Rules:
    objective: str = "wape"
    step: float = 0.05
    bias_tolerance: float = 0.10
    error_tolerance: float = 0.5
    degenerate_ratio: float = 3.0


@dataclass(frozen=True)
class Selection:
    weights: np.ndarray
    checks: list[MemberCheck]
    gain: float  # the best member's score less the unshrunk blend's
    noise: float  # standard error of that difference
    kept: float  # the share of the blend's weights kept (the rest goes to the best member)

    def note(self) -> str:
        """One line: the weights, the shrinkage, and every member left out and why."""
        used = ", ".join(f"{c.name} {c.weight:.2f}" for c in self.checks if c.weight > 0)
        parts = [f"weights {used}"]
        if 0.0 < self.kept < 1.0 or self.gain > 0:
            parts.append(
                f"blend {self.gain * 100:.2f} ± {self.noise * 100:.2f} points better than the "
                f"best member on validation, {self.kept:.2f} of its weights kept"
            )
        parts += [f"{c.name} {c.status}: {c.reason}" for c in self.checks if c.status != "used"]
        return "; ".join(parts)


def select(
    validation: Validation,
    names: list[str],
    rules: Rules,
    excluded: Mapping[str, str] | None = None,
) -> Selection:
    """The members' weights and checks (see the module docstring). `excluded` (name ->
    reason): members that may not enter this blend, checked and reported but given no weight,
    unless every member is excluded."""
    check_objective(rules.objective)
    actual, preds = validation.actual, validation.preds
    scores = [objective_score(rules.objective, actual, preds[:, j]) for j in range(len(names))]
    ratios = [_median_ratio(actual, preds[:, j]) for j in range(len(names))]
    biases = [_bias(actual, preds[:, j]) for j in range(len(names))]
    reasons = {j: _degenerate(ratios[j], rules.degenerate_ratio) for j in range(len(names))}
    status = {j: "degenerate" for j in reasons if reasons[j]}
    barred = _barred(names, excluded or {})
    for j, why in barred.items():
        status.setdefault(j, "unused")
        reasons[j] = reasons[j] or why
    candidates = [j for j in range(len(names)) if j not in barred]
    sound = [j for j in candidates if j not in status]
    best = min(sound or candidates, key=lambda j: (scores[j], j))
    if not sound:  # every member that may enter is degenerate: the best one forecasts, flagged
        reasons[best] += f"; kept: every member {'that may enter ' if barred else ''}is degenerate"
        sound = [best]
    for j in sound:
        if j != best and (why := _out_of_line(j, best, scores, biases, names, rules)):
            status[j], reasons[j] = "dropped", why
    eligible = [j for j in sound if status.get(j) != "dropped"]
    blend_w = np.zeros(len(names))
    blend_w[eligible] = _best_weights(actual, preds[:, eligible], rules.step, rules.objective)
    gain, noise = _gain(validation, blend_w, best, rules.objective)
    kept = gain**2 / (gain**2 + noise**2) if gain > 0 else 0.0
    weights = kept * blend_w
    weights[best] += 1.0 - kept
    checks = [
        MemberCheck(
            name,
            status.get(j, "used" if weights[j] > 0 else "unused"),
            float(weights[j]),
            _finite(scores[j]),
            _finite(biases[j]),
            _finite(ratios[j]),
            reasons[j] or _role(j, best, weights[j], blend_w[j]),
        )
        for j, name in enumerate(names)
    ]
    return Selection(weights, checks, gain, noise, kept)


def _barred(names: list[str], excluded: Mapping[str, str]) -> dict[int, str]:
    """Index -> reason of the members kept out of the blend: none if that is every member."""
    barred = {j: excluded[name] for j, name in enumerate(names) if name in excluded}
    return {} if len(barred) == len(names) else barred


def _role(j: int, best: int, weight: float, blend_weight: float) -> str:
    if j == best:
        return "best member on validation"
    if weight > 0:
        return "adds to the blend on validation"
    return "no weight in the best blend" if blend_weight == 0 else "shrunk to no weight"


def _out_of_line(
    j: int, best: int, scores: list[float], biases: list[float], names: list[str], rules: Rules
) -> str:
    """Why member j is out of line with the best member, or ""."""
    if abs(biases[j]) > abs(biases[best]) + rules.bias_tolerance:
        return (
            f"validation bias {biases[j] * 100:+.1f} % against {names[best]}'s "
            f"{biases[best] * 100:+.1f} %"
        )
    if scores[j] > scores[best] * (1.0 + rules.error_tolerance):
        return (
            f"validation {rules.objective.upper()} {scores[j] * 100:.1f} % against "
            f"{names[best]}'s {scores[best] * 100:.1f} %"
        )
    return ""


def _degenerate(ratio: float, limit: float) -> str:
    if not np.isfinite(ratio):
        return "no finite forecast of a row that sold"
    if ratio < 1.0 / limit or ratio > limit:
        return f"median forecast / actual {ratio:.3g} on validation (far from 1)"
    return ""


def _median_ratio(actual: np.ndarray, forecast: np.ndarray) -> float:
    if not np.isfinite(forecast).all():
        return float("nan")
    sold = actual > 0
    return float(np.median(forecast[sold] / actual[sold])) if sold.any() else 1.0


def _loss_terms(objective: str, actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Per row, the objective's numerator (absolute error, or its share of the actual)."""
    err = np.abs(forecast - actual)
    if objective == "wape":
        return err
    return np.divide(err, actual, out=np.zeros_like(err), where=actual > 0)


def _denominator(objective: str, actual: np.ndarray) -> np.ndarray:
    return actual if objective == "wape" else (actual > 0).astype(float)


def objective_score(objective: str, actual: np.ndarray, forecast: np.ndarray) -> float:
    """WAPE or MAPE of `forecast`; +inf where undefined or not finite."""
    total = _denominator(objective, actual).sum()
    if total <= 0 or not np.isfinite(forecast).all():
        return float("inf")
    return float(_loss_terms(objective, actual, forecast).sum() / total)


def _bias(actual: np.ndarray, forecast: np.ndarray) -> float:
    if not np.isfinite(forecast).all():
        return float("nan")
    return bias(actual, forecast) if actual.sum() > 0 else 0.0


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _gain(
    validation: Validation, weights: np.ndarray, best: int, objective: str
) -> tuple[float, float]:
    """The best member's score less the blend's, and the standard error of that difference
    with series (groups) as the resampled unit."""
    actual = validation.actual
    blend = validation.preds @ weights
    alone = validation.preds[:, best]
    if not np.isfinite(blend).all() or not np.isfinite(alone).all():
        return 0.0, 0.0
    diff = _loss_terms(objective, actual, alone) - _loss_terms(objective, actual, blend)
    den = _denominator(objective, actual)
    total = den.sum()
    if total <= 0:
        return 0.0, 0.0
    gain = float(diff.sum() / total)
    codes, groups = np.unique(validation.groups, return_inverse=True)
    n = len(codes)
    if n < 2:
        return gain, 0.0
    d = np.bincount(groups, weights=diff, minlength=n)
    w = np.bincount(groups, weights=den, minlength=n)
    noise = float(np.sqrt(n / (n - 1) * np.sum((d - gain * w) ** 2)) / total)
    return gain, noise


def _best_weights(actual: np.ndarray, preds: np.ndarray, step: float, objective: str) -> np.ndarray:
    """Convex weights on a grid minimising the objective; ties go to the earlier candidate."""
    n = preds.shape[1]
    ticks = np.round(np.arange(0.0, 1.0 + step / 2, step), 10)
    best, best_w = np.inf, np.full(n, 1.0 / n)
    for head in itertools.product(ticks, repeat=n - 1):
        last = 1.0 - sum(head)
        if last < -1e-9:
            continue
        w = np.array([*head, max(last, 0.0)])
        current = objective_score(objective, actual, preds @ w)
        if current < best - 1e-12:
            best, best_w = current, w
    return best_w


def records(selection: Selection) -> list[dict[str, object]]:
    """The checks as plain records (for the run report)."""
    return [c.record() for c in selection.checks]
