"""Value maps, path values and numeric transforms of the columns of a profile (docs/sources.md).

- `map` replaces raw values (after stripping) before they are parsed: `A: large`, `TRUE: "1"`;
  values it does not name pass unchanged.
- `skip: {COLUMN: [values]}` rejects the rows holding those raw values as `skipped`.
- `from_path: region` takes each row's value from its raw file's path (`…/region=pnw/…`).
- Numbers, after the unit conversion: times `scale`, divided by a price (`price_from` a raw
  column, or `price` a constant: money to units), rounded to whole units (`round`), and then
  the `negative` policy: `quarantine` (the bounds check rejects the row, as always), `clip`
  (to 0), or `returns` (shipments units: the week ships 0 and the amount is booked as returned).
A row whose price is missing, not a number or not above 0 is rejected as `bad_price`.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conditioners.columns import Coded, Frame
from conditioners.profile import ColumnSpec, Profile
from conditioners.table import RowSorter
from conditioners.values import numbers

RETURNED = "_returned"  # the frame's column of units booked as returns (negative policy)
_DIGITS = 9  # values are rounded to this many decimals before floor / ceil (float noise)


def mapped(values: pa.Array, spec: ColumnSpec) -> pa.Array:
    """The distinct text values with `spec.value_map` applied."""
    if not spec.value_map:
        return values
    texts = values.to_pylist()
    return pa.array([spec.value_map.get(t, t) for t in texts], pa.string())


def path_values(files: list[str], key: str, sizes: np.ndarray) -> Coded:
    """Per row, the value of the folder `key=<value>` in its file's path ("" if none)."""
    pattern = re.compile(rf"(?:^|/){re.escape(key)}=([^/]*)/")
    found = [m.group(1) if (m := pattern.search(f)) else "" for f in files]
    codes = np.repeat(np.arange(len(files), dtype=np.int32), sizes)
    return Coded(codes, pa.array(found, pa.string()))


def skip_rows(texts: dict[str, Coded], rows: RowSorter, profile: Profile) -> None:
    """Reject as `skipped` the rows whose raw column holds a value the profile skips (e.g. the
    days that are no holiday in an events profile reading a sales export)."""
    for column, values in profile.skip.items():
        text = texts[column]
        rows.reject_values(text, (text.isin(values), "skipped", f"{column} skipped"))


def _numeric(spec: ColumnSpec) -> bool:
    return (
        spec.scale is not None
        or spec.price is not None
        or spec.price_from is not None
        or spec.round is not None
        or spec.negative != "quarantine"
    )


def apply_transforms(
    texts: dict[str, Coded], rows: RowSorter, frame: Frame, profile: Profile
) -> None:
    """Scale, price, round and the negative policy of every numeric column that asks for them
    (the frame's column becomes one value per row; booked returns go to RETURNED)."""
    for name, spec in profile.columns.items():
        if not _numeric(spec):
            continue
        values = frame.array(name).astype(float, copy=True)
        if spec.scale is not None:
            values *= spec.scale
        if spec.price is not None:
            values /= spec.price
        if spec.price_from is not None:
            values /= _prices(texts[spec.price_from], rows, spec, name)
        if spec.round is not None:
            values = _rounded(values, spec.round)
        with np.errstate(invalid="ignore"):
            below = values < 0
        if spec.negative == "returns":
            frame.columns[RETURNED] = np.where(below, -values, 0.0)
        if spec.negative != "quarantine":
            values[below] = 0.0
        frame.columns[name] = values


def _prices(text: Coded, rows: RowSorter, spec: ColumnSpec, name: str) -> np.ndarray:
    """The price of each row; a row without a usable price is rejected (`bad_price`)."""
    cleaned = text.values
    if spec.decimal != ".":
        cleaned = pc.replace_substring(cleaned, spec.decimal, ".")
    price = np.asarray(numbers(cleaned), dtype=float)
    with np.errstate(invalid="ignore"):
        usable = price > 0
    rows.reject_values(text, (~usable, "bad_price", f"{name}: {spec.price_from}"))
    return text.spread(np.where(usable, price, np.nan))


def _rounded(values: np.ndarray, how: str) -> np.ndarray:
    steady = np.round(values, _DIGITS)
    if how == "down":
        return np.floor(steady)
    if how == "up":
        return np.ceil(steady)
    return np.floor(steady + 0.5)  # half up
