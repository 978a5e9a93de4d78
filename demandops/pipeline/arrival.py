"""A raw file arrived in the lake: condition its source, or quarantine it as poison.

`raw/<reference source>/…` (stores, products, shoppers, weather, events) re-conditions the
reference; `raw/<source>/region=<r>/…` (shipments, returns, promotions) re-conditions that
region. A file that cannot be conditioned (unknown source or region, or unreadable: the
conditioning step skips it and lists it in its dataset's manifest) is recorded under
`quarantine/poison/<path>/v=<sha>/` with its reason, once per content; the raw file itself stays
where it is. Any other error is raised, so the trigger retries it.
"""

from __future__ import annotations

from typing import Any

from demandops.core.errors import DataError
from demandops.core.hashing import sha256_bytes
from demandops.core.lake import Dataset, Lake, versioned
from demandops.core.limits import clip
from demandops.core.settings import Settings
from demandops.pipeline import steps

REFERENCE_SOURCES = steps.REFERENCE_SOURCES
REGION_SOURCES = steps.REGION_SOURCES


def condition_arrival(settings: Settings, path: str) -> dict[str, Any]:
    """Condition what the raw file at `path` (lake-relative, `raw/…`) feeds; say what happened."""
    lake = Lake(settings.environment.lake)
    if ".." in path.replace("\\", "/").split("/"):  # nothing is read or written for it
        return {"status": "refused", "path": clip(path), "reason": "the path leaves the lake"}
    try:
        datasets = _condition(settings, lake, path)
    except DataError as exc:
        return quarantine(lake, path, str(exc))
    for dataset in datasets:
        for unreadable in dataset.manifest.get("unreadable", []):
            if unreadable["file"] == path:
                return quarantine(lake, path, f"cannot read {path}: {unreadable['problem']}")
    return {"status": "conditioned", "path": path, "datasets": [d.path for d in datasets]}


def _condition(settings: Settings, lake: Lake, path: str) -> list[Dataset]:
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[0] != "raw":
        raise DataError(f"{path}: not a raw file (expected raw/<source>/…)")
    source = parts[1]
    if source not in REFERENCE_SOURCES + REGION_SOURCES:
        known = ", ".join(REFERENCE_SOURCES + REGION_SOURCES)
        raise DataError(f"{path}: unknown source {source!r}; known: {known}")
    ref = steps.condition_reference(
        lake,
        settings.region_ids(),
        settings.config_dir / "sources",
        limits=settings.pipeline.limits,
    )
    if source in REFERENCE_SOURCES:
        return list(ref.datasets().values())
    region = parts[2].removeprefix("region=")
    if not parts[2].startswith("region=") or region not in settings.region_ids():
        raise DataError(f"{path}: expected raw/{source}/region=<a configured region>/…")
    horizon = settings.pipeline.horizon_weeks
    return list(steps.condition_region(lake, region, ref, horizon).datasets().values())


def quarantine(lake: Lake, path: str, reason: str) -> dict[str, Any]:
    """Record a poison file with its reason, once per content; the raw file is left in place."""
    sha = sha256_bytes(lake.read_bytes(path)) if lake.exists(path) else "missing"
    where = versioned(f"quarantine/poison/{path}", sha[:16])
    if lake.dataset(where) is None:
        manifest = {"version": sha[:16], "source_file": path, "sha256": sha, "reason": reason}
        lake.commit_dataset(where, {"reason.txt": (reason + "\n").encode()}, manifest)
    return {"status": "quarantined", "path": path, "reason": reason, "quarantine": where}
