"""The weekly batch's steps over the lake: each reads committed inputs, writes one dataset.

A step's output version is the hash of its inputs' versions, its parameters and the code
version. If a dataset of that version is already committed the step does nothing, so a
re-run on unchanged inputs skips all work and leaves every output as it was.

  raw/<source>/ (profiles)  -> conditioned/{stores,products,shoppers,weather,events}/v=<h>/
  raw/*/region=<r>/         -> conditioned/{shipments,returns,promotions}/region=<r>/v=<h>/
                               (+ quarantine/, each raw file cached in conditioned/_parts/)
  conditioned               -> monitoring/data_quality/region=<r>/v=<h>/checks.csv
  conditioned               -> features/region=<r>/v=<h>/features.parquet
  features                  -> models/region=<r>/v=<h>/ (model.pkl, metrics.csv, segments.json)
  features + model          -> forecasts/as_of=<date>/region=<r>/v=<h>/forecasts.csv
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from conditioners.combine import combine_parts, read_standard
from conditioners.context import Context
from conditioners.engine import condition_files
from conditioners.profile import Profile, load_profiles, profile_for
from conditioners.quality import cross_source_checks
from conditioners.schemas import SCHEMAS
from conditioners.table import Conditioned
from demandops import telemetry
from demandops.errors import DataError
from demandops.hashing import code_version, digest, sha256_bytes
from demandops.lake import Dataset, Lake, frame_to_csv_bytes, versioned
from demandops.settings import DEFAULT_CONFIG_DIR, PipelineConfig
from ml.feature_table import ConditionedFeeds, feature_table
from ml.score import SegmentScorer, score_region
from ml.train import TrainedRegion, TrainParams, train_region


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


def raw_inputs(lake: Lake, prefix: str) -> dict[str, str]:
    """sha256 of every raw file below `prefix`; a missing feed is a DataError."""
    files = [f for f in lake.list_files(prefix) if not f.rsplit("/", 1)[-1].startswith(".")]
    if not files:
        raise DataError(
            f"no raw data in {lake.location(prefix)}: run `demandops generate` or add the feed"
        )
    return {f: sha256_bytes(lake.read_bytes(f)) for f in files}


def _commit_or_reuse(
    lake: Lake, path: str, build: Callable[[], tuple[dict[str, bytes], dict[str, object]]]
) -> Dataset:
    existing = lake.dataset(path)
    if existing is not None:
        return existing
    files, manifest = build()
    return lake.commit_dataset(path, files, manifest)


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
    inputs = raw_inputs(lake, f"raw/{prefix}")
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
        lake.commit_dataset(
            versioned(f"quarantine/{prefix}", version),
            {"rejects.csv": frame_to_csv_bytes(rejects)},
            manifest,
        )
        return {f"{source}.csv": frame_to_csv_bytes(combined.frame)}, manifest

    return _commit_or_reuse(lake, versioned(f"conditioned/{prefix}", version), build)


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
        profile = profile_for(file.removeprefix("raw/"), profiles)
        if profile is None or profile.source != source:
            found[file] = f"no {source} profile in the source profiles reads {file}"
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
    return lake.commit_dataset(versioned(f"conditioned/_parts/{source}", version), files, manifest)


def _read_part(lake: Lake, part: Dataset, source: str) -> pd.DataFrame:
    return read_standard(lake.read_bytes(part.file("part.csv")), SCHEMAS[source])


def _read_rejects(lake: Lake, part: Dataset) -> pd.DataFrame:
    return lake.read_csv(part.file("rejects.csv"), dtype=str, keep_default_na=False)


def read_table(lake: Lake, dataset: Dataset, name: str) -> pd.DataFrame:
    """A conditioned table, typed by its schema."""
    schema = SCHEMAS[name.removesuffix(".csv")]
    return read_standard(lake.read_bytes(dataset.file(name)), schema)


def _context_key(ref: Reference, **extra: object) -> dict[str, object]:
    return {"stores": ref.stores.version, "products": ref.products.version, **extra}


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
) -> Reference:
    """Condition store attributes, products, shoppers, weather and events.

    `only` conditions just that reference source (and stores and products, which every other
    source is checked against); the others are looked up, and must have been conditioned.
    """
    profiles = load_profiles(profiles_dir or DEFAULT_CONFIG_DIR / "sources")
    day = as_of or as_of_today()
    regions = frozenset(region_ids)
    key: dict[str, object] = {"regions": sorted(regions), "as_of": day.date().isoformat()}
    base = Context(regions=regions, as_of=day)
    stores = condition_source(lake, "stores", "stores", profiles, base, key)
    products = condition_source(lake, "products", "products", profiles, base, key)
    ctx = Context(stores=read_table(lake, stores, "stores.csv"), regions=regions, as_of=day)
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
        stores=read_table(lake, ref.stores, "stores.csv"),
        products=read_table(lake, ref.products, "products.csv"),
        region=region,
        as_of=pd.Timestamp(ref.as_of),
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
    lake: Lake, region: str, ref: Reference, feeds: dict[str, Dataset], horizon: int
) -> Dataset:
    """Cross-source data-quality checks of one region: monitoring/data_quality/region=<r>/."""
    inputs = {n: d.version for n, d in {**ref.datasets(), **feeds}.items()}
    version = digest({"inputs": inputs, "horizon": horizon, "code": code_version()})

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        stores = read_table(lake, ref.stores, "stores.csv")
        checks = cross_source_checks(
            region,
            stores[stores["region"] == region],
            read_table(lake, feeds["shipments"], "shipments.csv"),
            read_table(lake, ref.shoppers, "shoppers.csv"),
            read_table(lake, ref.weather, "weather.csv"),
            horizon,
        )
        unreadable = [
            {
                "check": "readable_files",
                "status": "fail",
                "failing": 1,
                "detail": f"{u['file']}: {u['problem']}",
            }
            for d in {**ref.datasets(), **feeds}.values()
            for u in d.manifest.get("unreadable", [])
        ]
        table = pd.concat(
            [checks, pd.DataFrame(unreadable, columns=checks.columns)], ignore_index=True
        )
        table.insert(0, "region", region)
        manifest: dict[str, object] = {"version": version, "region": region, "inputs": inputs}
        manifest["results"] = table.to_dict("records")
        manifest["failed"] = int((table["status"] == "fail").sum())
        return {"checks.csv": frame_to_csv_bytes(table)}, manifest

    return _commit_or_reuse(
        lake, versioned(f"monitoring/data_quality/region={region}", version), build
    )


def features_for_region(
    lake: Lake,
    region: str,
    ref: Reference,
    inputs: RegionInputs,
    cfg: PipelineConfig,
) -> Dataset:
    """Build the feature table (history and the coming H weeks) of one region."""
    shipments, promotions = inputs.shipments, inputs.promotions
    depends = {n: d.version for n, d in {**ref.datasets(), **inputs.datasets()}.items()}
    params = {"horizon": cfg.horizon_weeks, "baseline_window": cfg.baseline_window_weeks}
    version = digest({"depends": depends, "params": params, "code": code_version()})

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        ship = read_table(lake, shipments, "shipments.csv")
        if ship.empty:
            raise DataError(f"region {region}: no usable shipments in {shipments.path}")
        feeds = ConditionedFeeds(
            shipments=ship,
            stores=read_table(lake, ref.stores, "stores.csv"),
            products=read_table(lake, ref.products, "products.csv"),
            promotions=read_table(lake, promotions, "promotions.csv"),
            shoppers=read_table(lake, ref.shoppers, "shoppers.csv"),
            weather=read_table(lake, ref.weather, "weather.csv"),
            events=read_table(lake, ref.events, "events.csv"),
            returns=read_table(lake, inputs.returns, "returns.csv"),
        )
        frame, panel = feature_table(feeds, cfg.horizon_weeks, cfg.baseline_window_weeks)
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        manifest: dict[str, object] = {"version": version, "region": region, "params": params}
        manifest |= {
            "depends": depends,
            "rows": len(frame),
            "series": len(panel.keys),
            "last_week": panel.weeks[panel.n_history - 1],
        }
        return {"features.parquet": buf.getvalue()}, manifest

    return _commit_or_reuse(lake, versioned(f"features/region={region}", version), build)


def read_features(lake: Lake, features: Dataset) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(lake.read_bytes(features.file("features.parquet"))))


def train_for_region(
    lake: Lake, region: str, features: Dataset, cfg: PipelineConfig, refresh: str | None = None
) -> Dataset:
    """Evaluate on the holdout and fit one model per segment of one region.

    `refresh` (e.g. a date) forces a new version on unchanged inputs: stale models are refit.
    """
    params = TrainParams(
        horizon_weeks=cfg.horizon_weeks,
        backtest_origins=cfg.backtest_origins,
        velocity_threshold=cfg.velocity_threshold,
        lasso_cv_folds=cfg.lasso_cv_folds,
        lasso_calendar_slopes=cfg.lasso_calendar_slopes,
        ensemble_objective=cfg.ensemble_objective,
        ensemble_wape_tolerance=cfg.ensemble_wape_tolerance,
        ensemble_members=tuple(cfg.ensemble),
    )
    inputs = {"features": features.version, "params": params.__dict__, "code": code_version()}
    version = digest(inputs if refresh is None else inputs | {"refresh": refresh})

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        trained = train_region(read_features(lake, features), params)
        segments = {
            name: {"kind": m.kind, "n_rows": m.n_rows, "note": m.note}
            for name, m in trained.models.items()
        }
        manifest = {
            "version": version,
            "region": region,
            "features": features.version,
            "params": params.__dict__,
            "code_version": code_version(),
            "holdout_start": trained.holdout_start,
            "trained_through": trained.last_week,
        }
        if refresh is not None:
            manifest["refresh"] = refresh
        files = {
            "model.pkl": pickle.dumps(trained, protocol=pickle.HIGHEST_PROTOCOL),
            "metrics.csv": frame_to_csv_bytes(trained.metrics),
            "holdout.csv": frame_to_csv_bytes(trained.holdout),
            "segments.json": json.dumps(segments, indent=2, sort_keys=True).encode(),
        }
        return files, manifest

    return _commit_or_reuse(lake, versioned(f"models/region={region}", version), build)


def load_model(lake: Lake, model: Dataset) -> TrainedRegion:
    """Unpickle a region's models. Only load model datasets from a lake you trust."""
    trained = pickle.loads(lake.read_bytes(model.file("model.pkl")))
    if not isinstance(trained, TrainedRegion):
        raise DataError(f"{model.path}/model.pkl is not a trained region model")
    return trained


