"""The columns of a table being conditioned, each kept as its distinct raw values and one code
per row (Arrow's dictionary encoding).

Stripping, parsing, mapping and checking a value is done once per distinct value, however many
rows carry it: a check gives one answer per distinct value (`values` order), and only when some
value fails is it spread to the rows (`spread`). Text values are an Arrow string array; made
numbers and dates a numpy array (float64, datetime64[ns]).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Coded:
    """A column: `values[codes[i]]` is row i (values need not be distinct)."""

    codes: np.ndarray  # int, one per row
    values: Any  # pa.Array of strings, or np.ndarray of numbers or dates

    def __post_init__(self) -> None:
        if isinstance(self.values, pa.ChunkedArray):
            object.__setattr__(self, "values", self.values.combine_chunks())

    @classmethod
    def of(cls, array: pa.ChunkedArray) -> Coded:
        """Encode a text column (strings or bytes): values of one width of 1, 2, 4 or 8 bytes
        as integers with pandas' hash table (about twice as fast), others with Arrow's (its
        chunks share one dictionary, the last holds all of it)."""
        fixed = _fixed_width(array)
        if fixed is not None:
            return fixed
        chunks = pc.dictionary_encode(array).chunks
        if not chunks:
            return cls(np.zeros(0, dtype=np.int32), pa.array([], pa.string()))
        codes = [c.indices.to_numpy(zero_copy_only=False) for c in chunks]
        return cls(np.concatenate(codes), chunks[-1].dictionary)

    @classmethod
    def constant(cls, value: str, rows: int) -> Coded:
        return cls(np.zeros(rows, dtype=np.int32), pa.array([value], pa.string()))

    def spread(self, per_value: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """An array with one entry per distinct value, spread to all rows (or to `rows`)."""
        return per_value[self.codes if rows is None else self.codes[rows]]

    def isin(self, items: Iterable[str | None]) -> np.ndarray:
        known = pa.array([i for i in set(items) if i is not None], pa.string())
        return bools(pc.is_in(self.values, value_set=known))

    def eq(self, value: str) -> np.ndarray:
        return bools(pc.equal(self.values, value))

    def fullmatch(self, pattern: str) -> np.ndarray:
        return self.series().str.fullmatch(pattern).to_numpy(dtype=bool)

    def series(self) -> pd.Series:
        """The distinct text values as a pandas string Series (for pandas' own parsers)."""
        return pd.Series(self.values.to_pandas(), dtype="str")

    def ranks(self) -> np.ndarray:
        """Per distinct value a code >= 0, equal where the values are and ordered as they are
        (text in byte order, missing numbers and dates last)."""
        if isinstance(self.values, np.ndarray):
            values = self.values
            if values.dtype.kind == "M":
                values = np.where(np.isnat(values), np.iinfo(np.int64).max, values.view(np.int64))
            rank = pd.factorize(values, sort=True)[0]
            return np.where(rank < 0, rank.max(initial=0) + 1, rank).astype(np.int64)
        rank = pc.rank(self.values, sort_keys="ascending", tiebreaker="dense").to_numpy()
        return rank.astype(np.int64) - 1

    def arrow(self, rows: np.ndarray) -> pa.Array:
        """The text values of the rows at the indices `rows`."""
        return self.values.take(pa.array(self.codes[rows]))


def _fixed_width(array: pa.ChunkedArray) -> Coded | None:
    """`Coded.of` for text values all 1, 2, 4 or 8 bytes long (None for any other)."""
    if array.type not in (pa.string(), pa.binary()) or array.null_count or not len(array):
        return None
    whole = array.combine_chunks()
    offsets = np.frombuffer(whole.buffers()[1], np.int32, len(whole) + 1, whole.offset * 4)
    width, rest = divmod(int(offsets[-1] - offsets[0]), len(whole))
    if rest or width not in (1, 2, 4, 8) or not (np.diff(offsets) == width).all():
        return None
    data = np.frombuffer(whole.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    kind = np.dtype(f"<u{width}")
    codes, uniques = pd.factorize(data.view(kind))
    starts = np.arange(len(uniques) + 1, dtype=np.int32) * width
    text = np.asarray(uniques).astype(kind).tobytes()
    buffers = [None, pa.py_buffer(starts), pa.py_buffer(text)]
    return Coded(codes, pa.Array.from_buffers(whole.type, len(uniques), buffers))


def bools(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow boolean array as numpy bools (missing counts as False)."""
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)


@dataclass
class Frame:
    """The standard columns of the rows being conditioned, by name: coded, or (numbers after
    unit conversion) one value per row."""

    rows: int
    columns: dict[str, Coded | np.ndarray] = field(default_factory=dict)

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def coded(self, name: str) -> Coded:
        column = self.columns[name]
        assert isinstance(column, Coded), name
        return column

    def array(self, name: str) -> np.ndarray:
        """A number (float64) or date (datetime64[ns]) column, one value per row."""
        column = self.columns[name]
        return column.spread(column.values) if isinstance(column, Coded) else column


def day_of_week(dates: np.ndarray) -> np.ndarray:
    """Monday 0 … Sunday 6 of datetime64 values; -1 for NaT."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    return np.where(np.isnat(dates), -1, (days + 3) % 7)  # 1970-01-01 was a Thursday
