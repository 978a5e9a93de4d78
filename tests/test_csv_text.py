"""The lake's CSV writer gives pandas' bytes, whatever the columns hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demandops.core.csv_text import csv_text


def _pandas(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, float_format="%.6g", date_format="%Y-%m-%d")


def _floats(rng: np.random.Generator, n: int) -> np.ndarray:
    values = rng.choice(
        [0.0, -0.0, 1.0, 5.0, 0.1, 1 / 3, 2 / 3, 123456.5, 1234567.0, 1e16, 1e-5, 1.25e-7, -2.5],
        n,
    ) * rng.choice([1.0, 10.0, 0.001, -1.0], n)
    values[rng.random(n) < 0.1] = np.nan
    values[rng.random(n) < 0.02] = np.inf
    values[rng.random(n) < 0.02] = -np.inf
    return values


def _texts(rng: np.random.Generator, n: int) -> list[str | None]:
    pool = ["PNW-001", "a,b", 'say "hi"', "line\nbreak", "cr\rhere", "", " spaced ", "ünï", None]
    return [pool[i] for i in rng.integers(0, len(pool), n)]


@pytest.mark.parametrize("seed", range(6))
def test_every_handled_column_type_gives_pandas_bytes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    dates = pd.Series(pd.to_datetime("2019-01-07") + pd.to_timedelta(rng.integers(0, 200, n), "D"))
    dates[rng.random(n) < 0.1] = None  # stored as NaT
    frame = pd.DataFrame(
        {
            "store_id": pd.array(_texts(rng, n), dtype="string"),
            "text, odd": pd.Series(_texts(rng, n), dtype=object),
            "week_start": dates,
            "units": rng.integers(-5, 10**6, n),
            "small": rng.integers(0, 200, n).astype(np.uint8),
            "forecast": _floats(rng, n),
            "f32": _floats(rng, n).astype(np.float32),
            "flag": rng.random(n) < 0.5,
        }
    )
    assert csv_text(frame) == _pandas(frame)
    assert csv_text(frame.head(0)) == _pandas(frame.head(0))


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"only": ["", "x", None]}),  # one column: the csv module quotes an empty cell
        pd.DataFrame({"a": pd.Categorical(["x", "y"]), "b": [1.5, 2.5]}),
        pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [1.5, 2.5]}),
        pd.DataFrame({"a": [1, "x"], "b": [0.1, 0.2]}),  # objects, not all text
        pd.DataFrame({"a": pd.to_datetime(["2020-01-01", "NaT"]).tz_localize("UTC"), "b": [1, 2]}),
        pd.DataFrame(index=range(3)),
    ],
)
def test_other_frames_are_written_by_pandas(frame: pd.DataFrame) -> None:
    assert csv_text(frame) == _pandas(frame)
