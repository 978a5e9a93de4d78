"""Conditioners: hand-written raw CSV bytes in, standardized frames and quarantined rows out."""

from __future__ import annotations

import pandas as pd
import pytest

from conditioners.products import condition_products
from conditioners.promotions import condition_promotions
from conditioners.schemas import PRODUCTS, PROMOTIONS, SHIPMENTS, STORES
from conditioners.shipments import condition_shipments
from conditioners.stores import condition_stores
from conditioners.table import Conditioned
from demandops.errors import DataError

SHIP_FILE = "raw/shipments/region=pnw/shipments.csv"
STORES_FILE = "raw/stores/stores.csv"
PRODUCTS_FILE = "raw/products/products.csv"
PROMO_FILE = "raw/promotions/region=pnw/promotions.csv"
KNOWN_STORES = {"S1", "S2"}
KNOWN_PRODUCTS = {"P1", "P2"}
LAST_WEEK = pd.Timestamp("2017-02-20")  # a Monday

# 2017-01-01 was a Sunday, so 01/08, 01/15, 01/22, ... are Sundays (week endings).
# Each row's expected fate; line numbers count the header as line 1.
SHIPMENT_ROWS: list[tuple[str, str | None]] = [
    ("S2,P1,01/15/2017,7", None),  # line 2: good
    ("S1,P2,01/08/2017,3", None),  # line 3: good
    ("S1,P1,01/15/2017,12.0", None),  # line 4: good, a whole number written with a decimal
    ("S1,P1,2017-01-08,5", "bad_date"),  # line 5: ISO, not M/D/Y
    ("S1,P1,01/14/2017,5", "not_week_ending_sunday"),  # line 6: a Saturday
    ("S1,P1,01/22/2017,n/a", "bad_units"),  # line 7
    ("S1,P1,01/29/2017,1.5", "bad_units"),  # line 8: not a whole number
    ("S1,P1,02/05/2017,-2", "negative_units"),  # line 9
    ("S9,P1,01/15/2017,4", "unknown_store"),  # line 10
    ("S1,P9,01/15/2017,4", "unknown_product"),  # line 11
    ("S2,P1,01/15/2017,7", "duplicate"),  # line 12: exact copy of line 2
    ("S2,P1,01/15/2017,8", "conflicting_duplicate"),  # line 13: same key as line 2
    ("S1,P1,03/05/2017,4", "future_week"),  # line 14: week starts 2017-02-27 > LAST_WEEK
    (" S2 , P2 ,01/22/2017, 9", None),  # line 15: good once the padding is stripped
    ("S1,P1,2/12/2017,6", None),  # line 16: good, no leading zero in the month
    ("S1,P1,13/01/2017,6", "bad_date"),  # line 17: D/M/Y
    ("S1,P1,,6", "bad_date"),  # line 18: empty date
    ("S1,P1,02/19/2017,", "bad_units"),  # line 19: empty units
]


