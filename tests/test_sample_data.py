"""The sample raw feeds: deterministic, region-independent, realistic and a little dirty.

Shipments come in two raw shapes (distributor A: comma-separated, Sunday week endings as M/D/Y,
units; distributor B: semicolon-separated Windows-1252, Monday dates as DD.MM.YYYY, cases or
units), as a history export plus one file per late week. The helpers below read both shapes
independently of conditioners/, so these tests check the generator, not the profiles (those
are tests/test_profiles.py and tests/test_conditioners.py).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest

from demandops.core.errors import DataError
from demandops.core.lake import Lake
from demandops.core.settings import DEFAULT_CONFIG_DIR, Region, load_settings
from demandops.sample.data import SampleSpec, generate, sample_files
from demandops.sample.shapes import LATE_WEEKS

SPEC = SampleSpec(products=6, weeks=70, store_scale=0.5)
FAST = ["P001", "P003", "P005"]  # even-indexed products (0, 2, 4) are fast movers
SLOW = ["P002", "P004", "P006"]  # odd-indexed products (1, 3, 5) are slow movers
KEY = ["store_id", "product_id", "week_start"]
LAST_HISTORY = pd.Timestamp(SPEC.start) + pd.Timedelta(weeks=SPEC.weeks - 1)
# the documented "future" dirt is a mistyped year; anything this far ahead is not a shipment
IMPLAUSIBLE = LAST_HISTORY + pd.Timedelta(weeks=52)
DIRTY_QUANTITIES = ("n/a", "-9999", "", "-3")  # unreadable, sentinel, missing, negative
FEEDS = {
    "stores",
    "products",
    "shoppers",
    "weather",
    "events",
    "shipments",
    "returns",
    "promotions",
}


@dataclass(frozen=True)
class Shape:
    """How one distributor writes its shipments."""

    columns: tuple[str, ...]  # as written, in order
    sep: str
    encoding: str
    store: str
    item: str
    date: str
    date_format: str
    weekday: int  # of the date column: 6 Sunday (week ending), 0 Monday (week start)
    quantity: str
    unit: str | None  # column saying CS (cases) or EA (units); None: always units


SHAPES = {
    "a": Shape(
        columns=("Store", "Item", "Week Ending", "Units"),
        sep=",",
        encoding="utf-8",
        store="Store",
        item="Item",
        date="Week Ending",
        date_format="%m/%d/%Y",
        weekday=6,
        quantity="Units",
        unit=None,
    ),
    "b": Shape(
        columns=("FILIALE", "FILIALNAME", "ARTIKEL", "WOCHE", "MENGE", "EINHEIT"),
        sep=";",
        encoding="cp1252",
        store="FILIALE",
        item="ARTIKEL",
        date="WOCHE",
        date_format="%d.%m.%Y",
        weekday=0,
        quantity="MENGE",
        unit="EINHEIT",
    ),
}
SHIPMENT_FILE = re.compile(
    r"raw/shipments/region=(?P<region>[^/]+)/dist_(?P<shape>[ab])_(?P<name>.+)\.csv"
)


@pytest.fixture(scope="module")
def all_regions() -> list[Region]:
    return load_settings(DEFAULT_CONFIG_DIR, env="dev").regions


@pytest.fixture(scope="module")
def regions(all_regions: list[Region]) -> list[Region]:
    return all_regions[:2]  # one of each distributor's shape


@pytest.fixture(scope="module")
def files(regions: list[Region]) -> dict[str, bytes]:
    return {f.path: f.data for f in sample_files(regions, SPEC)}


@pytest.fixture(scope="module")
def every(all_regions: list[Region]) -> dict[str, bytes]:
    return {f.path: f.data for f in sample_files(all_regions, SPEC)}


def _text_csv(data: bytes, sep: str = ",", encoding: str = "utf-8") -> pd.DataFrame:
    """A raw feed exactly as written: every value is text, nothing is read as missing."""
    return pd.read_csv(
        io.BytesIO(data), sep=sep, encoding=encoding, dtype=str, keep_default_na=False
    )


def _shipment_files(files: dict[str, bytes], region: Region) -> dict[str, bytes]:
    prefix = f"raw/shipments/region={region.id}/"
    return {p: d for p, d in files.items() if p.startswith(prefix)}


def _shipment_file(path: str) -> re.Match[str]:
    match = SHIPMENT_FILE.fullmatch(path)
    assert match is not None, f"{path} is not a distributor's shipment file"
    return match


def _shape_of(path: str) -> str:
    return _shipment_file(path)["shape"]


def _region_shape(files: dict[str, bytes], region: Region) -> str:
    shapes = {_shape_of(p) for p in _shipment_files(files, region)}
    assert len(shapes) == 1, f"{region.id} ships in shapes {shapes}"
    return shapes.pop()


def _raw_shipments(path: str, data: bytes) -> pd.DataFrame:
    """One shipment file with the shape's columns renamed (store, item, date, quantity, unit)
    and the Monday starting the week of `date`."""
    shape = SHAPES[_shape_of(path)]
    raw = _text_csv(data, shape.sep, shape.encoding)
    date = pd.to_datetime(raw[shape.date], format=shape.date_format)
    return pd.DataFrame(
        {
            "store": raw[shape.store],
            "item": raw[shape.item],
            "date": date,
            "week_start": date - pd.to_timedelta(date.dt.day_of_week, unit="D"),
            "quantity": raw[shape.quantity],
            "unit": raw[shape.unit] if shape.unit else "EA",
        }
    )


def _clean_shipments(files: dict[str, bytes], region: Region) -> pd.DataFrame:
    """A region's shipments from every file of its shape, without the dirt: Monday week
    starts and integer units (cases times the pack size), each store × product × week once."""
    pack = _text_csv(files["raw/products/products.csv"]).set_index("product_id")["pack_size"]
    parts = [_raw_shipments(p, d) for p, d in sorted(_shipment_files(files, region).items())]
    assert parts, f"no shipments for {region.id}"
    raw = pd.concat(parts, ignore_index=True).drop(columns="date")
    clean = (
        (raw["store"] != "XX-999")
        & raw["quantity"].str.fullmatch(r"[1-9]\d*")
        & (raw["week_start"] < IMPLAUSIBLE)
    )
    raw = raw[clean].drop_duplicates()  # files sent twice, rows written twice
    per_case = np.where(raw["unit"] == "CS", raw["item"].map(pack).astype(int), 1)
    frame = pd.DataFrame(
        {
            "store_id": raw["store"],
            "product_id": raw["item"],
            "week_start": raw["week_start"],
            "units": raw["quantity"].astype(int) * per_case,
        }
    ).reset_index(drop=True)
    assert not frame.duplicated(KEY).any(), f"{region.id}: one week shipped with two quantities"
    return frame


def _promotions_path(region: Region) -> str:
    return f"raw/promotions/region={region.id}/promotions.csv"


# -- layout and determinism ----------------------------------------------------------------


def test_file_layout(files: dict[str, bytes], regions: list[Region]) -> None:
    assert all(len(data) > 0 for data in files.values())
    assert {p.split("/")[1] for p in files} == FEEDS
    assert {"raw/stores/stores.csv", "raw/products/products.csv"} <= set(files)
    assert {"raw/shoppers/demographics.xlsx", "raw/events/holidays.csv"} <= set(files)
    zips = {z for r in regions for z in r.zip_codes}
    observed = {p for p in files if p.startswith("raw/weather/observations/")}
    assert observed == {f"raw/weather/observations/zip={z}.json" for z in zips}
    assert len([p for p in files if p.startswith("raw/weather/forecasts/")]) == 2
    calendars = {p for p in files if p.startswith("raw/events/calendars/")}
    assert calendars == {f"raw/events/calendars/{r.id}.ics" for r in regions}
    late = pd.date_range(LAST_HISTORY - pd.Timedelta(weeks=LATE_WEEKS - 1), LAST_HISTORY, freq="7D")
    for region in regions:
        assert _promotions_path(region) in files
        assert any(p.startswith(f"raw/returns/region={region.id}/") for p in files)
        names = {_shipment_file(p)["name"] for p in _shipment_files(files, region)}
        weekly = {f"week_{w:%Y-%m-%d}" for w in late}
        # a history export, one file per late week, and one of them sent again, completed
        assert names == {"history", *weekly, f"week_{late[1]:%Y-%m-%d}_resend"}
    # every feed in at least two raw shapes: the two regions use the two distributors
    assert {_region_shape(files, r) for r in regions} == set(SHAPES)


def test_same_seed_gives_identical_bytes(regions: list[Region], files: dict[str, bytes]) -> None:
    again = [(f.path, f.data) for f in sample_files(regions, SPEC)]
    assert again == list(files.items())


def test_different_seed_gives_different_shipments(
    regions: list[Region], files: dict[str, bytes]
) -> None:
    other = {f.path: f.data for f in sample_files(regions, replace(SPEC, seed=8))}
    assert set(other) == set(files)
    for region in regions:
        shipments = _shipment_files(files, region)
        assert all(other[p] != data for p, data in shipments.items())
        # not just shuffled: the shipped quantities themselves differ
        a = _clean_shipments(files, region).sort_values(KEY)
        b = _clean_shipments(other, region).sort_values(KEY)
        assert len(a) != len(b) or not (a["units"].to_numpy() == b["units"].to_numpy()).all()


SUBSET = (3, 1)  # dsw and ncal, out of order


def test_a_subset_of_regions_gives_the_same_reference_rows_and_plans_as_all_regions(
    all_regions: list[Region], every: dict[str, bytes]
) -> None:
    subset = [all_regions[i] for i in SUBSET]
    some = {f.path: f.data for f in sample_files(subset, SPEC)}
    for region in subset:
        assert some[_promotions_path(region)] == every[_promotions_path(region)]
        calendar = f"raw/events/calendars/{region.id}.ics"
        assert some[calendar] == every[calendar]
    assert some["raw/products/products.csv"] == every["raw/products/products.csv"]
    # the stores file holds the rows of the chosen regions, identical to the full file's rows
    some_stores = _text_csv(some["raw/stores/stores.csv"])
    every_stores = _text_csv(every["raw/stores/stores.csv"])
    for region in subset:
        mine = some_stores[some_stores["region"] == region.id].reset_index(drop=True)
        theirs = every_stores[every_stores["region"] == region.id].reset_index(drop=True)
        assert len(mine) > 0
        pd.testing.assert_frame_equal(mine, theirs)
    assert set(some_stores["region"]) == {r.id for r in subset}


def test_a_subset_of_regions_gives_the_same_shipments_as_all_regions(
    all_regions: list[Region], every: dict[str, bytes]
) -> None:
    subset = [all_regions[i] for i in SUBSET]
    some = {f.path: f.data for f in sample_files(subset, SPEC)}
    for region in subset:
        assert _region_shape(some, region) == _region_shape(every, region), region.id
        pd.testing.assert_frame_equal(
            _clean_shipments(some, region).sort_values(KEY, ignore_index=True),
            _clean_shipments(every, region).sort_values(KEY, ignore_index=True),
        )
        assert _shipment_files(some, region) == _shipment_files(every, region), region.id


def test_too_small_a_spec_is_rejected(regions: list[Region]) -> None:
    with pytest.raises(ValueError, match="at least 2 products and 60 weeks"):
        list(sample_files(regions, SampleSpec(products=1, weeks=70)))
    with pytest.raises(ValueError, match="at least 2 products and 60 weeks"):
        list(sample_files(regions, SampleSpec(products=6, weeks=59)))


# -- content -------------------------------------------------------------------------------


def test_store_ids_are_unique_across_regions(
    all_regions: list[Region], every: dict[str, bytes]
) -> None:
    stores = _text_csv(every["raw/stores/stores.csv"])
    assert stores["store_id"].is_unique
    assert set(stores["region"]) == {r.id for r in all_regions}
    assert set(stores["store_format"]) == {"large", "small"}
    assert stores["zip_code"].str.fullmatch(r"\d{5}").all()
    for region in all_regions:
        own = set(stores.loc[stores["region"] == region.id, "store_id"])
        shipped = set(_clean_shipments(every, region)["store_id"])
        assert shipped <= own, f"{region.id} ships to stores of another region"


def test_products_alternate_fast_and_slow(files: dict[str, bytes]) -> None:
    products = _text_csv(files["raw/products/products.csv"])
    assert list(products["product_id"]) == [f"P{i:03d}" for i in range(1, SPEC.products + 1)]
    assert list(products.columns) == [
        "product_id",
        "name",
        "category",
        "pack_size",
        "regular_price",
    ]


def test_slow_movers_ship_in_alternate_weeks_only(
    files: dict[str, bytes], regions: list[Region]
) -> None:
    for region in regions:
        ship = _clean_shipments(files, region)
        slow = ship[ship["product_id"].isin(SLOW)]
        week_no = (slow["week_start"] - pd.Timestamp(SPEC.start)).dt.days // 7
        per_series = slow.assign(week_no=week_no).groupby(["store_id", "product_id"])["week_no"]
        assert len(per_series) > 0
        for key, weeks in per_series:
            assert weeks.nunique() <= SPEC.weeks / 2, key
            assert weeks.nunique() >= 3, key  # slow, not dead
            assert (weeks % 2).nunique() == 1, f"{key} ships in weeks of both parities"


def test_fast_movers_ship_almost_every_week(files: dict[str, bytes], regions: list[Region]) -> None:
    stores = _text_csv(files["raw/stores/stores.csv"])
    for region in regions:
        ship = _clean_shipments(files, region)
        fast = ship[ship["product_id"].isin(FAST)]
        weeks_shipped = fast.groupby(["store_id", "product_id"])["week_start"].nunique()
        n_stores = (stores["region"] == region.id).sum()
        assert len(weeks_shipped) == n_stores * len(FAST)  # every store carries every product
        assert (weeks_shipped >= 0.85 * SPEC.weeks).all(), weeks_shipped.min()
        # and far more units than slow movers
        slow = ship[ship["product_id"].isin(SLOW)]
        assert fast["units"].mean() > 2 * slow["units"].mean()


def test_promoted_weeks_sell_more_than_unpromoted_weeks(
    files: dict[str, bytes], regions: list[Region]
) -> None:
    stores = _text_csv(files["raw/stores/stores.csv"])
    history = pd.date_range(SPEC.start, periods=SPEC.weeks, freq="7D")
    for region in regions:
        ship = _clean_shipments(files, region)
        promo = _text_csv(files[_promotions_path(region)])
        promo["week_start"] = pd.to_datetime(promo["week_start"], format="%Y-%m-%d")
        index = pd.MultiIndex.from_product(
            [stores.loc[stores["region"] == region.id, "store_id"], FAST, history], names=KEY
        )
        units = ship.set_index(KEY)["units"].reindex(index, fill_value=0).reset_index()
        promoted = (
            units.merge(promo[KEY], on=KEY, how="left", indicator=True)["_merge"] == "both"
        ).to_numpy()
        assert promoted.sum() >= 10  # enough promoted weeks to compare
        lift = units.loc[promoted, "units"].mean() / units.loc[~promoted, "units"].mean()
        assert lift > 1.2, f"{region.id}: promoted weeks sell only {lift:.2f}x unpromoted weeks"


def test_promotion_plan_covers_the_coming_weeks(
    files: dict[str, bytes], regions: list[Region]
) -> None:
    for region in regions:
        promo = _text_csv(files[_promotions_path(region)])
        weeks = pd.to_datetime(promo["week_start"], format="%Y-%m-%d")
        assert (weeks.dt.day_of_week == 0).all()
        assert weeks.max() > LAST_HISTORY  # the plan is known ahead
        assert weeks.max() <= LAST_HISTORY + pd.Timedelta(weeks=SPEC.horizon_weeks)
        ship = _clean_shipments(files, region)
        assert ship["week_start"].max() == LAST_HISTORY  # shipments stop at the history


def test_shipments_carry_the_documented_dirt(
    files: dict[str, bytes], regions: list[Region]
) -> None:
    """Each shape's history export: unknown stores, unreadable, sentinel, missing and negative
    quantities, rows written twice, dates in the far future; the late weekly files are clean."""
    for region in regions:
        shape = SHAPES[_region_shape(files, region)]
        for path, data in _shipment_files(files, region).items():
            text = _text_csv(data, shape.sep, shape.encoding)
            assert tuple(text.columns) == shape.columns, path
            raw = _raw_shipments(path, data)
            # the rest is clean: the shape's weekday, whole positive quantities, known units
            assert (raw["date"].dt.day_of_week == shape.weekday).all(), path
            assert raw["unit"].isin(["CS", "EA"]).all(), path
            dirty_quantity = raw["quantity"].isin(DIRTY_QUANTITIES)
            if not path.endswith("_history.csv"):
                assert not dirty_quantity.any() and "XX-999" not in set(raw["store"]), path
                assert (raw["week_start"] <= LAST_HISTORY).all(), path
                assert raw["quantity"].str.fullmatch(r"[1-9]\d*").all(), path
                continue
            assert (raw["store"] == "XX-999").sum() >= 1, path  # unknown store
            for mark in DIRTY_QUANTITIES:
                assert (raw["quantity"] == mark).sum() >= 1, (path, mark)
            assert raw.duplicated(keep=False).sum() >= 2, path  # one row written twice
            assert (raw["week_start"] >= IMPLAUSIBLE).sum() >= 1, path  # a mistyped year
            assert raw.loc[~dirty_quantity, "quantity"].str.fullmatch(r"[1-9]\d*").all(), path


# -- generate into a lake ------------------------------------------------------------------


def _snapshot(lake: Lake, paths: list[str]) -> dict[str, tuple[bytes, int]]:
    return {p: (lake.read_bytes(p), os.stat(lake.full_path(p)).st_mtime_ns) for p in paths}


def test_generate_writes_every_file(
    tmp_path, regions: list[Region], files: dict[str, bytes]
) -> None:
    lake = Lake(str(tmp_path))
    written = generate(lake, regions, SPEC)
    assert {f.path: f.data for f in written} == files
    for path, data in files.items():
        assert lake.read_bytes(path) == data
    assert sorted(lake.list_files("raw")) == sorted(files)


def test_generate_twice_is_a_no_op(tmp_path, regions: list[Region]) -> None:
    lake = Lake(str(tmp_path))
    paths = [f.path for f in generate(lake, regions, SPEC)]
    before = _snapshot(lake, paths)
    generate(lake, regions, SPEC)
    assert _snapshot(lake, paths) == before
    assert sorted(lake.list_files("")) == sorted(paths)  # no temporary files left behind


def test_generate_never_overwrites_different_raw_data(tmp_path, regions: list[Region]) -> None:
    lake = Lake(str(tmp_path))
    paths = [f.path for f in generate(lake, regions, replace(SPEC, seed=1))]
    before = _snapshot(lake, paths)
    feeds = "|".join(sorted(FEEDS))
    with pytest.raises(DataError, match=rf"raw/({feeds})/") as err:
        generate(lake, regions, replace(SPEC, seed=2))
    assert "never overwritten" in str(err.value)
    assert _snapshot(lake, paths) == before


def test_generate_fills_in_missing_files_when_the_rest_agree(
    tmp_path, regions: list[Region], files: dict[str, bytes]
) -> None:
    lake = Lake(str(tmp_path))
    lake.write_bytes("raw/products/products.csv", files["raw/products/products.csv"])
    generate(lake, regions, SPEC)
    assert {p: lake.read_bytes(p) for p in files} == files
