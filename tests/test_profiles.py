"""Source profiles: the shipped ones load and read every generated raw shape; a broken profile
is a one-line configuration error."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from conditioners.combine import read_standard
from conditioners.context import Context
from conditioners.engine import condition
from conditioners.profile import load_profile, load_profiles, profile_for
from conditioners.schemas import SCHEMAS
from demandops.core.errors import ConfigError
from demandops.core.lake import Lake, frame_to_csv_bytes
from tests.sources import ROOT, profiles

FEEDS = ("shipments", "weather", "shoppers", "returns", "events")


def test_every_feed_has_at_least_two_raw_shapes() -> None:
    shapes = Counter(p.source for p in profiles().values())
    assert all(shapes[feed] >= 2 for feed in FEEDS), shapes
    formats = {p.format for p in profiles().values()}
    assert formats == {"csv", "json", "xlsx", "ics"}


def test_generated_raw_shapes_round_trip(small_lake_template: Path) -> None:
    """Every generated file is read by exactly one profile and conditions into its schema;
    every shipped profile reads some generated file; the standard CSV reads back the same."""
    lake = Lake(str(small_lake_template))
    raw = lake.list_files("raw")
    regions = frozenset({"pnw", "tx"})
    used = set()
    ref = {}
    for source in ("stores", "products"):
        [file] = [f for f in raw if f.startswith(f"raw/{source}/")]
        profile = profile_for(file[4:], profiles())
        assert profile is not None, file
        ref[source] = condition(
            lake.read_bytes(file), file, profile, Context(regions=regions)
        ).frame
    for file in raw:
        profile = profile_for(file.removeprefix("raw/"), profiles())
        assert profile is not None, file
        used.add(profile.name)
        region = file.split("region=")[1].split("/")[0] if "region=" in file else None
        ctx = Context(
            stores=ref["stores"], products=ref["products"], regions=regions, region=region,
            as_of=pd.Timestamp("2026-01-01"),
        )  # fmt: skip
        result = condition(lake.read_bytes(file), file, profile, ctx)
        assert result.rows_in == len(result.frame) + len(result.rejects), file
        assert len(result.rejects) <= max(12, 0.02 * result.rows_in), (file, result.rejects)
        schema = SCHEMAS[profile.source]
        back = read_standard(frame_to_csv_bytes(result.frame), schema)
        pd.testing.assert_frame_equal(back, result.frame, check_exact=False, rtol=1e-5)
    assert used == set(profiles()), set(profiles()) - used


def test_profiles_are_versioned_by_content() -> None:
    p = profiles()["shipments_distributor_a"]
    changed = p.model_copy(update={"delimiter": ";"})
    assert p.version != changed.version and len(p.version) == 16


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("name: x\nsource: nope\nfiles: [a]\ncolumns: {}\n", "", "unknown source 'nope'"),
        ("name: x\nsource: returns\nfiles: [a]\ncolumns: {}\n", "", "are not mapped"),
        (
            "name: x\nsource: shoppers\nfiles: [a]\ncolumns: {store_id: {}}\n",
            "columns.store_id",
            "exactly one of `from`",
        ),
        ("name: x\nsource: shoppers\nfiles: []\ncolumns: {}\n", "files", "at least 1"),
        ("name: x\nsource: shoppers\nfiles: [a]\nformat: pdf\ncolumns: {}\n", "format", ""),
        ("- a list\n", "", "expected a mapping"),
        ("name: [unclosed\n", "", "cannot read the profile"),
    ],
)
def test_a_broken_profile_names_its_file_and_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = tmp_path / "feed.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert str(path) in str(info.value) and key in str(info.value) and problem in str(info.value)


def test_profile_folders_must_hold_unique_profiles(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such profile folder"):
        load_profiles(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"no \*.yaml source profiles"):
        load_profiles(tmp_path)
    source = ROOT / "config" / "sources" / "stores.yaml"
    (tmp_path / "a.yaml").write_text(source.read_text())
    (tmp_path / "b.yaml").write_text(source.read_text())
    with pytest.raises(ConfigError, match="duplicate profile name 'stores'"):
        load_profiles(tmp_path)


def test_a_file_read_by_two_profiles_is_a_configuration_error(tmp_path: Path) -> None:
    source = ROOT / "config" / "sources" / "stores.yaml"
    (tmp_path / "a.yaml").write_text(source.read_text())
    (tmp_path / "b.yaml").write_text(source.read_text().replace("name: stores", "name: other"))
    found = load_profiles(tmp_path)
    with pytest.raises(ConfigError, match=r"stores/s\.csv matches profiles stores, other"):
        profile_for("stores/s.csv", found)
    assert profile_for("weather/x.json", found) is None
