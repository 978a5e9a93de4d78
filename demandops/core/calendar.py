"""Weeks and holidays: weeks start on Monday; a holiday week contains a holiday of the region.

Holidays come from the `holidays` package by country and subdivision (a region's `holidays:` in
config/regions.yaml); the company's own days (sports finals, local festivals, deals) are its
events feed, on top. Without a `holidays:` block a region has the US retail calendar the
sample was made with: six US holidays on their actual days, and Super Bowl Sunday (a retail
day the package does not know, kept on the first Sunday of February as before).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

US_RETAIL = (
    "New Year's Day", "Memorial Day", "Independence Day", "Labor Day", "Thanksgiving Day",
    "Christmas Day",
)  # fmt: skip


class HolidayCalendar(BaseModel):
    """Which days are holidays in a region."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str = "US"  # ISO 3166 alpha-2, as the `holidays` package names it
    subdivision: str | None = None  # e.g. a US state (WA) or German Land (NW)
    names: tuple[str, ...] | None = None  # keep only these holidays (default: all of them)
    observed: bool = False  # also the weekdays a holiday on a weekend is observed on
    super_bowl: bool = False  # also Super Bowl Sunday (first Sunday of February)

    @field_validator("country")
    @classmethod
    def _known(cls, country: str) -> str:
        if country not in _countries():
            raise ValueError(f"unknown country {country!r} for the holidays package")
        return country

    def days(self, first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
        """The holidays from `first` to `last` (inclusive)."""
        import holidays

        years = range(first.year, last.year + 1)
        found = holidays.country_holidays(
            self.country, subdiv=self.subdivision, years=years, observed=self.observed
        )
        kept = [d for d, name in found.items() if self.names is None or _named(name, self.names)]
        if self.super_bowl:
            kept += [_first_sunday_of_february(y) for y in years]
        days = pd.DatetimeIndex(sorted(set(pd.Timestamp(d) for d in kept)))
        return days[(days >= first) & (days <= last)]


US_RETAIL_CALENDAR = HolidayCalendar(names=US_RETAIL, super_bowl=True)


def _named(name: str, names: tuple[str, ...]) -> bool:
    """A holiday is named when one of its names (the package joins same-day ones with `; `)
    is in `names`."""
    return any(part.strip() in names for part in name.split(";"))


def _first_sunday_of_february(year: int) -> pd.Timestamp:
    first = pd.Timestamp(year=year, month=2, day=1)
    return first + pd.Timedelta(days=(6 - first.weekday()) % 7)


@cache
def _countries() -> frozenset[str]:
    import holidays

    return frozenset(holidays.list_supported_countries())


def week_start(dates: pd.Series | pd.DatetimeIndex) -> pd.Series | pd.DatetimeIndex:
    """The Monday that starts the week of each date."""
    return dates - pd.to_timedelta(dates.day_of_week, unit="D")


def weeks(first_monday: str | pd.Timestamp, n: int) -> pd.DatetimeIndex:
    """`n` consecutive week starts from `first_monday`, which must be a Monday."""
    first = pd.Timestamp(first_monday)
    if first.weekday() != 0:
        raise ValueError(f"weeks start on Monday; {first.date()} is a {first.day_name()}")
    return pd.date_range(first, periods=n, freq="7D")


def holiday_weeks(
    week_starts: pd.DatetimeIndex, calendar: HolidayCalendar = US_RETAIL_CALENDAR
) -> np.ndarray:
    """True for weeks that contain a holiday of `calendar`."""
    if len(week_starts) == 0:
        return np.zeros(0, dtype=bool)
    days = calendar.days(week_starts.min(), week_starts.max() + pd.Timedelta(days=6))
    holiday_mondays = set(week_start(pd.DatetimeIndex(days)))
    return np.array([w in holiday_mondays for w in week_starts], dtype=bool)
