"""Modeling steps: a region's feature table, its trained models, and its forecasts.

conditioned               -> features/region=<r>/v=<h>/features.parquet
features                  -> models/region=<r>/v=<h>/ (model.pkl, metrics.csv, segments.json)
features + model          -> forecasts/as_of=<date>/region=<r>/v=<h>/forecasts.csv
"""

from __future__ import annotations

import io
import json
import pickle

import pandas as pd

from demandops.core.calendar import US_RETAIL_CALENDAR
from demandops.core.errors import DataError
from demandops.core.hashing import code_version, digest
from demandops.core.lake import Dataset, Lake, commit_or_reuse, frame_to_csv_bytes, versioned
from demandops.core.pipeline_config import PipelineConfig
from demandops.pipeline.steps.conditioning import Reference, RegionInputs, read_table
from demandops.pipeline.steps.feeds import (
    derived_products,
    derived_stores,
    is_absent,
    with_booked_returns,
)
from ml.artifacts import load_model, read_features
from ml.feature_table import ConditionedFeeds, feature_table
from ml.score import SegmentScorer, score_with_challengers
from ml.train import TrainParams, train_region


def features_for_region(
    lake: Lake,
    region: str,
    ref: Reference,
    inputs: RegionInputs,
    cfg: PipelineConfig,
) -> Dataset:
    """Build the feature table (history and the coming H weeks) of one region."""
    depends = {n: d.version for n, d in {**ref.datasets(), **inputs.datasets()}.items()}
    params: dict[str, object] = {
        "horizon": cfg.horizon_weeks,
        "baseline_window": cfg.baseline_window_weeks,
    }
    calendar = cfg.holidays.get(region, US_RETAIL_CALENDAR)
    if region in cfg.holidays:
        params["holidays"] = calendar.model_dump(mode="json")
    version = digest({"depends": depends, "params": params, "code": code_version()})

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        feeds = region_feeds(lake, region, ref, inputs)
        frame, panel = feature_table(
            feeds, cfg.horizon_weeks, cfg.baseline_window_weeks, holidays=calendar
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
        manifest["feeds"] = {  # which feeds the features were made of
            n: "absent" if is_absent(d) else f"{d.manifest.get('rows_out', 0)} rows"
            for n, d in {**ref.datasets(), **inputs.datasets()}.items()
            if n != "quality"
        }
        return {"features.parquet": buf.getvalue()}, manifest

    return commit_or_reuse(lake, versioned(f"features/region={region}", version), build)


def region_feeds(lake: Lake, region: str, ref: Reference, inputs: RegionInputs) -> ConditionedFeeds:
    """The conditioned tables of one region's features: absent stores and products derived from
    the shipments, returns booked from negative shipments added to the returns."""
    ship = read_table(lake, inputs.shipments, "shipments.csv")
    if ship.empty:
        raise DataError(f"region {region}: no usable shipments in {inputs.shipments.path}")
    stores, products = ref.stores, ref.products
    return ConditionedFeeds(
        shipments=ship,
        stores=derived_stores(ship, region)
        if is_absent(stores)
        else read_table(lake, stores, "stores.csv"),
        products=derived_products(ship)
        if is_absent(products)
        else read_table(lake, products, "products.csv"),
        promotions=read_table(lake, inputs.promotions, "promotions.csv"),
        shoppers=read_table(lake, ref.shoppers, "shoppers.csv"),
        weather=read_table(lake, ref.weather, "weather.csv"),
        events=read_table(lake, ref.events, "events.csv"),
        returns=with_booked_returns(
            read_table(lake, inputs.returns, "returns.csv"), lake, inputs.shipments
        ),
    )


def train_for_region(
    lake: Lake, region: str, features: Dataset, cfg: PipelineConfig, refresh: str | None = None
) -> Dataset:
    """Evaluate on the holdout and fit one model per segment of one region.

    `refresh` (e.g. a date) forces a new version on unchanged inputs: stale models are refit.
    """
    params = TrainParams.from_config(cfg)
    inputs = {"features": features.version, "params": params.__dict__, "code": code_version()}
    version = digest(inputs if refresh is None else inputs | {"refresh": refresh})

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        trained = train_region(read_features(lake, features), params)
        segments = {
            name: {"kind": m.kind, "n_rows": m.n_rows, "note": m.note, "members": m.members}
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

    return commit_or_reuse(lake, versioned(f"models/region={region}", version), build)


def score_for_region(
    lake: Lake,
    region: str,
    features: Dataset,
    model: Dataset,
    scorers: dict[str, SegmentScorer] | None = None,
    challengers: tuple[dict[str, SegmentScorer], float] = ({}, 0.0),
) -> Dataset:
    """Forecast the coming H weeks of one region.

    `scorers` (each segment's champion, from the registry) default to the region's trained
    models; which scorer forecast each segment is part of the version and the manifest.
    """
    champions = {name: _describe(s) for name, s in (scorers or {}).items()}
    rivals, share = challengers
    inputs = {"features": features.version, "model": model.version, "code": code_version()}
    if scorers is not None:
        inputs["champions"] = champions  # type: ignore[assignment]
    if rivals:  # only then: versions without challengers are what they were
        inputs["challengers"] = {n: _describe(s) for n, s in rivals.items()} | {"share": share}  # type: ignore[assignment]
    version = digest(inputs)
    as_of = (pd.Timestamp(features.manifest["last_week"]) + pd.Timedelta(weeks=1)).date()

    def build() -> tuple[dict[str, bytes], dict[str, object]]:
        forecasts, side = score_with_challengers(
            read_features(lake, features), load_model(lake, model), scorers, rivals, share
        )
        manifest = {
            "version": version,
            "region": region,
            "as_of": as_of,
            "features": features.version,
            "model": model.version,
            "rows": len(forecasts),
            "champions": champions,
        }
        files = {"forecasts.csv": frame_to_csv_bytes(forecasts)}
        if rivals:
            manifest["challengers"] = inputs["challengers"]
            files["challengers.csv"] = frame_to_csv_bytes(side)
        return files, manifest

    return commit_or_reuse(
        lake, versioned(f"forecasts/as_of={as_of}/region={region}", version), build
    )


def _describe(s: SegmentScorer) -> dict[str, object]:
    return {
        "kind": s.kind,
        "version": s.version,
        "run_id": s.run_id,
        "trained_on": s.trained_on,
        "stale": s.stale,
        "fallback": s.fallback,
    }
