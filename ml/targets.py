"""The target of every forecaster's `fit`: units sold, as real numbers."""

from __future__ import annotations

from typing import Any

import numpy as np


def units(y: Any, dtype: type = float) -> np.ndarray:
    """`y` as an array of `dtype`; complex values are refused, not cast to their real part
    (numpy's cast drops the imaginary part with only a warning)."""
    values = np.asarray(y)
    if np.iscomplexobj(values):
        raise ValueError("Complex data not supported: the target must be real unit counts")
    return values.astype(dtype)
