"""Conditioning steps: raw files to conditioned feeds, then the region's data-quality checks.

raw/<source>/ (profiles)  -> conditioned/{stores,products,shoppers,weather,events}/v=<h>/
raw/*/region=<r>/         -> conditioned/{shipments,returns,promotions}/region=<r>/v=<h>/
                             (+ quarantine/, each raw file cached in conditioned/_parts/)
conditioned               -> monitoring/data_quality/region=<r>/v=<h>/checks.csv
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from conditioners.combine import combine_parts, read_standard
from conditioners.context import Context
from conditioners.engine import condition_files
from conditioners.profile import Profile, load_profiles, profile_for
from conditioners.schemas import SCHEMAS
from conditioners.table import Conditioned
from demandops.core import telemetry
from demandops.core.errors import DataError
from demandops.core.hashing import code_version, digest, sha256_bytes
from demandops.core.lake import Dataset, Lake, commit_or_reuse, frame_to_csv_bytes, versioned
from demandops.core.limits import InputLimits
from demandops.core.settings import DEFAULT_CONFIG_DIR
from demandops.monitoring.quality import cross_source_checks
from demandops.pipeline.steps import feeds


@dataclass(frozen=True)
class Reference:
    """The conditioned feeds every region needs, and the profiles that read the raw files."""

    stores: Dataset
    products: Dataset
    shoppers: Dataset
    weather: Dataset
    events: Dataset
    profiles: dict[str, Profile]
    as_of: str  # actuals dated after this day are quarantined as `future_date`
    limits: InputLimits = field(default_factory=InputLimits)  # what a raw file may hold

    def datasets(self) -> dict[str, Dataset]:
        return {n: getattr(self, n) for n in REFERENCE_SOURCES}


@dataclass(frozen=True)
class RegionInputs:
    """One region's conditioned weekly feeds and its data-quality results."""

    shipments: Dataset
    returns: Dataset
    promotions: Dataset
    quality: Dataset

    def datasets(self) -> dict[str, Dataset]:
        return {n: getattr(self, n) for n in (*REGION_SOURCES, "quality")}


REFERENCE_SOURCES = ("stores", "products", "shoppers", "weather", "events")
REGION_SOURCES = ("shipments", "returns", "promotions")
PASS_BYTES = 256 * 2**20  # raw bytes of one profile conditioned in one pass, at most


def _raw_or_refusal(lake: Lake, file: str) -> bytes:
    refused = lake.refusal(file)
    return refused.encode() if refused is not None else lake.read_bytes(file)


def condition_source(
    lake: Lake, source: str, prefix: str, profiles: dict[str, Profile], ctx: Context, key: object
) -> Dataset:
    """Condition every raw file below raw/<prefix>/ and combine them into one dataset.

    Each file is conditioned once per (file hash, profile, code, context) into a cached part,
    so a new weekly file conditions only itself. A file that cannot be read, or that no profile
    reads, is skipped and listed under `unreadable` in the manifest; it stays in raw/.
    """
    with telemetry.step("condition_source", source=source, region=ctx.region) as span:
        dataset = _condition_source(lake, source, prefix, profiles, ctx, key)
        m = dataset.manifest
        span.set(rows=m["rows_out"], rows_in=m["rows_in"], rows_rejected=m["rows_rejected"])
        span.set(unreadable=len(m["unreadable"]), version=dataset.version)
    return dataset


def _condition_source(
    lake: Lake, source: str, prefix: str, profiles: dict[str, Profile], ctx: Context, key: object
) -> Dataset:
    files = feeds.source_files(lake, source, prefix, profiles)
    if not files and not feeds.configured(source, profiles):
        return feeds.absent_dataset(lake, source, prefix)
    if not files:
        raise feeds.no_raw_data(lake, prefix)
    inputs = {f: sha256_bytes(_raw_or_refusal(lake, f)) for f in files}
    parts: list[Dataset] = []
    unreadable: list[dict[str, str]] = []
    for file, part in _parts(lake, source, inputs, profiles, ctx, key).items():
        sha = inputs[file]
        if isinstance(part, str):
            unreadable.append({"file": file, "sha256": sha, "problem": part})
        else:
            parts.append(part)
    version = digest(
        {"parts": [p.version for p in parts], "unreadable": unreadable, "code": code_version()}
    )

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        combined = combine_parts(
            [(p.manifest["file"], _read_part(lake, p, source)) for p in parts], source
        )
        rejects = pd.concat(
            [_read_rejects(lake, p) for p in parts] + [combined.rejects], ignore_index=True
        )
        booked = [(p.manifest["file"], p) for p in parts if "returns_booked" in p.manifest]
        outputs = {f"{source}.csv": frame_to_csv_bytes(combined.frame)}
        if booked:
            returned = [(f, _read_part(lake, p, "returns", "returns.csv")) for f, p in booked]
            frame = combine_parts(returned, "returns").frame
            outputs[feeds.BOOKED_RETURNS] = frame_to_csv_bytes(frame)
        manifest: dict[str, object] = {"source": source, "version": version}
        manifest |= {
            "rows_in": sum(int(p.manifest["rows_in"]) for p in parts),
            "rows_out": len(combined.frame),
            "rows_rejected": len(rejects),
            "rejected_by_reason": rejects["reason"].value_counts().sort_index().to_dict(),
            "inputs": inputs,
            "profiles": {
                p.manifest["file"]: {
                    "name": p.manifest["profile"],
                    "version": p.manifest["profile_version"],
                }
                for p in parts
            },
            "parts": {p.manifest["file"]: p.version for p in parts},
            "unreadable": unreadable,
            "context": key,
            "code_version": code_version(),
        }
        manifest |= feeds.dataset_extras(parts)
        lake.commit_dataset(
            versioned(f"quarantine/{prefix}", version),
            {"rejects.csv": frame_to_csv_bytes(rejects)},
            manifest,
        )
        return outputs, manifest

    return commit_or_reuse(lake, versioned(f"conditioned/{prefix}", version), build)


