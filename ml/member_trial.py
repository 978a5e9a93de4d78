"""Members on trial: tried on a segment's first validation window, kept where they win.

`ensemble_trial:` in config/pipeline.yaml names members that cost more than they help on some
data: gradient-boosted trees find the interactions of real retail data (a deal in a low-price
week, a brand against its rivals' promotions) and win there, while on data a log-linear model
describes they lose to the LASSO at many times its cost. Before a segment trains, each is fit
beside the configured members on the weeks before the segment's first validation window (the
ensemble's own, `EnsembleForecaster.first_window`), and it joins the segment's ensemble only
where its error on that window, by the blend's objective, is within `TOLERANCE` of the best
configured member's: a member about as good as the best adds what their errors do not share
(on Dominick's the trees and the LASSO were within 1 % of each other on single windows, and
the blend gave the trees 0.57-0.66 of its weight). Otherwise it is left out of every fit of
the segment, having cost that one fit. Once in, the blend's rules (`ml.blend`) weigh it like
any other member.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ml.blend import objective_score
from ml.ensemble import EnsembleForecaster

TOLERANCE = 0.05  # relative: a trial member joins with an error up to 1.05 x the best's


@dataclass(frozen=True)
class Trial:
    """A segment's trial: the members on trial that joined its ensemble, and the note of the
    verdicts for its model card."""

    joined: tuple[str, ...] = ()  # the members' import paths, as in `ensemble_trial:`
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    """A trial member's score on the first validation window against the best configured
    member's."""

    name: str
    score: float
    rival: str
    rival_score: float
    objective: str

    @property
    def joined(self) -> bool:
        """Within `TOLERANCE` of the rival; never on a window where the error is undefined
        (no units sold): there is nothing to tell the members apart."""
        return bool(np.isfinite(self.score)) and self.score <= self.rival_score * (1.0 + TOLERANCE)

    def note(self) -> str:
        outcome = "joined" if self.joined else "left out"
        measure = self.objective.upper()
        return (
            f"trial {self.name} {outcome}: first validation window {measure} "
            f"{self.score:.3f}, {self.rival} {self.rival_score:.3f}"
        )


def verdicts(
    blend: EnsembleForecaster,
    trial: list[tuple[str, BaseEstimator]],
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
) -> list[Verdict]:
    """Each trial member's verdict on the first validation window of `blend` fit on (X, y)."""
    actual, forecasts = blend.first_window(X, y, [estimator for _, estimator in trial])
    names = [name for name, _ in blend.estimators or []]
    scores = [objective_score(blend.objective, actual, f) for f in forecasts.T]
    best = int(np.argmin(scores[: len(names)]))
    return [
        Verdict(name, scores[len(names) + i], names[best], scores[best], blend.objective)
        for i, (name, _) in enumerate(trial)
    ]
