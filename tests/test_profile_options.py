"""Profile options for real exports: value maps, numeric transforms, the negative policy,
aggregation into weeks, paths, line endings and the rejected-share warning. Every raw row is out,
aggregated into an output row, or rejected with a reason."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from conditioners.context import Context
from conditioners.engine import condition
from conditioners.profile import Profile
from conditioners.table import Conditioned

SHIP = {"store_id": {"from": "Store"}, "product_id": {"from": "Item"}}


def _profile(source: str = "shipments", **fields: Any) -> Profile:
    return Profile.model_validate({"name": "p", "source": source, "files": ["*"], **fields})


def _run(text: str, profile: Profile, file: str = "x.csv", **ctx: Any) -> Conditioned:
    result = condition(text.encode(), file, profile, Context(**ctx))
    counted = len(result.frame) + result.rows_aggregated + len(result.rejects)
    assert result.rows_in == counted  # every raw row is out, aggregated into one, or rejected
    return result


def test_currency_with_cents_becomes_whole_units_through_a_price_column_or_a_constant() -> None:
    text = "Store,Item,Week,Sales,Price\nS1,P1,2024-01-01,2492.50,2.50\nS1,P2,2024-01-01,10.0,3\n"
    text += "S1,P3,2024-01-01,5,0\nS1,P4,2024-01-01,5,\n"
    by_column = _profile(
        columns={**SHIP, "week_start": {"from": "Week"},
                 "units": {"from": "Sales", "price_from": "Price", "round": "nearest"}},
    )  # fmt: skip
    result = _run(text, by_column)
    assert result.frame["units"].tolist() == [997, 3]  # 10 / 3 = 3.33 -> 3
    assert result.rejects["reason"].tolist() == ["bad_price", "bad_price"]
    assert set(result.rejects["detail"]) == {"units: Price"}
    constant = _profile(
        columns={**SHIP, "week_start": {"from": "Week"},
                 "units": {"from": "Sales", "price": 2.5, "round": "down", "scale": 1.0}},
    )  # fmt: skip
    assert _run(text, constant).frame["units"].tolist() == [997, 4, 2, 2]
    scaled = _profile(
        columns={**SHIP, "week_start": {"from": "Week"}, "units": {"from": "Sales", "scale": 0.5}}
    )
    half = _run(text, scaled)  # without rounding, a part of a unit is still a bad number
    assert half.frame["units"].tolist() == [5] and half.rejects["reason"].nunique() == 1


def test_negative_values_are_quarantined_clipped_or_booked_as_returns() -> None:
    text = "Store,Item,Week,Units\nS1,P1,2024-01-01,5\nS1,P2,2024-01-01,-3\n"
    columns = {**SHIP, "week_start": {"from": "Week"}}
    default = _run(text, _profile(columns={**columns, "units": {"from": "Units"}}))
    assert default.rejects["reason"].tolist() == ["negative_value"] and default.returns is None
    clip = _profile(columns={**columns, "units": {"from": "Units", "negative": "clip"}})
    clipped = _run(text, clip)
    assert clipped.frame["units"].tolist() == [5, 0] and clipped.returns is None
    book = _profile(columns={**columns, "units": {"from": "Units", "negative": "returns"}})
    booked = _run(text, book)
    assert booked.frame["units"].tolist() == [5, 0]
    assert booked.returns is not None
    assert booked.returns.to_pylist() == [
        {"store_id": "S1", "product_id": "P2", "week_start": pd.Timestamp("2024-01-01"),
         "units_returned": 3}
    ]  # fmt: skip


def test_a_value_map_names_formats_and_turns_flags_into_numbers() -> None:
    stores = "Store,Type,Zip\nS1,A,98101\nS2,c,98101\nS3,Z,98101\n"
    profile = _profile(
        "stores",
        columns={
            "store_id": {"from": "Store"},
            "region": {"value": "pnw"},
            "zip_code": {"from": "Zip"},
            "store_format": {"from": "Type", "map": {"A": "large", "B": "large", "c": "small"}},
            "sqft": {"value": "1"},
        },
    )
    result = _run(stores, profile)
    assert result.frame["store_format"].tolist() == ["large", "small"]
    assert result.rejects["reason"].tolist() == ["bad_store_format"]  # Z is not mapped
    events = "Day,Holiday\n2024-01-01,TRUE\n2024-01-02,FALSE\n"
    flags = _profile(
        "events",
        columns={
            "start_date": {"from": "Day"}, "end_date": {"from": "Day"},
            "scope": {"value": "national"}, "scope_id": {"value": "US"},
            "kind": {"value": "holiday"}, "name": {"value": "state holiday"},
            "value": {"from": "Holiday", "map": {"TRUE": "1", "FALSE": "0"}},
        },
    )  # fmt: skip
    assert _run(events, flags).frame["value"].tolist() == [1.0, 0.0]


def test_days_aggregate_into_weeks_with_a_configurable_week_start() -> None:
    rows = ["Store,Item,Day,Units"]
    for day in pd.date_range("2024-01-07", "2024-01-20"):  # Sunday 7th .. Saturday 20th
        rows.append(f"S1,P1,{day:%Y-%m-%d},{day.day}")
    rows.append("S1,P1,2024-01-09,x")  # a bad number is rejected, not aggregated
    text = "\n".join(rows) + "\n"
    columns = {**SHIP, "week_start": {"from": "Day"}, "units": {"from": "Units"}}
    monday = _run(text, _profile(columns=columns, aggregate={"columns": {"units": "sum"}}))
    assert monday.frame["week_start"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-08"]
    assert monday.frame["units"].tolist() == [sum(range(8, 15))]
    assert monday.rows_aggregated == 6  # the first and last weeks lie partly outside the file:
    assert monday.rejects["reason"].value_counts().to_dict() == {"partial_week": 7, "bad_number": 1}
    kept = _run(
        text,
        _profile(columns=columns, aggregate={"columns": {"units": "sum"}, "partial_weeks": "keep"}),
    )
    assert kept.frame["units"].tolist() == [7, sum(range(8, 15)), sum(range(15, 21))]
    sunday = _run(
        text,
        _profile(columns=columns, aggregate={"week_start": "sunday", "columns": {"units": "max"}}),
    )
    assert sunday.frame["week_start"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-08", "2024-01-15"
    ]  # fmt: skip  # Sunday-to-Saturday weeks, labelled by their Monday
    assert sunday.frame["units"].tolist() == [13, 20] and sunday.rows_aggregated == 12
    last = _run(
        text,
        _profile(columns=columns, aggregate={"week_start": "sunday", "columns": {"units": "last"}}),
    )
    assert last.frame["units"].tolist() == [13, 20]
    mean = _run(
        text,
        _profile(columns=columns, aggregate={"week_start": "sunday", "columns": {"units": "mean"}}),
    )
    assert mean.frame["units"].tolist() == [10, 17]  # means of whole numbers, rounded


def test_transactions_aggregate_and_store_attributes_come_from_the_sales_file() -> None:
    log = "ts,store,sku,qty,type\n"
    log += "2024-01-02 09:15:00,S1,P1,2,a\n2024-01-02 17:40:12,S1,P1,1,a\n"
    log += "2024-01-03 10:00:00,S2,P1,4,b\n2024-01-09 08:00:00,S1,P1,3,a\n"
    shipments = _profile(
        columns={
            "store_id": {"from": "store"}, "product_id": {"from": "sku"},
            "week_start": {"from": "ts", "format": "%Y-%m-%d %H:%M:%S"},
            "units": {"from": "qty"},
        },
        aggregate={"columns": {"units": "sum"}, "partial_weeks": "keep"},
    )  # fmt: skip
    weekly = _run(log, shipments)
    assert weekly.frame[["store_id", "units"]].values.tolist() == [["S1", 3], ["S1", 3], ["S2", 4]]
    stores = _profile(
        "stores",
        columns={
            "store_id": {"from": "store"}, "region": {"from_path": "region"},
            "zip_code": {"value": "00000"},
            "store_format": {"from": "type", "map": {"a": "large", "b": "small"}},
            "sqft": {"value": "1"},
        },
        aggregate={"columns": {"sqft": "max"}},
    )  # fmt: skip
    found = _run(log, stores, "shipments/region=pnw/log.csv", regions=frozenset({"pnw"}))
    assert found.frame[["store_id", "region", "store_format"]].values.tolist() == [
        ["S1", "pnw", "large"], ["S2", "pnw", "small"]
    ]  # fmt: skip
    assert found.rows_aggregated == 2


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_any_line_ending_reads(ending: str) -> None:
    text = ending.join(["Store,Item,Week,Units", "S1,P1,2024-01-01,5", "S2,P1,2024-01-01,6", ""])
    columns = {**SHIP, "week_start": {"from": "Week"}, "units": {"from": "Units"}}
    result = _run(text, _profile(columns=columns))
    assert result.frame["units"].tolist() == [5, 6] and result.rejects.empty


def test_the_rejected_share_is_measured_without_rows_not_due_yet() -> None:
    text = "Store,Item,Week,Units\nS1,P1,2024-01-01,x\nS1,P1,2024-01-08,1\nS1,P1,2030-01-07,1\n"
    columns = {**SHIP, "week_start": {"from": "Week"}, "units": {"from": "Units"}}
    result = _run(text, _profile(columns=columns), as_of=pd.Timestamp("2024-02-04"))
    assert sorted(result.rejects["reason"]) == ["bad_number", "future_date"]
    assert result.rejected_share() == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"columns": {**SHIP, "week_start": {"from": "W"}, "units": {"from": "U"}},
          "aggregate": {"columns": {}}}, r"say how \['units'\] combine"),
        ({"columns": {**SHIP, "week_start": {"from": "W"}, "units": {"from": "U"}},
          "aggregate": {"columns": {"store_id": "sum"}}}, "not a non-key shipments column"),
        ({"columns": {**SHIP, "week_start": {"from": "W"},
                      "units": {"from": "U", "price": 2, "price_from": "P"}}}, "at most one"),
        ({"columns": {**SHIP, "week_start": {"from": "W"},
                      "units": {"from": "U", "from_path": "region"}}}, "exactly one"),
    ],
)  # fmt: skip
def test_inconsistent_options_are_configuration_errors(
    fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        _profile(**fields)


def test_returns_booking_is_for_shipments_units_only() -> None:
    columns = {**SHIP, "week_start": {"from": "W"}, "units_returned": {"from": "U"}}
    columns["units_returned"]["negative"] = "returns"
    with pytest.raises(ValidationError, match="for shipments units only"):
        _profile("returns", columns=columns)


def test_skipped_rows_are_rejected_with_their_reason_and_not_counted_as_bad() -> None:
    text = "Store,Date,StateHoliday\n1,2024-01-01,a\n2,2024-01-01,a\n1,2024-01-02,0\n"
    text += "1,2024-03-29,b\n"
    profile = _profile(
        "events",
        skip={"StateHoliday": ["0"]},
        columns={
            "start_date": {"from": "Date"}, "end_date": {"from": "Date"},
            "scope": {"value": "region"}, "scope_id": {"from_path": "region"},
            "kind": {"value": "holiday"},
            "name": {"from": "StateHoliday", "map": {"a": "public holiday", "b": "Easter"}},
            "value": {"value": "1"},
        },
        aggregate={"columns": {"value": "max", "end_date": "max"}},
    )  # fmt: skip
    result = _run(text, profile, "shipments/region=rhein/sales.csv")
    assert result.frame[["name", "scope_id"]].values.tolist() == [
        ["Easter", "rhein"], ["public holiday", "rhein"]
    ]  # fmt: skip
    assert result.rows_aggregated == 1 and result.rejects["reason"].tolist() == ["skipped"]
    assert result.rejected_share() == 0.0


def test_a_skip_column_need_not_be_mapped() -> None:
    text = "Store,Item,Week,Units,Status\nS1,P1,2024-01-01,5,ok\nS1,P2,2024-01-01,6,void\n"
    columns = {**SHIP, "week_start": {"from": "Week"}, "units": {"from": "Units"}}
    result = _run(text, _profile(columns=columns, skip={"Status": ["void"]}))
    assert result.frame["units"].tolist() == [5]
    assert result.rejects[["reason", "detail"]].values.tolist() == [["skipped", "Status skipped"]]
