"""The sample raw feeds: deterministic, region-independent, realistic and a little dirty."""

from __future__ import annotations

import io
import os
from dataclasses import replace

import pandas as pd
import pytest

from demandops.errors import DataError
from demandops.lake import Lake
from demandops.sample_data import SampleSpec, generate, sample_files
from demandops.settings import DEFAULT_CONFIG_DIR, Region, load_settings

SPEC = SampleSpec(products=6, weeks=70, store_scale=0.5)
FAST = ["P001", "P003", "P005"]  # even-indexed products (0, 2, 4) are fast movers
SLOW = ["P002", "P004", "P006"]  # odd-indexed products (1, 3, 5) are slow movers


@pytest.fixture(scope="module")
def all_regions() -> list[Region]:
    return load_settings(DEFAULT_CONFIG_DIR, env="dev").regions


@pytest.fixture(scope="module")
def regions(all_regions: list[Region]) -> list[Region]:
    return all_regions[:2]


@pytest.fixture(scope="module")
def files(regions: list[Region]) -> dict[str, bytes]:
    return {f.path: f.data for f in sample_files(regions, SPEC)}


def _text_csv(data: bytes) -> pd.DataFrame:
    """A raw feed exactly as written: every value is text, nothing is read as missing."""
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def _clean_shipments(data: bytes) -> pd.DataFrame:
    """Shipments without the dirt, with Monday week starts and integer units."""
    raw = _text_csv(data)
    raw = raw[(raw["Store"] != "XX-999") & (raw["Units"] != "n/a")].drop_duplicates()
    week_ending = pd.to_datetime(raw["Week Ending"], format="%m/%d/%Y")
    return pd.DataFrame(
        {
            "store_id": raw["Store"],
            "product_id": raw["Item"],
            "week_start": week_ending - pd.Timedelta(days=6),
            "units": raw["Units"].astype(int),
        }
    )


def _shipments_path(region: Region) -> str:
    return f"raw/shipments/region={region.id}/shipments.csv"


def _promotions_path(region: Region) -> str:
    return f"raw/promotions/region={region.id}/promotions.csv"


# -- determinism ---------------------------------------------------------------------------


def test_file_layout(files: dict[str, bytes], regions: list[Region]) -> None:
    expected = {"raw/stores/stores.csv", "raw/products/products.csv"}
    for region in regions:
        expected |= {_shipments_path(region), _promotions_path(region)}
    assert set(files) == expected
    assert all(len(data) > 0 for data in files.values())


def test_same_seed_gives_identical_bytes(regions: list[Region], files: dict[str, bytes]) -> None:
    again = [(f.path, f.data) for f in sample_files(regions, SPEC)]
    assert again == list(files.items())


def test_different_seed_gives_different_shipments(
    regions: list[Region], files: dict[str, bytes]
) -> None:
    other = {f.path: f.data for f in sample_files(regions, replace(SPEC, seed=8))}
    assert set(other) == set(files)
    for region in regions:
        path = _shipments_path(region)
        assert other[path] != files[path]
        # not just shuffled: the shipped quantities themselves differ
        a = _clean_shipments(files[path]).sort_values(["store_id", "product_id", "week_start"])
        b = _clean_shipments(other[path]).sort_values(["store_id", "product_id", "week_start"])
        assert len(a) != len(b) or not (a["units"].to_numpy() == b["units"].to_numpy()).all()


def test_a_subset_of_regions_gives_the_same_files_as_all_regions(
    all_regions: list[Region],
) -> None:
    every = {f.path: f.data for f in sample_files(all_regions, SPEC)}
    subset = [all_regions[3], all_regions[1]]
    some = {f.path: f.data for f in sample_files(subset, SPEC)}
    for region in subset:
        assert some[_shipments_path(region)] == every[_shipments_path(region)]
        assert some[_promotions_path(region)] == every[_promotions_path(region)]
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


def test_too_small_a_spec_is_rejected(regions: list[Region]) -> None:
    with pytest.raises(ValueError, match="at least 2 products and 60 weeks"):
        list(sample_files(regions, SampleSpec(products=1, weeks=70)))
    with pytest.raises(ValueError, match="at least 2 products and 60 weeks"):
        list(sample_files(regions, SampleSpec(products=6, weeks=59)))


# -- content -------------------------------------------------------------------------------


