"""The weekly batch's steps over the lake: each reads committed inputs, writes one dataset.

A step's output version is the hash of its inputs' versions, its parameters and the code
version. If a dataset of that version is already committed the step does nothing, so a
re-run on unchanged inputs skips all work and leaves every output as it was.

  raw/                      -> conditioned/{stores,products}/v=<h>/
  raw/*/region=<r>/         -> conditioned/{shipments,promotions}/region=<r>/v=<h>/ (+ quarantine/)
  conditioned               -> features/region=<r>/v=<h>/features.parquet
  features                  -> models/region=<r>/v=<h>/ (model.pkl, metrics.csv, segments.json)
  features + model          -> forecasts/as_of=<date>/region=<r>/v=<h>/forecasts.csv
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from conditioners.products import condition_products
from conditioners.promotions import condition_promotions
from conditioners.shipments import condition_shipments
from conditioners.stores import condition_stores
from conditioners.table import Conditioned
from demandops.errors import DataError
from demandops.hashing import code_version, digest, sha256_bytes
from demandops.lake import Dataset, Lake, frame_to_csv_bytes, versioned
from demandops.settings import PipelineConfig
from ml.features import build_features, build_panel
from ml.score import SegmentScorer, score_region
from ml.train import TrainedRegion, TrainParams, train_region


@dataclass(frozen=True)
class Reference:
    """The conditioned store and product attributes every region needs."""

    stores: Dataset
    products: Dataset


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


def _conditioned(
    lake: Lake,
    source: str,
    prefix: str,
    inputs: dict[str, str],
    depends: dict[str, str],
    run: Callable[[bytes, str], Conditioned],
) -> Dataset:
    """Condition every raw file of one source; commit the standard CSV and the quarantine."""
    version = digest({"inputs": inputs, "depends": depends, "code": code_version()})

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        results = {f: run(lake.read_bytes(f), f) for f in inputs}
        frame = pd.concat([r.frame for r in results.values()], ignore_index=True)
        rejects = pd.concat(
            [r.rejects.assign(source_file=f) for f, r in results.items()], ignore_index=True
        )
        counts = {
            "rows_in": sum(r.rows_in for r in results.values()),
            "rows_out": len(frame),
            "rows_rejected": len(rejects),
            "rejected_by_reason": rejects["reason"].value_counts().sort_index().to_dict()
            if len(rejects)
            else {},
        }
        manifest: dict[str, object] = {"source": source, "version": version, **counts}
        manifest |= {"inputs": inputs, "depends": depends, "code_version": code_version()}
        lake.commit_dataset(
            versioned(f"quarantine/{prefix}", version),
            {"rejects.csv": frame_to_csv_bytes(rejects)},
            manifest,
        )
        return {f"{source}.csv": frame_to_csv_bytes(frame)}, manifest

    return _commit_or_reuse(lake, versioned(f"conditioned/{prefix}", version), build)


def read_table(lake: Lake, dataset: Dataset, name: str) -> pd.DataFrame:
    frame = lake.read_csv(
        dataset.file(name), dtype={"store_id": str, "product_id": str, "zip_code": str}
    )
    if "week_start" in frame.columns:
        frame["week_start"] = pd.to_datetime(frame["week_start"], format="%Y-%m-%d")
    return frame


def condition_reference(lake: Lake, region_ids: list[str]) -> Reference:
    """Condition store attributes and the product catalogue."""
    stores = _conditioned(
        lake,
        "stores",
        "stores",
        raw_inputs(lake, "raw/stores"),
        {"regions": ",".join(sorted(region_ids))},
        lambda data, f: condition_stores(data, f, set(region_ids)),
    )
    products = _conditioned(
        lake, "products", "products", raw_inputs(lake, "raw/products"), {}, condition_products
    )
    return Reference(stores=stores, products=products)


def condition_region(lake: Lake, region: str, ref: Reference) -> tuple[Dataset, Dataset]:
    """Condition one region's shipments and promotion plan."""
    stores = read_table(lake, ref.stores, "stores.csv")
    store_ids = set(stores.loc[stores["region"] == region, "store_id"])
    product_ids = set(read_table(lake, ref.products, "products.csv")["product_id"])
    depends = {"stores": ref.stores.version, "products": ref.products.version}
    shipments = _conditioned(
        lake,
        "shipments",
        f"shipments/region={region}",
        raw_inputs(lake, f"raw/shipments/region={region}"),
        depends,
        lambda data, f: condition_shipments(data, f, store_ids, product_ids),
    )
    promotions = _conditioned(
        lake,
        "promotions",
        f"promotions/region={region}",
        raw_inputs(lake, f"raw/promotions/region={region}"),
        depends,
        lambda data, f: condition_promotions(data, f, store_ids, product_ids),
    )
    return shipments, promotions


def features_for_region(
    lake: Lake,
    region: str,
    ref: Reference,
    shipments: Dataset,
    promotions: Dataset,
    cfg: PipelineConfig,
) -> Dataset:
    """Build the feature table (history and the coming H weeks) of one region."""
    depends = {
        "shipments": shipments.version,
        "promotions": promotions.version,
        "stores": ref.stores.version,
        "products": ref.products.version,
    }
    params = {"horizon": cfg.horizon_weeks, "baseline_window": cfg.baseline_window_weeks}
    version = digest({"depends": depends, "params": params, "code": code_version()})

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        ship = read_table(lake, shipments, "shipments.csv")
        if ship.empty:
            raise DataError(f"region {region}: no usable shipments in {shipments.path}")
        panel = build_panel(ship, ship["week_start"].max(), cfg.horizon_weeks)
        frame = build_features(
            panel,
            read_table(lake, ref.stores, "stores.csv"),
            read_table(lake, ref.products, "products.csv"),
            read_table(lake, promotions, "promotions.csv"),
            cfg.horizon_weeks,
            cfg.baseline_window_weeks,
        )
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