def _parts(
    lake: Lake,
    source: str,
    inputs: dict[str, str],
    profiles: dict[str, Profile],
    ctx: Context,
    key: object,
) -> dict[str, Dataset | str]:
    """The cached conditioned part of every raw file (file -> sha256), or the problem that stops
    reading it. The files not cached yet are conditioned in one pass per profile."""
    found: dict[str, Dataset | str] = {}
    todo: dict[str, list[tuple[str, str]]] = {}  # profile -> (file, part version)
    for file, sha in inputs.items():
        profile = profile_for(file.removeprefix("raw/"), profiles, source)
        problem = lake.refusal(file)  # a symbolic link: listed as unreadable, never followed
        if problem is None and profile is None:
            problem = f"no {source} profile in the source profiles reads {file}"
        if problem is not None or profile is None:
            found[file] = problem or ""
            continue
        version = digest(
            {"sha256": sha, "profile": profile.version, "context": key, "code": code_version()}
        )
        existing = lake.dataset(versioned(f"conditioned/_parts/{source}", version))
        if existing is not None:
            found[file] = existing
        else:
            todo.setdefault(profile.name, []).append((file, version))
    for name, files in todo.items():
        profile = profiles[name]
        for batch in _passes(lake, files):
            results = condition_files([(f, data) for f, _, data in batch], profile, ctx)
            for (file, version, _), result in zip(batch, results, strict=True):
                found[file] = (
                    str(result)
                    if isinstance(result, DataError)
                    else _commit_part(lake, source, file, inputs[file], version, profile, result)
                )
    return {f: found[f] for f in inputs}


def _passes(lake: Lake, files: list[tuple[str, str]]) -> Iterator[list[tuple[str, str, bytes]]]:
    """(file, part version, raw bytes) in passes of at most PASS_BYTES of raw data (or one
    file), so that memory stays bounded and parts are committed as they are made."""
    batch: list[tuple[str, str, bytes]] = []
    size = 0
    for file, version in files:
        data = lake.read_bytes(file)
        if batch and size + len(data) > PASS_BYTES:
            yield batch
            batch, size = [], 0
        batch.append((file, version, data))
        size += len(data)
    if batch:
        yield batch


def _commit_part(
    lake: Lake,
    source: str,
    file: str,
    sha: str,
    version: str,
    profile: Profile,
    result: Conditioned,
) -> Dataset:
    files = {
        "part.csv": frame_to_csv_bytes(result.frame),
        "rejects.csv": frame_to_csv_bytes(result.rejects.assign(source_file=file)),
    }
    if result.returns is not None:
        returned = SCHEMAS["returns"].to_frame(result.returns)
        files["returns.csv"] = frame_to_csv_bytes(returned)
    manifest = {
        "version": version,
        "file": file,
        "sha256": sha,
        "profile": profile.name,
        "profile_version": profile.version,
        "rows_in": result.rows_in,
        "rows_out": len(result.frame),
        "rows_rejected": len(result.rejects),
    }
    manifest |= feeds.part_extras(result, profile, file)
    return lake.commit_dataset(versioned(f"conditioned/_parts/{source}", version), files, manifest)


def _read_part(lake: Lake, part: Dataset, source: str, name: str = "part.csv") -> pd.DataFrame:
    return read_standard(lake.read_bytes(part.file(name)), SCHEMAS[source])


def _read_rejects(lake: Lake, part: Dataset) -> pd.DataFrame:
    return lake.read_csv(part.file("rejects.csv"), dtype=str, keep_default_na=False)


def read_table(lake: Lake, dataset: Dataset, name: str) -> pd.DataFrame:
    """A conditioned table, typed by its schema."""
    schema = SCHEMAS[name.removesuffix(".csv")]
    return read_standard(lake.read_bytes(dataset.file(name)), schema)


def _known(lake: Lake, dataset: Dataset, name: str) -> pd.DataFrame | None:
    """A reference table rows are checked against; None (no check) if the feed is absent."""
    return None if feeds.is_absent(dataset) else read_table(lake, dataset, name)