def test_store_ids_are_unique_across_regions(all_regions: list[Region]) -> None:
    every = {f.path: f.data for f in sample_files(all_regions, SPEC)}
    stores = _text_csv(every["raw/stores/stores.csv"])
    assert stores["store_id"].is_unique
    assert set(stores["region"]) == {r.id for r in all_regions}
    assert set(stores["store_format"]) == {"large", "small"}
    assert stores["zip_code"].str.fullmatch(r"\d{5}").all()
    for region in all_regions:
        own = set(stores.loc[stores["region"] == region.id, "store_id"])
        shipped = set(_clean_shipments(every[_shipments_path(region)])["store_id"])
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
        ship = _clean_shipments(files[_shipments_path(region)])
        slow = ship[ship["product_id"].isin(SLOW)]
        week_no = (slow["week_start"] - pd.Timestamp(SPEC.start)).dt.days // 7
        per_series = slow.assign(week_no=week_no).groupby(["store_id", "product_id"])["week_no"]
        assert len(per_series) > 0
        for key, weeks in per_series:
            assert weeks.nunique() <= SPEC.weeks / 2, key
            assert weeks.nunique() >= 3, key  # slow, not dead
            assert (weeks % 2).nunique() == 1, f"{key} ships in weeks of both parities"


def test_fast_movers_ship_almost_every_week(files: dict[str, bytes], regions: list[Region]) -> None:
    for region in regions:
        ship = _clean_shipments(files[_shipments_path(region)])
        fast = ship[ship["product_id"].isin(FAST)]
        weeks_shipped = fast.groupby(["store_id", "product_id"])["week_start"].nunique()
        stores = _text_csv(files["raw/stores/stores.csv"])
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
        ship = _clean_shipments(files[_shipments_path(region)])
        promo = _text_csv(files[_promotions_path(region)])
        promo["week_start"] = pd.to_datetime(promo["week_start"], format="%Y-%m-%d")
        index = pd.MultiIndex.from_product(
            [stores.loc[stores["region"] == region.id, "store_id"], FAST, history],
            names=["store_id", "product_id", "week_start"],
        )
        units = (
            ship.set_index(["store_id", "product_id", "week_start"])["units"]
            .reindex(index, fill_value=0)
            .reset_index()
        )
        promoted = (
            units.merge(
                promo[["store_id", "product_id", "week_start"]],
                on=["store_id", "product_id", "week_start"],
                how="left",
                indicator=True,
            )["_merge"]
            == "both"
        ).to_numpy()
        assert promoted.sum() >= 10  # enough promoted weeks to compare
        lift = units.loc[promoted, "units"].mean() / units.loc[~promoted, "units"].mean()
        assert lift > 1.2, f"{region.id}: promoted weeks sell only {lift:.2f}x unpromoted weeks"


def test_promotion_plan_covers_the_coming_weeks(
    files: dict[str, bytes], regions: list[Region]
) -> None:
    last_history = pd.Timestamp(SPEC.start) + pd.Timedelta(weeks=SPEC.weeks - 1)
    for region in regions:
        promo = _text_csv(files[_promotions_path(region)])
        weeks = pd.to_datetime(promo["week_start"], format="%Y-%m-%d")
        assert (weeks.dt.day_of_week == 0).all()
        assert weeks.max() > last_history  # the plan is known ahead
        assert weeks.max() <= last_history + pd.Timedelta(weeks=SPEC.horizon_weeks)
        ship = _clean_shipments(files[_shipments_path(region)])
        assert ship["week_start"].max() == last_history  # shipments stop at the history


def test_shipments_carry_the_documented_dirt(
    files: dict[str, bytes], regions: list[Region]
) -> None:
    for region in regions:
        raw = _text_csv(files[_shipments_path(region)])
        assert list(raw.columns) == ["Store", "Item", "Week Ending", "Units"]
        assert (raw["Store"] == "XX-999").sum() >= 1
        assert (raw["Units"] == "n/a").sum() >= 1
        assert raw.duplicated(keep=False).sum() >= 2  # at least one row written twice
        # the rest is clean: M/D/Y Sundays and whole, positive unit counts
        ending = pd.to_datetime(raw["Week Ending"], format="%m/%d/%Y")
        assert (ending.dt.day_of_week == 6).all()
        readable = raw.loc[raw["Units"] != "n/a", "Units"]
        assert readable.str.fullmatch(r"[1-9]\d*").all()


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
    with pytest.raises(DataError, match=r"raw/(stores|products|shipments|promotions)/") as err:
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
