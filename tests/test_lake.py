"""The lake: the commit protocol on a local folder and on abfs:// against a real Azurite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from demandops.core.errors import DataError
from demandops.core.lake import MANIFEST, Lake, frame_to_csv_bytes, versioned


def _exercise_commit_protocol(lake: Lake) -> None:
    path = versioned("conditioned/demo", "abc123")
    assert lake.dataset(path) is None
    # files without a manifest (a crash before the commit) are invisible to readers
    lake.write_bytes(f"{path}/part.csv", b"a,b\n1,2\n")
    assert lake.exists(f"{path}/part.csv")
    assert lake.dataset(path) is None

    dataset = lake.commit_dataset(path, {"part.csv": b"a,b\n1,2\n"}, {"version": "abc123"})
    assert dataset.version == "abc123"
    assert dataset.manifest["files"]["part.csv"]["bytes"] == 8
    again = lake.dataset(path)
    assert again is not None and again.manifest == dataset.manifest
    assert lake.read_csv(dataset.file("part.csv")).to_dict("records") == [{"a": 1, "b": 2}]
    assert lake.list_files("conditioned/demo") == [f"{path}/{MANIFEST}", f"{path}/part.csv"]
    assert lake.list_dirs("conditioned/demo") == ["v=abc123"]
    assert lake.list_files("conditioned/nothing") == []

    with pytest.raises(DataError, match="not found in the lake"):
        lake.read_bytes("raw/missing.csv")
    with pytest.raises(ValueError, match="outside the lake's zones"):
        lake.write_bytes("elsewhere/file.txt", b"x")


def test_local_lake_commit_protocol(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    assert lake.is_local
    _exercise_commit_protocol(lake)
    assert lake.location("raw") == f"{tmp_path / 'lake'}/raw"


def test_local_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    lake.write_bytes("raw/a/b.csv", b"one")
    lake.write_bytes("raw/a/b.csv", b"two")
    assert lake.read_bytes("raw/a/b.csv") == b"two"
    assert [p.name for p in (tmp_path / "raw" / "a").iterdir()] == ["b.csv"]


def test_abfs_lake_on_azurite(azure_lake_url: str) -> None:
    lake = Lake(azure_lake_url)
    assert not lake.is_local
    _exercise_commit_protocol(lake)
    assert lake.location("raw").startswith("abfs://")


def test_standard_csv_is_stable() -> None:
    frame = pd.DataFrame({"week_start": pd.to_datetime(["2020-01-06"]), "units": [3], "x": [1 / 3]})
    assert frame_to_csv_bytes(frame) == b"week_start,units,x\n2020-01-06,3,0.333333\n"
