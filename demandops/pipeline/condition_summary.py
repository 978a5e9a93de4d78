"""`demandops condition`: condition the raw feeds and summarize what happened to every row."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from demandops.core.hashing import digest
from demandops.core.lake import Dataset, Lake
from demandops.core.lock import command_lock
from demandops.core.settings import Settings
from demandops.pipeline import steps
from demandops.pipeline.batch import run_batch

CONDITION_SOURCES = (*steps.REFERENCE_SOURCES, *steps.REGION_SOURCES)


def condition_summary(
    settings: Settings,
    region_ids: list[str],
    profiles: Path,
    source: str | None = None,
    progress: bool = False,
    lock_wait: float | None = None,
) -> dict[str, Any]:
    """Condition every source (or only `source`) and return per dataset its row counts and
    version, the files that could not be read, and the failing data-quality checks. It holds
    the lake's batch lock (waiting `lock_wait` s, default the environment's lock_wait_seconds)."""
    lake = Lake(settings.environment.lake)
    if source is None:
        report = run_batch(
            settings, region_ids, "condition", progress, profiles_dir=profiles, lock_wait=lock_wait
        )
        paths = list(report["reference"].values()) + [
            path
            for r in report["regions"].values()
            for name, path in r["paths"].items()
            if name in steps.REGION_SOURCES
        ]
        datasets = [d for d in (lake.dataset(p) for p in paths) if d is not None]
        quality, version = report["data_quality"], report["dataset_version"]
    else:
        with command_lock(settings.environment, "condition", lock_wait):
            datasets = _condition_source(settings, lake, region_ids, profiles, source)
        quality, version = [], digest([d.version for d in datasets])
    return {
        "dataset_version": version,
        "sources": [_row(d) for d in datasets],
        "unreadable": [u for d in datasets for u in d.manifest.get("unreadable", [])],
        "warnings": sorted({w for d in datasets for w in d.manifest.get("warnings", [])}),
        "data_quality": quality,
    }


def _condition_source(
    settings: Settings, lake: Lake, region_ids: list[str], profiles: Path, source: str
) -> list[Dataset]:
    """The datasets of one source: the reference one, or one per region."""
    limits = settings.pipeline.limits
    ref = steps.condition_reference(
        lake, settings.region_ids(), profiles, only=source, limits=limits
    )
    datasets = [d for n, d in ref.datasets().items() if n == source]
    if source in steps.REGION_SOURCES:
        horizon = settings.pipeline.horizon_weeks
        for region in region_ids:
            inputs = steps.condition_region(lake, region, ref, horizon, only=source)
            datasets.append(getattr(inputs, source))
    return datasets


def _row(dataset: Dataset) -> dict[str, Any]:
    m = dataset.manifest
    return {
        "source": m["source"],
        "path": dataset.path,
        "version": m["version"],
        "files": len(m["inputs"]),
        "rows_in": m["rows_in"],
        "rows_out": m["rows_out"],
        "rows_rejected": m["rows_rejected"],
        "rows_aggregated": m.get("rows_aggregated", 0),
        "rejected_by_reason": m["rejected_by_reason"],
        "absent": bool(m.get("absent", False)),
    }


def print_summary(summary: dict[str, Any]) -> None:
    print(
        f"{'dataset':<34}{'files':>6}{'rows in':>10}{'rows out':>10}{'aggregated':>11}"
        f"{'rejected':>10}  version"
    )
    for s in summary["sources"]:
        name = s["path"].removeprefix("conditioned/").rsplit("/v=", 1)[0]
        version = "absent (no profile, no raw files)" if s["absent"] else s["version"]
        print(
            f"{name:<34}{s['files']:>6}{s['rows_in']:>10}{s['rows_out']:>10}"
            f"{s['rows_aggregated']:>11}{s['rows_rejected']:>10}  {version}"
        )
    print(f"dataset version {summary['dataset_version']}")
    for q in summary["data_quality"]:
        print(
            f"data quality {q['status']}: {q['region']} {q['check']} ({q['failing']}) {q['detail']}"
        )
    for u in summary["unreadable"]:
        print(f"unreadable: {u['file']}: {u['problem']}")
    for w in summary["warnings"]:
        print(f"WARNING: {w}", file=sys.stderr)
