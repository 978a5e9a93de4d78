"""Weeks and holidays: weeks start on Monday; a holiday week contains a major US holiday."""

from __future__ import annotations

import numpy as np
import pandas as pd
from dateutil.relativedelta import SU
from pandas.tseries.holiday import (
    AbstractHolidayCalendar,
    Holiday,
    USLaborDay,
    USMemorialDay,
    USThanksgivingDay,
)
from pandas.tseries.offsets import DateOffset


class RetailHolidayCalendar(AbstractHolidayCalendar):
    """Holidays that move grocery demand."""

    rules = [  # noqa: RUF012 (pandas declares rules as a class attribute)
        Holiday("New Year's Day", month=1, day=1),
        Holiday("Super Bowl Sunday", month=2, day=1, offset=DateOffset(weekday=SU(1))),
        USMemorialDay,
        Holiday("Independence Day", month=7, day=4),
        USLaborDay,
        USThanksgivingDay,
        Holiday("Christmas Day", month=12, day=25),
    ]


def week_start(dates: pd.Series | pd.DatetimeIndex) -> pd.Series | pd.DatetimeIndex:
    """The Monday that starts the week of each date."""
    return dates - pd.to_timedelta(dates.day_of_week, unit="D")


def weeks(first_monday: str | pd.Timestamp, n: int) -> pd.DatetimeIndex:
    """`n` consecutive week starts from `first_monday`, which must be a Monday."""
    first = pd.Timestamp(first_monday)
    if first.weekday() != 0:
        raise ValueError(f"weeks start on Monday; {first.date()} is a {first.day_name()}")
    return pd.date_range(first, periods=n, freq="7D")


def holiday_weeks(week_starts: pd.DatetimeIndex) -> np.ndarray:
    """True for weeks that contain a holiday of RetailHolidayCalendar."""
    if len(week_starts) == 0:
        return np.zeros(0, dtype=bool)
    days = RetailHolidayCalendar().holidays(
        week_starts.min(), week_starts.max() + pd.Timedelta(days=6)
    )
    holiday_mondays = set(week_start(pd.DatetimeIndex(days)))
    return np.array([w in holiday_mondays for w in week_starts], dtype=bool)
