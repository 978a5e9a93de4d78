"""What conditioning produces, and how rows are sorted into good and rejected."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
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
        self._code = np.zeros(len(raw), dtype=np.int16)  # 0: good, else 1 + index in _reasons
        self._reasons: list[tuple[str, str]] = []

    def reject(self, mask: pd.Series | np.ndarray, reason: str, detail: str = "") -> None:
        hit = np.asarray(pd.Series(mask).fillna(False), dtype=bool) & (self._code == 0)
        if hit.any():
            self._reasons.append((reason, detail))
            self._code[hit] = len(self._reasons)

    @property
    def good(self) -> pd.Series:
        return pd.Series(self._code == 0, index=self.raw.index)

    def result(self, frame: pd.DataFrame) -> Conditioned:
        bad = self._code > 0
        codes = self._code[bad] - 1
        records = [
            json.dumps(r, ensure_ascii=False, sort_keys=True)
            for r in self.raw[bad].to_dict("records")
        ]
        rejects = pd.DataFrame(
            {
                "line": self.raw.index[bad].to_numpy(),
                "reason": [self._reasons[c][0] for c in codes],
                "detail": [self._reasons[c][1] for c in codes],
                "record": records,
            },
            columns=REJECT_COLUMNS,
        )
        return Conditioned(
            frame=frame.reset_index(drop=True), rejects=rejects, rows_in=len(self.raw)
        )
