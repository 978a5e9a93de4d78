"""The conditioned outputs of the committed sample lake (tests/data/sample_lake) are pinned byte
for byte: digests of every conditioned CSV, quarantine CSV, data-quality table and manifest
(dataset versions masked, as they hash the code), and of each raw file conditioned alone. The
digests in tests/data/conditioning_digests.json were written by the pandas engine (commit
4234991) before the Arrow engine replaced it, and the Arrow engine gives the same bytes.

An intentional change of the outputs rewrites the digests (say why in the commit):

    .venv/bin/python -m tests.test_conditioning_regression
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from conditioners.context import Context
from conditioners.engine import condition, condition_files
from conditioners.profile import load_profiles, profile_for
from conditioners.table import Conditioned
from demandops.core.errors import DataError
from demandops.core.lake import Lake, frame_to_csv_bytes
from demandops.pipeline.steps import condition_reference, condition_region

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "tests" / "data" / "sample_lake" / "raw"
DIGESTS = ROOT / "tests" / "data" / "conditioning_digests.json"
REGIONS = ["pnw", "ncal"]
AS_OF = pd.Timestamp("2018-07-08")  # the sample's last weekly files lie after it: future_date
VERSION = re.compile(r"\b[0-9a-f]{16}\b")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lake_digests(folder: Path) -> dict[str, list[str]]:
    """Condition the sample lake in `folder`; digests of its outputs by path (versions masked)."""
    shutil.copytree(RAW, folder / "raw")
    lake = Lake(str(folder))
    ref = condition_reference(lake, REGIONS, as_of=AS_OF)
    for region in REGIONS:
        condition_region(lake, region, ref)
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or rel.split("/")[0] not in (
            "conditioned",
            "quarantine",
            "monitoring",
        ):
            continue
        data = path.read_bytes()
        if path.suffix == ".json":
            data = VERSION.sub("<version>", data.decode()).encode()
        found.setdefault(VERSION.sub("*", rel), []).append(_sha(data))
    return {k: sorted(v) for k, v in found.items()}


def file_digests() -> dict[str, str]:
    """Each raw file conditioned alone: digests of its standard CSV and rejects, or its error."""
    profiles = load_profiles(ROOT / "config" / "sources")
    files = {p.relative_to(RAW.parent).as_posix(): p.read_bytes() for p in RAW.rglob("*.*")}
    base = Context(regions=frozenset(["pnw", "ncal", "tx"]), as_of=AS_OF)
    ref = {
        s: condition(files[f"raw/{s}/{s}.csv"], f"raw/{s}/{s}.csv", profiles[s], base).frame
        for s in ("stores", "products")
    }
    ctx = Context(stores=ref["stores"], products=ref["products"], regions=base.regions, as_of=AS_OF)
    found = {}
    for file, data in sorted(files.items()):
        profile = profile_for(file.removeprefix("raw/"), profiles)
        assert profile is not None, file
        try:
            result = condition(data, file, profile, ctx)
        except DataError as exc:
            found[file] = str(exc)
            continue
        found[file] = _sha(frame_to_csv_bytes(result.frame) + frame_to_csv_bytes(result.rejects))
    return found


def test_sample_lake_conditions_to_the_pinned_bytes(tmp_path: Path) -> None:
    pinned = json.loads(DIGESTS.read_text())
    assert lake_digests(tmp_path) == pinned["lake"]


def test_each_file_alone_conditions_to_the_pinned_bytes() -> None:
    pinned = json.loads(DIGESTS.read_text())
    assert file_digests() == pinned["files"]


def test_files_conditioned_together_each_get_what_they_get_alone() -> None:
    profile = load_profiles(ROOT / "config" / "sources")["shipments_distributor_a"]
    names = sorted(p for p in RAW.glob("shipments/region=pnw/dist_a_*.csv"))
    batch = [(f"raw/{p.name}", p.read_bytes()) for p in names]
    batch.insert(1, ("raw/garbage.csv", bytes(range(256)) * 4))
    ctx = Context(as_of=AS_OF)
    together = condition_files(batch, profile, ctx)
    assert isinstance(together[1], DataError) and "raw/garbage.csv" in str(together[1])
    for (file, data), result in zip(batch, together, strict=True):
        if file == "raw/garbage.csv":
            continue
        alone = condition(data, file, profile, ctx)
        assert isinstance(result, Conditioned) and result.rows_in == alone.rows_in
        assert result.table.equals(alone.table) and result.rejects.equals(alone.rejects)
    assert sum(len(r.rejects) for r in together if isinstance(r, Conditioned)) > 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        lake = lake_digests(Path(tmp))
    files = file_digests()
    DIGESTS.write_text(json.dumps({"lake": lake, "files": files}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {DIGESTS}: {len(lake)} lake paths, {len(files)} files")