def _csv(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def _shipments_csv(rows: list[str]) -> bytes:
    return _csv("Store,Item,Week Ending,Units", rows)


def _reasons(result: Conditioned) -> dict[int, str]:
    return dict(zip(result.rejects["line"], result.rejects["reason"], strict=True))


def _assert_accounted(result: Conditioned) -> None:
    assert result.rows_in == len(result.frame) + len(result.rejects)


# -- shipments -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipments() -> Conditioned:
    data = _shipments_csv([row for row, _ in SHIPMENT_ROWS])
    return condition_shipments(data, SHIP_FILE, KNOWN_STORES, KNOWN_PRODUCTS, last_week=LAST_WEEK)


def test_good_shipments_are_standardized_and_sorted(shipments: Conditioned) -> None:
    expected = pd.DataFrame(
        {
            "store_id": ["S1", "S1", "S1", "S2", "S2"],
            "product_id": ["P1", "P1", "P2", "P1", "P2"],
            "week_start": pd.to_datetime(
                ["2017-01-09", "2017-02-06", "2017-01-02", "2017-01-09", "2017-01-16"]
            ),
            "units": [12, 6, 3, 7, 9],
        }
    )
    frame = shipments.frame
    assert list(frame.columns) == SHIPMENTS.names
    assert frame["units"].dtype == "int64"
    assert pd.api.types.is_datetime64_any_dtype(frame["week_start"])
    assert (frame["week_start"].dt.day_of_week == 0).all()  # Mondays
    pd.testing.assert_frame_equal(
        frame.astype({"store_id": object, "product_id": object, "week_start": "datetime64[ns]"}),
        expected.astype({"store_id": object, "product_id": object, "week_start": "datetime64[ns]"}),
    )


def test_week_start_is_week_ending_minus_six_days() -> None:
    rows = [f"S1,P1,{d},1" for d in ("01/01/2017", "12/31/2017", "03/03/2019", "01/05/2020")]
    result = condition_shipments(_shipments_csv(rows), SHIP_FILE, KNOWN_STORES, KNOWN_PRODUCTS)
    endings = pd.to_datetime(["2017-01-01", "2017-12-31", "2019-03-03", "2020-01-05"])
    assert list(result.frame["week_start"]) == list(endings - pd.Timedelta(days=6))
    assert len(result.rejects) == 0


def test_each_bad_shipment_is_quarantined_with_its_reason(shipments: Conditioned) -> None:
    expected = {line: reason for line, (_, reason) in enumerate(SHIPMENT_ROWS, start=2) if reason}
    assert _reasons(shipments) == expected
    _assert_accounted(shipments)
    assert shipments.rows_in == len(SHIPMENT_ROWS)


def test_rejects_keep_the_raw_text_and_line(shipments: Conditioned) -> None:
    rejects = shipments.rejects.set_index("line")
    assert list(rejects.columns) == ["Store", "Item", "Week Ending", "Units", "reason"]
    for line, (row, reason) in enumerate(SHIPMENT_ROWS, start=2):
        if reason is None:
            continue
        assert ",".join(rejects.loc[line, ["Store", "Item", "Week Ending", "Units"]]) == row
    assert rejects.loc[7, "Units"] == "n/a"
    assert rejects.loc[8, "Units"] == "1.5"
    assert rejects.loc[5, "Week Ending"] == "2017-01-08"


def test_future_weeks_are_kept_without_last_week() -> None:
    data = _shipments_csv(["S1,P1,03/05/2017,4", "S1,P1,01/08/2017,2"])
    result = condition_shipments(data, SHIP_FILE, KNOWN_STORES, KNOWN_PRODUCTS)
    assert list(result.frame["units"]) == [2, 4]
    bounded = condition_shipments(
        data, SHIP_FILE, KNOWN_STORES, KNOWN_PRODUCTS, last_week=pd.Timestamp("2017-02-27")
    )
    assert len(bounded.frame) == 2  # the last week itself is not in the future


def test_the_first_reason_a_row_gets_is_the_one_kept() -> None:
    # unknown store and unreadable units: the earlier check (units) names the row
    data = _shipments_csv(["S9,P1,01/08/2017,n/a", "S9,P9,01/07/2017,x"])
    result = condition_shipments(data, SHIP_FILE, KNOWN_STORES, KNOWN_PRODUCTS)
    assert _reasons(result) == {2: "bad_units", 3: "not_week_ending_sunday"}
    assert result.frame.empty
    _assert_accounted(result)


def test_rows_ending_in_a_delimiter_keep_their_columns() -> None:
    """Exports often end every line with a comma; that must not shift the columns."""
    data = _csv("Store,Item,Week Ending,Units", ["S1,P1,01/08/2017,3,", "S2,P2,01/15/2017,4,"])
    result = condition_shipments(data, SHIP_FILE, KNOWN_STORES, KNOWN_PRODUCTS)
    assert len(result.rejects) == 0, result.rejects.to_dict("records")
    assert list(result.frame["store_id"]) == ["S1", "S2"]
    assert list(result.frame["units"]) == [3, 4]


def test_a_header_only_file_gives_no_rows() -> None:
    result = condition_shipments(_shipments_csv([]), SHIP_FILE, KNOWN_STORES, KNOWN_PRODUCTS)
    assert result.rows_in == 0
    assert result.frame.empty
    assert list(result.frame.columns) == SHIPMENTS.names
    assert result.rejects.empty


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(b"Store,Item,Units\nS1,P1,3\n", "missing columns", id="missing-column"),
        pytest.param(
            "Store,Item,Week Ending,Units,Entrepôt\nS1,P1,01/08/2017,3,é\n".encode("latin-1"),
            "utf-8",
            id="latin-1",
        ),
        pytest.param(b"", "cannot read", id="empty"),
        pytest.param(
            b"Store,Item,Week Ending,Units\nS1,P1,01/08/2017,3\nS1,P1,01/15/2017,3,4,5\n",
            "cannot read",
            id="ragged",
        ),
    ],
)
def test_an_unreadable_shipments_file_is_a_data_error_naming_it(data: bytes, problem: str) -> None:
    with pytest.raises(DataError) as err:
        condition_shipments(data, SHIP_FILE, KNOWN_STORES, KNOWN_PRODUCTS)
    assert SHIP_FILE in str(err.value)
    assert problem in str(err.value)


