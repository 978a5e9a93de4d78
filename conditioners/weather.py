"""Weather: daily observations and forecasts per zip code (°C, mm).

Observations may not be dated after `as_of`; a forecast needs the day it was issued and may not
be for a day before it. A minimum above the maximum is inconsistent.
"""

from __future__ import annotations

import pandas as pd

from conditioners.context import Context
from conditioners.schemas import WEATHER_KINDS
from conditioners.table import RowSorter


def rules(frame: pd.DataFrame, rows: RowSorter, ctx: Context) -> None:
    rows.reject(~frame["zip_code"].str.fullmatch(r"\d{5}"), "bad_zip_code")
    rows.reject(~frame["kind"].isin(WEATHER_KINDS), "bad_kind")
    observed, forecast = frame["kind"] == "observed", frame["kind"] == "forecast"
    if ctx.as_of is not None:
        rows.reject(observed & (frame["date"] > ctx.as_of), "future_date")
    rows.reject(forecast & frame["issued"].isna(), "missing_value", "issued")
    rows.reject(forecast & (frame["date"] < frame["issued"]), "forecast_before_issue")
    rows.reject(frame["tmin_c"] > frame["tmax_c"], "inconsistent_values", "tmin_c > tmax_c")
