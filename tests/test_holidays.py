"""Holidays by country and subdivision (the `holidays` package), per region; without a
`holidays:` block a region keeps the US retail calendar the sample was made with, week for week."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dateutil.relativedelta import SU
from pandas.tseries.holiday import (
    AbstractHolidayCalendar,
    Holiday,
    USLaborDay,
    USMemorialDay,
    USThanksgivingDay,
)
from pandas.tseries.offsets import DateOffset

from demandops.core.calendar import US_RETAIL_CALENDAR, HolidayCalendar, holiday_weeks
from demandops.core.errors import ConfigError
from demandops.core.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
WEEKS = pd.date_range("2000-01-03", "2040-12-31", freq="7D")


class _HandWritten(AbstractHolidayCalendar):
    """The calendar demandops/core/calendar.py held before the `holidays` package."""

    rules = [  # noqa: RUF012
        Holiday("New Year's Day", month=1, day=1),
        Holiday("Super Bowl Sunday", month=2, day=1, offset=DateOffset(weekday=SU(1))),
        USMemorialDay,
        Holiday("Independence Day", month=7, day=4),
        USLaborDay,
        USThanksgivingDay,
        Holiday("Christmas Day", month=12, day=25),
    ]


def test_the_default_calendar_flags_the_same_weeks_as_the_hand_written_one() -> None:
    days = _HandWritten().holidays(WEEKS.min(), WEEKS.max() + pd.Timedelta(days=6))
    mondays = set(days - pd.to_timedelta(days.day_of_week, unit="D"))
    expected = np.array([w in mondays for w in WEEKS])
    assert (holiday_weeks(WEEKS) == expected).all() and expected.sum() == 287
    assert (holiday_weeks(WEEKS, US_RETAIL_CALENDAR) == expected).all()


def test_a_country_and_its_subdivision_choose_the_holidays() -> None:
    corpus_christi = pd.DatetimeIndex(["2024-05-27"])  # Thursday 30 May 2024, in NW not in BE
    assert holiday_weeks(corpus_christi, HolidayCalendar(country="DE", subdivision="NW"))[0]
    assert not holiday_weeks(corpus_christi, HolidayCalendar(country="DE", subdivision="BE"))[0]
    juneteenth = pd.DatetimeIndex(["2024-06-17"])
    assert holiday_weeks(juneteenth, HolidayCalendar(country="US"))[0]  # every US holiday
    assert not holiday_weeks(juneteenth)[0]  # not in the retail six
    only = HolidayCalendar(country="US", names=("Juneteenth National Independence Day",))
    assert holiday_weeks(juneteenth, only)[0]
    july_5 = pd.DatetimeIndex(["2021-07-05"])  # 4 July 2021 was a Sunday, observed Monday 5th
    assert holiday_weeks(july_5, HolidayCalendar(country="US", observed=True))[0]
    assert not holiday_weeks(july_5, HolidayCalendar(country="US"))[0]


def test_regions_configure_their_holidays_and_an_unknown_country_is_a_config_error(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    (config / "environments").mkdir(parents=True)
    for name in ("pipeline.yaml", "environments/dev.yaml"):
        (config / name).write_text((ROOT / "config" / name).read_text())
    region = '{id: rhein, name: R, zip_codes: ["00000"], stores: {large: 1, small: 1}, '
    (config / "regions.yaml").write_text(
        f"regions:\n  - {region}holidays: {{country: DE, subdivision: NW}}}}\n"
        '  - {id: ne, name: N, zip_codes: ["02108"], stores: {large: 1, small: 1}}\n'
    )
    settings = load_settings(config)
    assert settings.pipeline.holidays == {
        "rhein": HolidayCalendar(country="DE", subdivision="NW")
    }  # regions without a block keep the default calendar
    (config / "regions.yaml").write_text(f"regions:\n  - {region}holidays: {{country: XX}}}}\n")
    with pytest.raises(ConfigError, match=r"regions\[0\].holidays.country.*unknown country 'XX'"):
        load_settings(config)