def test_missing_columns_are_named() -> None:
    with pytest.raises(DataError, match=r"missing columns \['Week Ending'\]"):
        condition_shipments(b"Store,Item,Units\nS1,P1,3\n", SHIP_FILE, KNOWN_STORES, KNOWN_PRODUCTS)


# -- stores --------------------------------------------------------------------------------

STORE_ROWS: list[tuple[str, str | None]] = [
    ("PNW-001,pnw,98101,Large,50000", None),  # line 2: format normalized to lower case
    ("NE-001,ne,02108,small,14000.0", None),  # line 3: zip keeps its leading zero
    ("PNW-003,pnw,98101,medium,20000", "bad_store_format"),
    ("PNW-004,pnw,9810,small,14000", "bad_zip_code"),
    ("PNW-005,xx,98101,small,14000", "unknown_region"),
    ("PNW-001,pnw,98101,large,50000", "duplicate"),
    ("PNW-006,pnw,98101,small,abc", "bad_sqft"),
    (",pnw,98101,small,100", "missing_store_id"),
    ("PNW-007,pnw,98101,small,-5", "bad_sqft"),
    ("PNW-008,pnw,98l01,small,100", "bad_zip_code"),
]
STORES_HEADER = "store_id,region,zip_code,store_format,sqft"


def test_stores_are_standardized_and_bad_rows_quarantined() -> None:
    data = _csv(STORES_HEADER, [row for row, _ in STORE_ROWS])
    result = condition_stores(data, STORES_FILE, {"pnw", "ne"})
    expected = pd.DataFrame(
        {
            "store_id": ["NE-001", "PNW-001"],
            "region": ["ne", "pnw"],
            "zip_code": ["02108", "98101"],
            "store_format": ["small", "large"],
            "sqft": [14000, 50000],
        }
    )
    assert list(result.frame.columns) == STORES.names
    assert result.frame["sqft"].dtype == "int64"
    pd.testing.assert_frame_equal(result.frame.astype(object), expected.astype(object))
    expected_reasons = {n: r for n, (_, r) in enumerate(STORE_ROWS, start=2) if r}
    assert _reasons(result) == expected_reasons
    _assert_accounted(result)


def test_store_ids_differing_only_in_padding_are_duplicates() -> None:
    data = _csv(STORES_HEADER, ["PNW-001,pnw,98101,large,1", " PNW-001,pnw,98101,small,2"])
    result = condition_stores(data, STORES_FILE, {"pnw"})
    assert list(result.frame["store_id"]) == ["PNW-001"]
    assert _reasons(result) == {3: "duplicate"}


def test_a_stores_file_without_a_column_names_the_file() -> None:
    with pytest.raises(DataError, match=r"raw/stores/stores\.csv.*missing columns \['sqft'\]"):
        condition_stores(
            b"store_id,region,zip_code,store_format\nA,pnw,98101,large\n", STORES_FILE, {"pnw"}
        )


# -- products ------------------------------------------------------------------------------

PRODUCTS_HEADER = "product_id,name,category,pack_size,regular_price"
PRODUCT_ROWS: list[tuple[str, str | None]] = [
    ("P002,Dairy item,Dairy ,6,2.25", None),
    ("P001,Juice item, Juice,12,3.5", None),
    ("P003,x,snacks,0,1.0", "bad_pack_size"),
    ("P004,x,snacks,1.5,1.0", "bad_pack_size"),
    ("P005,x,snacks,6,abc", "bad_price"),
    ("P006,x,snacks,6,-1", "bad_price"),
    ("P001,x,juice,12,3.5", "duplicate"),
    (",x,snacks,6,1", "missing_product_id"),
]


def test_products_are_standardized_and_bad_rows_quarantined() -> None:
    data = _csv(PRODUCTS_HEADER, [row for row, _ in PRODUCT_ROWS])
    result = condition_products(data, PRODUCTS_FILE)
    expected = pd.DataFrame(
        {
            "product_id": ["P001", "P002"],
            "category": ["juice", "dairy"],
            "pack_size": [12, 6],
            "regular_price": [3.5, 2.25],
        }
    )
    assert list(result.frame.columns) == PRODUCTS.names
    assert result.frame["pack_size"].dtype == "int64"
    assert result.frame["regular_price"].dtype == "float64"
    pd.testing.assert_frame_equal(result.frame.astype(object), expected.astype(object))
    assert _reasons(result) == {n: r for n, (_, r) in enumerate(PRODUCT_ROWS, start=2) if r}
    _assert_accounted(result)


