"""What conditioning produces, and how rows are sorted into good and rejected."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

REJECT_COLUMNS = ["line", "reason", "detail", "record"]


@dataclass(frozen=True)
class Conditioned:
    """The result of conditioning one raw file: rows_in == len(frame) + len(rejects)."""

    frame: pd.DataFrame  # standardized rows
    rejects: pd.DataFrame  # REJECT_COLUMNS: raw line, reason code, detail, raw record as JSON
    rows_in: int


class RowSorter:
    """Collects the reasons rows are rejected; the first reason a row gets is the one kept."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self.raw = raw
        self.reason = pd.Series(pd.NA, index=raw.index, dtype="string")
        self.detail = pd.Series("", index=raw.index, dtype="string")

    def reject(self, mask: pd.Series, reason: str, detail: str = "") -> None:
        new = mask.fillna(False).astype(bool) & self.reason.isna()
        self.reason = self.reason.mask(new, reason)
        self.detail = self.detail.mask(new, detail)

    @property
    def good(self) -> pd.Series:
        return self.reason.isna()

    def result(self, frame: pd.DataFrame) -> Conditioned:
        bad = ~self.good
        records = [
            json.dumps(r, ensure_ascii=False, sort_keys=True)
            for r in self.raw[bad].to_dict("records")
        ]
        rejects = pd.DataFrame(
            {
                "line": self.raw.index[bad].to_numpy(),
                "reason": self.reason[bad].astype(str).to_numpy(),
                "detail": self.detail[bad].astype(str).to_numpy(),
                "record": pd.Series(records, dtype="str"),
            },
            columns=REJECT_COLUMNS,
        )
        return Conditioned(
            frame=frame.reset_index(drop=True), rejects=rejects, rows_in=len(self.raw)
        )
