"""Limits on what raw input may hold: a value past them is hostile or broken, never data.

Configured under `limits:` in pipeline.yaml (every key optional; see docs/sources.md). They
bound the work and memory one raw file can cost (JSON nesting depth, the size of one value,
the rows and columns of a spreadsheet) and what a row may claim (dates within a plausible
range, each standard quantity within plausible bounds).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from demandops.core.errors import DataError

# per numeric standard column: the lowest and highest plausible value (None: no bound); the
# schemas' own bounds hold as well
PLAUSIBLE: dict[str, tuple[float | None, float | None]] = {
    "units": (0, 1e6),  # retail units of one product in one store-week
    "units_returned": (0, 1e6),
    "sqft": (0, 1e7),
    "pack_size": (1, 1e4),
    "regular_price": (0, 1e5),
    "promo_price": (0, 1e5),
    "population": (0, 1e8),
    "median_income": (0, 1e6),
    "share_age_under_18": (0, 1),
    "share_age_60_plus": (0, 1),
    "household_size": (1, 10),
    "value": (0, 1e6),
    "tmax_c": (-60, 60),
    "tmin_c": (-70, 50),
    "precip_mm": (0, 500),
    "snow_mm": (0, 2000),
}


class InputLimits(BaseModel):
    """How much one raw file may hold, and what a row may plausibly claim."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    json_depth: int = Field(default=64, ge=2, le=1000)  # nesting of arrays and objects
    field_chars: int = Field(default=1_000_000, ge=100)  # bytes of one raw value (UTF-8)
    xlsx_rows: int = Field(default=1_048_576, ge=1)  # rows of a spreadsheet read, at most
    xlsx_columns: int = Field(default=1_000, ge=1)  # columns read of each row
    first_date: date = date(1950, 1, 1)  # dates before are `bad_date`
    last_date: date = date(2100, 12, 31)  # ... and after
    # per standard column, (low, high) replacing the default in PLAUSIBLE; None: no bound
    bounds: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self) -> InputLimits:
        if self.first_date > self.last_date:
            raise ValueError("first_date must not be after last_date")
        unknown = sorted(set(self.bounds) - set(PLAUSIBLE))
        if unknown:
            raise ValueError(f"bounds of unknown columns {unknown}; known: {sorted(PLAUSIBLE)}")
        return self

    def bounds_of(self, column: str) -> tuple[float | None, float | None]:
        """The plausible (low, high) of a standard column; configured bounds replace the
        defaults column by column."""
        return {**PLAUSIBLE, **self.bounds}.get(column, (None, None))

    def implausible_dates(self, days: np.ndarray) -> np.ndarray:
        """Per datetime64 value: outside [first_date, last_date] (NaT is not)."""
        low = np.datetime64(self.first_date, "D")
        high = np.datetime64(self.last_date, "D")
        day = days.astype("datetime64[D]")
        return ~np.isnat(days) & ((day < low) | (day > high))


def json_depth(data: bytes | str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings do
    not count), without parsing it: counted with numpy in one pass over the bytes."""
    raw = np.frombuffer(data.encode() if isinstance(data, str) else data, np.uint8)
    quote = raw == ord('"')
    if quote.any():  # a quote escaped by an odd run of backslashes is inside the string
        escaped = _escaped(raw, np.flatnonzero(quote))
        quote[escaped] = False
    inside = np.cumsum(quote) % 2 == 1  # after an opening quote, up to its closing one
    step = np.zeros(raw.size, np.int8)
    step[(raw == ord("[")) | (raw == ord("{"))] = 1
    step[(raw == ord("]")) | (raw == ord("}"))] = -1
    step[inside | quote] = 0
    return int(np.cumsum(step, dtype=np.int64).max(initial=0))


def bracket_depth(data: bytes | str) -> int:
    """An upper bound of `json_depth`, counting brackets inside strings too: one lookup and one
    cumulative sum over the bytes (about a sixth of the time `json.loads` takes)."""
    raw = np.frombuffer(data.encode() if isinstance(data, str) else data, np.uint8)
    deepest = level = 0
    for start in range(0, raw.size, _BLOCK):  # in blocks: the temporaries stay small
        depth = np.cumsum(_STEP[raw[start : start + _BLOCK]], dtype=np.int32) + level
        deepest, level = max(deepest, int(depth.max())), int(depth[-1])
    return deepest


_BLOCK = 2**22
_STEP = np.zeros(256, np.int8)  # per byte: +1 opens an array or object, -1 closes one
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


def _escaped(raw: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """The quotes (positions) preceded by an odd number of backslashes."""
    backslash = raw == ord("\\")
    if not backslash.any():
        return quotes[:0]
    # length of the run of backslashes ending at each position
    idx = np.arange(raw.size)
    last_other = np.maximum.accumulate(np.where(backslash, -1, idx))
    run = idx - last_other
    before = quotes[quotes > 0] - 1
    return before[(run[before] % 2 == 1) & backslash[before]] + 1


def load_json(data: bytes | str, what: str, max_depth: int, max_bytes: int | None = None) -> Any:
    """A JSON document; a DataError naming `what` when it is larger than `max_bytes` (TooLarge)
    or nested deeper than `max_depth` (checked before parsing: Python's parser would recurse
    once per level); ValueError when it is not JSON."""
    size = len(data)
    if max_bytes is not None and size > max_bytes:
        raise TooLarge(f"{what} is {size} bytes, more than the limit of {max_bytes}")
    depth = bracket_depth(data)  # fast; brackets inside strings may raise it, never lower it
    if depth > max_depth:
        depth = json_depth(data)
    if depth > max_depth:
        raise DataError(f"{what} is nested {depth} deep, deeper than the limit of {max_depth}")
    return json.loads(data)


def check_field_sizes(table: pa.Table, file: str, max_chars: int) -> None:
    """A DataError naming the file and column when one raw value is longer than `max_chars`
    bytes (a UTF-8 character is at least one)."""
    for name, column in zip(table.column_names, table.columns, strict=True):
        if not len(column):
            continue
        longest = pc.max(pc.binary_length(column)).as_py() or 0
        if longest > max_chars:
            raise DataError(
                f"cannot read {file}: a value of {longest} bytes in column {clip(name)!r}, "
                f"more than the limit of {max_chars}"
            )


class TooLarge(DataError):
    """An input larger than its limit."""


def clip(text: object, chars: int = 100) -> str:
    """`text` cut to `chars` characters (with how much was cut), for messages."""
    text = str(text)
    return text if len(text) <= chars else f"{text[:chars]}… ({len(text)} characters)"


def clip_list(items: list[Any], count: int = 20, chars: int = 100) -> str:
    """At most `count` items, each clipped, joined for a message (with how many were left)."""
    shown = ", ".join(clip(i, chars) for i in items[:count])
    return shown if len(items) <= count else f"{shown} … and {len(items) - count} more"