def score_for_region(
    lake: Lake,
    region: str,
    features: Dataset,
    model: Dataset,
    scorers: dict[str, SegmentScorer] | None = None,
) -> Dataset:
    """Forecast the coming H weeks of one region.

    `scorers` (each segment's champion, from the registry) default to the region's trained
    models; which scorer forecast each segment is part of the version and the manifest.
    """
    champions = {
        name: {
            "kind": s.kind,
            "version": s.version,
            "run_id": s.run_id,
            "trained_on": s.trained_on,
            "stale": s.stale,
            "fallback": s.fallback,
        }
        for name, s in (scorers or {}).items()
    }
    inputs = {"features": features.version, "model": model.version, "code": code_version()}
    version = digest(inputs | {"champions": champions} if scorers is not None else inputs)
    as_of = (pd.Timestamp(features.manifest["last_week"]) + pd.Timedelta(weeks=1)).date()

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        forecasts = score_region(read_features(lake, features), load_model(lake, model), scorers)
        manifest = {
            "version": version,
            "region": region,
            "as_of": as_of,
            "features": features.version,
            "model": model.version,
            "rows": len(forecasts),
            "champions": champions,
        }
        return {"forecasts.csv": frame_to_csv_bytes(forecasts)}, manifest

    return _commit_or_reuse(
        lake, versioned(f"forecasts/as_of={as_of}/region={region}", version), build
    )
