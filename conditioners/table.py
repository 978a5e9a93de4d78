"""Shared mechanics of conditioning a CSV feed: read, map columns, split good rows from rejects."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd

from demandops.errors import DataError


@dataclass(frozen=True)
class Conditioned:
    """The result of conditioning one raw file."""

    frame: pd.DataFrame  # standardized rows
    rejects: pd.DataFrame  # raw rows (as text) with `reason` and `line`
    rows_in: int


def read_raw_csv(data: bytes, file: str, required: list[str]) -> pd.DataFrame:
    """Parse raw CSV as text (no type guessing); a file that cannot be read is a DataError."""
    try:
        # index_col=False: rows ending in a delimiter must not turn the first column into the index
        frame = pd.read_csv(
            io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8", index_col=False
        )
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read {file}: {str(exc).splitlines()[0]}") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"cannot read {file}: missing columns {missing}; found {list(frame.columns)}"
        )
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")  # line 1 is the header
    return frame


class RowSorter:
    """Collects the reasons rows are rejected; the first reason a row gets is the one kept."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self.raw = raw
        self.reason = pd.Series(pd.NA, index=raw.index, dtype="string")

    def reject(self, mask: pd.Series, reason: str) -> None:
        self.reason = self.reason.mask(mask & self.reason.isna(), reason)

    @property
    def good(self) -> pd.Series:
        return self.reason.isna()

    def result(self, frame: pd.DataFrame) -> Conditioned:
        bad = ~self.good
        rejects = self.raw[bad].assign(reason=self.reason[bad]).reset_index()
        return Conditioned(
            frame=frame.reset_index(drop=True), rejects=rejects, rows_in=len(self.raw)
        )


def parse_int(values: pd.Series) -> pd.Series:
    """Whole numbers written as text ("12", "12.0"); anything else becomes NA."""
    number = pd.to_numeric(values.str.strip(), errors="coerce")
    whole = number.notna() & (number == number.round())
    return number.where(whole).astype("Int64")