def test_product_ids_differing_only_in_padding_are_duplicates() -> None:
    data = _csv(PRODUCTS_HEADER, ["P001,a,juice,12,3.5", "P001 ,b,juice,6,3.0"])
    result = condition_products(data, PRODUCTS_FILE)
    assert list(result.frame["product_id"]) == ["P001"]
    assert list(result.frame["pack_size"]) == [12]
    assert _reasons(result) == {3: "duplicate"}


def test_a_non_utf8_products_file_names_the_file() -> None:
    data = "product_id,name,category,pack_size,regular_price\nP1,Café,x,1,1\n".encode("latin-1")
    with pytest.raises(DataError, match=r"raw/products/products\.csv"):
        condition_products(data, PRODUCTS_FILE)


# -- promotions ----------------------------------------------------------------------------

PROMO_ROWS: list[tuple[str, str | None]] = [
    ("S1,P1,2017-01-09,2.5", None),
    ("S1,P1,2017-01-02,2", None),
    ("S1,P1,2017-01-03,2.0", "not_week_start_monday"),
    ("S1,P1,01/16/2017,2.0", "bad_date"),
    ("S1,P1,2017-01-23,x", "bad_price"),
    ("S1,P1,2017-01-30,-1", "bad_price"),
    ("S9,P1,2017-01-09,2.0", "unknown_store"),
    ("S1,P9,2017-01-09,2.0", "unknown_product"),
    ("S1,P1,2017-01-09,2.4", "duplicate"),
]


def test_promotions_are_standardized_and_bad_rows_quarantined() -> None:
    data = _csv("store_id,product_id,week_start,promo_price", [row for row, _ in PROMO_ROWS])
    result = condition_promotions(data, PROMO_FILE, {"S1"}, {"P1"})
    assert list(result.frame.columns) == PROMOTIONS.names
    assert list(result.frame["week_start"]) == list(pd.to_datetime(["2017-01-02", "2017-01-09"]))
    assert list(result.frame["promo_price"]) == [2.0, 2.5]
    assert result.frame["promo_price"].dtype == "float64"
    assert _reasons(result) == {n: r for n, (_, r) in enumerate(PROMO_ROWS, start=2) if r}
    _assert_accounted(result)


def test_an_empty_promotions_file_names_the_file() -> None:
    with pytest.raises(DataError, match=r"raw/promotions/region=pnw/promotions\.csv"):
        condition_promotions(b"", PROMO_FILE, {"S1"}, {"P1"})


# -- schemas -------------------------------------------------------------------------------


def _good_shipments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "units": [3, 0],
            "week_start": pd.to_datetime(["2017-01-02", "2017-01-09"]),
            "product_id": ["P1", "P1"],
            "store_id": ["S1", "S1"],
        }
    )


def test_schema_accepts_a_good_frame_and_orders_its_columns() -> None:
    out = SHIPMENTS.validate(_good_shipments().assign(extra=1))
    assert list(out.columns) == ["store_id", "product_id", "week_start", "units"]


def test_schema_rejects_a_missing_column() -> None:
    with pytest.raises(DataError, match=r"shipments: missing columns \['units'\]"):
        SHIPMENTS.validate(_good_shipments().drop(columns="units"))


def test_schema_rejects_negative_units() -> None:
    with pytest.raises(DataError, match=r"shipments\.units: values below 0"):
        SHIPMENTS.validate(_good_shipments().assign(units=[3, -1]))


def test_schema_rejects_duplicate_keys() -> None:
    frame = _good_shipments().assign(week_start=pd.to_datetime(["2017-01-02", "2017-01-02"]))
    with pytest.raises(DataError, match="shipments: duplicate keys"):
        SHIPMENTS.validate(frame)


def test_schema_rejects_wrong_types_and_nulls() -> None:
    with pytest.raises(DataError, match=r"shipments\.units: expected int"):
        SHIPMENTS.validate(_good_shipments().assign(units=[3.0, 1.5]))
    with pytest.raises(DataError, match=r"shipments\.week_start: expected date"):
        SHIPMENTS.validate(_good_shipments().assign(week_start=["2017-01-02", "2017-01-09"]))
    with pytest.raises(DataError, match=r"shipments\.store_id: 1 missing values"):
        SHIPMENTS.validate(_good_shipments().assign(store_id=["S1", None]))
