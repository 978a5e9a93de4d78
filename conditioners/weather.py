"""Weather: daily observations and forecasts per zip code (°C, mm).

Observations may not be dated after `as_of`; a forecast needs the day it was issued and may not
be for a day before it. A minimum above the maximum is inconsistent.
"""

from __future__ import annotations

import numpy as np

from conditioners.columns import Frame
from conditioners.context import Context
from conditioners.schemas import WEATHER_KINDS
from conditioners.table import RowSorter


def rules(frame: Frame, rows: RowSorter, ctx: Context) -> None:
    zip_code, kind = frame.coded("zip_code"), frame.coded("kind")
    rows.reject_values(zip_code, (~zip_code.fullmatch(r"\d{5}"), "bad_zip_code", ""))
    rows.reject_values(kind, (~kind.isin(WEATHER_KINDS), "bad_kind", ""))
    observed, forecast = kind.spread(kind.eq("observed")), kind.spread(kind.eq("forecast"))
    date, issued = frame.array("date"), frame.array("issued")
    if ctx.as_of is not None:
        rows.reject(observed & (date > np.datetime64(ctx.as_of)), "future_date")
    rows.reject(forecast & np.isnat(issued), "missing_value", "issued")
    rows.reject(forecast & (date < issued), "forecast_before_issue")
    with np.errstate(invalid="ignore"):
        inconsistent = frame.array("tmin_c") > frame.array("tmax_c")
    rows.reject(inconsistent, "inconsistent_values", "tmin_c > tmax_c")