def _context_key(ref: Reference, **extra: object) -> dict[str, object]:
    limits = ref.limits.model_dump(mode="json")
    return {
        "stores": ref.stores.version,
        "products": ref.products.version,
        "limits": limits,
        **extra,
    }


def as_of_today() -> pd.Timestamp:
    """The last day actuals may carry: the Sunday ending the current week (UTC)."""
    today = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
    return today + pd.Timedelta(days=6 - today.day_of_week)


def condition_reference(
    lake: Lake,
    region_ids: list[str],
    profiles_dir: Path | None = None,
    as_of: pd.Timestamp | None = None,
    only: str | None = None,
    limits: InputLimits | None = None,
) -> Reference:
    """Condition store attributes, products, shoppers, weather and events.

    `only` conditions just that reference source (and stores and products, which every other
    source is checked against); the others are looked up, and must have been conditioned.
    """
    profiles = load_profiles(profiles_dir or DEFAULT_CONFIG_DIR / "sources")
    day = as_of or as_of_today()
    regions = frozenset(region_ids)
    limits = limits or InputLimits()
    key: dict[str, object] = {"regions": sorted(regions), "as_of": day.date().isoformat()}
    key["limits"] = limits.model_dump(mode="json")
    base = Context(regions=regions, as_of=day, limits=limits)
    stores = condition_source(lake, "stores", "stores", profiles, base, key)
    products = condition_source(lake, "products", "products", profiles, base, key)
    ctx = Context(
        stores=_known(lake, stores, "stores.csv"), regions=regions, as_of=day, limits=limits
    )
    key = {**key, "stores": stores.version}
    found = {
        s: condition_source(lake, s, s, profiles, ctx, key)
        for s in ("shoppers", "weather", "events")
        if only is None or only == s
    }
    return Reference(
        stores=stores,
        products=products,
        profiles=profiles,
        as_of=day.date().isoformat(),
        limits=limits,
        **{s: found.get(s, _EMPTY) for s in ("shoppers", "weather", "events")},
    )


# stands in for a source that `only` left out
_EMPTY = Dataset(path="", manifest={"version": "", "source": "not conditioned"})


def condition_region(
    lake: Lake, region: str, ref: Reference, horizon: int = 4, only: str | None = None
) -> RegionInputs:
    """Condition one region's shipments, returns and promotion plan, then check them
    (`only`: just that source, no checks)."""
    ctx = Context(
        stores=_known(lake, ref.stores, "stores.csv"),
        products=_known(lake, ref.products, "products.csv"),
        region=region,
        as_of=pd.Timestamp(ref.as_of),
        limits=ref.limits,
    )
    key = _context_key(ref, region=region, as_of=ref.as_of)
    feeds = {
        s: condition_source(lake, s, f"{s}/region={region}", ref.profiles, ctx, key)
        for s in REGION_SOURCES
        if only is None or only == s
    }
    if only is not None:
        return RegionInputs(**{s: feeds.get(s, _EMPTY) for s in REGION_SOURCES}, quality=_EMPTY)
    quality = quality_for_region(lake, region, ref, feeds, horizon)
    return RegionInputs(**feeds, quality=quality)


def quality_for_region(
    lake: Lake, region: str, ref: Reference, region_feeds: dict[str, Dataset], horizon: int
) -> Dataset:
    """Cross-source data-quality checks of one region: monitoring/data_quality/region=<r>/."""
    inputs = {n: d.version for n, d in {**ref.datasets(), **region_feeds}.items()}
    version = digest({"inputs": inputs, "horizon": horizon, "code": code_version()})

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        stores = read_table(lake, ref.stores, "stores.csv")
        checks = cross_source_checks(
            region,
            stores[stores["region"] == region],
            read_table(lake, region_feeds["shipments"], "shipments.csv"),
            read_table(lake, ref.shoppers, "shoppers.csv"),
            read_table(lake, ref.weather, "weather.csv"),
            horizon,
        )
        checks = feeds.without_absent(checks, {**ref.datasets(), **region_feeds})
        datasets = list({**ref.datasets(), **region_feeds}.values())
        unreadable = [
            {
                "check": "readable_files",
                "status": "fail",
                "failing": 1,
                "detail": f"{u['file']}: {u['problem']}",
            }
            for d in datasets
            for u in d.manifest.get("unreadable", [])
        ] + feeds.warning_checks(datasets)
        table = pd.concat(
            [checks, pd.DataFrame(unreadable, columns=checks.columns)], ignore_index=True
        )
        table.insert(0, "region", region)
        manifest: dict[str, object] = {"version": version, "region": region, "inputs": inputs}
        manifest["results"] = table.to_dict("records")
        manifest["failed"] = int((table["status"] == "fail").sum())
        return {"checks.csv": frame_to_csv_bytes(table)}, manifest

    return commit_or_reuse(
        lake, versioned(f"monitoring/data_quality/region={region}", version), build
    )
