"""The ensemble's members, named in configuration (`ensemble:` in config/pipeline.yaml).

A member is any scikit-learn-style forecaster class, written as `module:Class`, with a
class method `for_segment(numeric, categorical, params)` that returns an unfitted estimator
for one segment, and a short `forecaster_name` under which its metrics are reported
(optionally `blended_for`, the objectives whose blends it may enter: ml/ensemble.py). Shipping
a new model is: write the class, name it in the configuration; training, backtest, gates and
promotion take it from there.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from sklearn.base import BaseEstimator

DEFAULT_MEMBERS = ("ml.models:LassoForecaster", "ml.embedding_net:EmbeddingNetForecaster")


class Member(Protocol):
    forecaster_name: str

    @classmethod
    def for_segment(
        cls, numeric: tuple[str, ...], categorical: tuple[str, ...], params: Any
    ) -> BaseEstimator: ...


def load_member(path: str) -> type[Member]:
    """The class named `module:Class`; a ValueError says what is wrong with the name."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise ValueError(
            f"{path!r}: write a member as module:Class, e.g. ml.models:LassoForecaster"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{path!r}: cannot import it ({exc})") from exc
    missing = [a for a in ("for_segment", "forecaster_name") if not hasattr(cls, a)]
    if missing:
        raise ValueError(f"{path!r}: a member needs {' and '.join(missing)}")
    return cls  # type: ignore[no-any-return]
