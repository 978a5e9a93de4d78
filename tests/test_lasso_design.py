"""The LASSO's design built in remembered pieces: the same matrix, each piece built once."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.models import DESIGN_ROWS, DESIGNS, LassoForecaster


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "product_id": rng.choice(["A", "B", "C", "D"], n),
            "discount": np.where(rng.random(n) < 0.6, 0.0, rng.uniform(0.1, 0.4, n)),
            "level": rng.normal(size=n),
            "gate": rng.choice([0.0, 0.5, 1.0], n),
        }
    )


def _lasso() -> LassoForecaster:
    model = LassoForecaster(
        features=("discount", "level"), slopes_by="product_id", sloped=("discount",), gate="gate"
    )
    model.slope_levels_ = ["A", "B", "C"]  # as fit sets them: "D" was not seen
    return model


def _empty() -> None:
    DESIGNS.kept.clear()
    DESIGNS.bytes = DESIGNS.hits = 0


def test_a_remembered_design_is_the_design_and_later_prefixes_reuse_its_pieces() -> None:
    X, model = _frame(3 * DESIGN_ROWS + 77), _lasso()
    _empty()
    for n in (DESIGN_ROWS - 1, 2 * DESIGN_ROWS + 5, len(X)):
        built, remembered = model._columns(X.head(n)), model._columns(X.head(n), remember=True)
        assert (
            remembered.shape == built.shape == (n, 2 + 3 + 1)
        )  # features, slopes of 3 levels, the gate
        assert (remembered != built).nnz == 0
    assert DESIGNS.hits == 2  # the last prefix found the two pieces the one before built
    assert len(DESIGNS.kept) == 3


def test_a_changed_row_is_a_new_piece() -> None:
    X, model = _frame(2 * DESIGN_ROWS), _lasso()
    _empty()
    first = model._columns(X, remember=True)
    row = int(np.flatnonzero(X["gate"].to_numpy() == 1.0)[0])  # a row the level counts on
    X.loc[[row], "level"] += 1.0
    second = model._columns(X, remember=True)
    assert DESIGNS.hits == 1  # the second piece only
    assert (second != model._columns(X)).nnz == 0 and (second != first).nnz == 1
