"""Raw files that point elsewhere: symbolic links in raw/ (to a file outside the lake, broken,
or a linked folder) are listed as unreadable and never followed, and paths that climb out of
the lake are refused; the other files are conditioned as usual."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conditioners.context import Context
from demandops.core.errors import DataError
from demandops.core.lake import Lake
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
