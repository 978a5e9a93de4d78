"""Raw files that point elsewhere: symbolic links in raw/ (to a file outside the lake, broken,
or a linked folder) are listed as unreadable and never followed, and paths that climb out of
the lake are refused; the other files are conditioned as usual."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conditioners.context import Context
from demandops.cli import main
from demandops.core.errors import DataError
from demandops.core.lake import Lake
from demandops.core.settings import Settings
from demandops.pipeline.steps.conditioning import condition_source
from tests.sources import profiles

HEADER = "store_id,region,zip_code,store_format,sqft\n"


def test_symlinks_in_raw_are_unreadable_and_the_rest_goes_on(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.write_bytes("raw/stores/stores.csv", f"{HEADER}S1,pnw,98101,large,40000\n".encode())
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "stores.csv").write_text(f"{HEADER}X9,pnw,98101,large,1\n")
    raw = tmp_path / "lake" / "raw" / "stores"
    os.symlink(outside / "stores.csv", raw / "outside.csv")  # a file outside the lake
    os.symlink(tmp_path / "gone.csv", raw / "broken.csv")  # a link to nothing
    os.symlink(raw / "stores.csv", raw / "again.csv")  # even a link inside the lake
    os.symlink(outside, raw / "linked")  # a folder outside the lake
    os.symlink("linked/stores.csv", raw / "via.csv")

    dataset = condition_source(lake, "stores", "stores", profiles(), Context(), {})

    assert list(lake.read_csv(dataset.file("stores.csv"))["store_id"]) == ["S1"]
    problems = {u["file"]: u["problem"] for u in dataset.manifest["unreadable"]}
    links = ["again.csv", "broken.csv", "linked", "outside.csv", "via.csv"]
    assert sorted(problems) == [f"raw/stores/{n}" for n in links]
    for name in links:
        assert problems[f"raw/stores/{name}"].startswith(f"cannot read raw/stores/{name}: a sym")
    assert "X9" not in lake.read_bytes(dataset.file("stores.csv")).decode()


@pytest.mark.parametrize("path", ["raw/../../etc/passwd", "../outside", "raw/a/../../../x"])
def test_paths_that_leave_the_lake_are_refused(tmp_path: Path, path: str) -> None:
    lake = Lake(str(tmp_path / "lake"))
    with pytest.raises(DataError, match="the path leaves the lake"):
        lake.read_bytes(path)
    with pytest.raises(DataError, match="the path leaves the lake"):
        lake.write_bytes(path if path.startswith("raw/") else f"raw/{path}", b"")
    assert not (tmp_path / "outside").exists() and not (tmp_path / "x").exists()


def test_a_batch_with_hostile_files_goes_on_and_says_what_it_refused(
    tiny_raw_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hostile files of the issue dropped into a lake: `demandops condition` conditions
    everything else, quarantines the bad rows with their reasons, lists the unreadable files,
    and exits 1 with one line."""
    root = tmp_path / "lake"
    shutil.copytree(tiny_raw_lake, root)
    raw = root / "raw"
    deep = b'{"zip": "98101", "daily": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    (raw / "weather" / "observations" / "zip=99999.json").write_bytes(deep)
    shipments = raw / "shipments" / "region=pnw"
    (shipments / "dist_a_week_2099-01-05.csv").write_text(
        "Store,Item,Week Ending,Units\nPNW-001,P001,12/31/9999,5\nPNW-001,P002,02/04/2018,1e18\n"
    )
    secret = tmp_path / "secret.csv"
    secret.write_text("Store,Item,Week Ending,Units\nPNW-001,P001,02/04/2018,7\n")
    os.symlink(secret, shipments / "dist_a_week_link.csv")
    os.symlink(tmp_path / "nothing.csv", shipments / "dist_a_week_broken.csv")
    before = {p: p.read_bytes() for p in raw.rglob("*") if p.is_file() and not p.is_symlink()}

    code = main(["condition", "--lake", str(root), "--region", "pnw", "--quiet", "--json"])

    assert code == 1
    err = capsys.readouterr()
    assert err.err.count("\n") == 1 and "3 raw file(s) could not be read" in err.err
    summary = json.loads(err.out)
    unreadable = {u["file"]: u["problem"] for u in summary["unreadable"]}
    assert sorted(unreadable) == [
        "raw/shipments/region=pnw/dist_a_week_broken.csv",
        "raw/shipments/region=pnw/dist_a_week_link.csv",
        "raw/weather/observations/zip=99999.json",
    ]
    assert "nested 100001 deep" in unreadable["raw/weather/observations/zip=99999.json"]
    lake = Lake(str(root))
    [rejects] = [f for f in lake.list_files("quarantine/shipments/region=pnw") if "rejects" in f]
    found = lake.read_csv(rejects, dtype=str, keep_default_na=False)
    mine = found[found["source_file"].str.endswith("2099-01-05.csv")]
    assert sorted(mine["reason"]) == ["bad_date", "out_of_range"]
    [data] = [f for f in lake.list_files("conditioned/shipments/region=pnw") if f.endswith(".csv")]
    assert lake.read_csv(data)["units"].max() < 1e6  # and the region was conditioned
    assert {p: p.read_bytes() for p in before} == before  # raw files unchanged


def test_an_arrival_outside_the_lake_is_refused_and_writes_nothing(settings: Settings) -> None:
    from demandops.pipeline.arrival import condition_arrival

    outcome = condition_arrival(settings, "raw/shipments/../../../../etc/passwd")
    assert outcome["status"] == "refused" and outcome["reason"] == "the path leaves the lake"
    assert not Path(settings.environment.lake).exists()
