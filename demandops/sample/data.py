"""Realistic, deterministic sample raw feeds for the configured regions.

Demand per store × product × week is built from effects a model can learn and a historical
average cannot fully capture:
  - product level, store size (format) and store/region effects;
  - yearly seasonality with a product-specific peak, and a trend per product and region;
  - promotions (a price cut with a product-specific elasticity), known ahead in the plan;
  - holiday weeks with a product-specific lift;
  - slow movers delivered every other week (store-specific phase), so many weeks are zero,
    the driver refilling the shelf to par (so shipments vary less than sales would), plus
    random stock-outs; fast movers have over-dispersed (negative binomial) noise.

  - weather (a hot week lifts beverages, snow keeps shoppers home), local events and regional
    holidays, and trade-area demographics (sample_exogenous.py);
  - returns: a small share of the previous week's shipments comes back.

Every feed is written in at least two raw shapes (sample_shapes.py), each read by a profile in
config/sources/, with realistic dirt for conditioning to quarantine.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from demandops.core.calendar import holiday_weeks, weeks
from demandops.core.errors import DataError
from demandops.core.lake import Lake
from demandops.core.settings import Region
from demandops.sample import exogenous as exo
from demandops.sample import shapes
from demandops.sample.shapes import RawFile

CATEGORIES = {  # category: (peak week of year, seasonal amplitude in log units)
    "juice": (4, 0.30),
    "beverages": (28, 0.45),
    "dairy": (50, 0.15),
    "snacks": (5, 0.20),
    "bakery": (47, 0.35),
}
FORMAT_FACTOR = {"large": 1.6, "small": 0.6}


@dataclass(frozen=True)
class SampleSpec:
    """What to generate. Defaults keep `make run` to a few minutes on 2 cores."""

    products: int = 20
    weeks: int = 156
    start: str = "2017-01-02"
    horizon_weeks: int = 4
    seed: int = 7
    store_scale: float = 1.0  # multiplies each region's configured store counts


@dataclass(frozen=True)
class Drivers:
    weather: exo.Weather
    events: pd.DataFrame
    holidays: pd.DataFrame


def generate(lake: Lake, regions: list[Region], spec: SampleSpec) -> list[RawFile]:
    """Write the sample feeds into `lake`; identical files are left as they are.

    Raw data is never overwritten: if a file exists with different content, nothing is written
    and a DataError names it.
    """
    files = list(sample_files(regions, spec))
    conflicts = [f.path for f in files if lake.exists(f.path) and lake.read_bytes(f.path) != f.data]
    if conflicts:
        raise DataError(
            f"raw data already exists with different content ({conflicts[0]}"
            f"{f' and {len(conflicts) - 1} more' if len(conflicts) > 1 else ''}); raw data is "
            "never overwritten: point DEMANDOPS_LAKE at a new folder or generate with the same "
            "options"
        )
    for f in files:
        if not lake.exists(f.path):
            lake.write_bytes(f.path, f.data)
    return files


def sample_files(regions: list[Region], spec: SampleSpec) -> Iterator[RawFile]:
    """Every raw file of the sample, as bytes, deterministically from `spec.seed`."""
    if spec.products < 2 or spec.weeks < 60:
        raise ValueError("sample data needs at least 2 products and 60 weeks")
    unsized = [r.id for r in regions if not r.zip_codes or not (r.stores.large + r.stores.small)]
    if unsized:
        raise ValueError(
            f"region {unsized[0]} has no zip_codes or stores in regions.yaml: sample data "
            "needs both (discovered regions have neither)"
        )
    products = _products(spec)
    stores = pd.concat([_stores(r, spec) for r in regions], ignore_index=True)
    demo = exo.demographics(stores, spec.seed)
    stores["effect"] += exo.demographic_effect(demo)
    week_index = weeks(spec.start, spec.weeks + spec.horizon_weeks)
    zips = sorted(stores["zip_code"].unique())
    weather = exo.simulate_weather(zips, week_index[0], len(week_index) * 7, spec.seed)
    events = exo.local_events(zips, week_index, spec.seed)
    holidays = exo.regional_holidays([r.id for r in regions], week_index, spec.seed)
    drivers = Drivers(weather, events, holidays)
    yield RawFile("raw/stores/stores.csv", _csv(stores.drop(columns=["effect", "phase"])))
    yield RawFile(
        "raw/products/products.csv",
        _csv(products[["product_id", "name", "category", "pack_size", "regular_price"]]),
    )
    as_of = week_index[spec.weeks]  # the Monday after the last week of history
    csv_region_ids = {r.id for r in regions[-3:]} if len(regions) > 3 else {regions[-1].id}
    rng = _rng(spec, "shapes")
    yield from shapes.shoppers_files(rng, demo, stores, csv_region_ids)
    yield from shapes.weather_files(rng, weather.daily, as_of, spec.seed)
    yield from shapes.events_files(rng, events, holidays, stores, week_index)
    for region in regions:
        shipments, returns, promotions = _region_feeds(region, stores, products, spec, drivers)
        region_rng = _rng(spec, "shapes", region.id)
        shape = _shape(region.id)
        yield from shapes.shipment_files(region_rng, region.id, shape, shipments, products)
        yield from shapes.returns_files(region_rng, region.id, shape, returns, products)
        yield RawFile(f"raw/promotions/region={region.id}/promotions.csv", _csv(promotions))


def _shape(region_id: str) -> str:
    """Which distributor's export shape a region's feeds come in: fixed by the region's id, so
    that generating a subset of regions gives each region the same files."""
    return "a" if sum(region_id.encode()) % 2 == 1 else "b"


def _rng(spec: SampleSpec, *keys: str) -> np.random.Generator:
    """A generator that depends only on the seed and the keys, so subsets of regions agree."""
    key = [zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng([spec.seed, *key])


def _products(spec: SampleSpec) -> pd.DataFrame:
    rng = _rng(spec, "products")
    n = spec.products
    categories = np.array(list(CATEGORIES))[np.arange(n) % len(CATEGORIES)]
    slow = np.arange(n) % 2 == 1  # half the catalogue are slow movers
    return pd.DataFrame(
        {
            "product_id": [f"P{i + 1:03d}" for i in range(n)],
            "name": [f"{c.title()} item {i + 1}" for i, c in enumerate(categories)],
            "category": categories,
            "pack_size": rng.choice([6, 12, 24], size=n),
            "regular_price": np.round(rng.uniform(1.5, 8.0, size=n), 2),
            "base": np.where(slow, rng.uniform(2.5, 5.0, n), rng.uniform(60.0, 200.0, n)),
            "slow": slow,
            "peak": [CATEGORIES[c][0] + rng.integers(-3, 4) for c in categories],
            "amplitude": [CATEGORIES[c][1] * rng.uniform(0.7, 1.3) for c in categories],
            "trend": rng.normal(0.0, 0.08, size=n),
            "elasticity": rng.uniform(-3.0, -1.5, size=n),
            "holiday_lift": rng.uniform(0.0, 0.45, size=n),
        }
    )


def _stores(region: Region, spec: SampleSpec) -> pd.DataFrame:
    rng = _rng(spec, "stores", region.id)
    counts = {f: max(1, round(n * spec.store_scale)) for f, n in region.stores.model_dump().items()}
    formats = [f for f, n in counts.items() for _ in range(n)]
    n = len(formats)
    return pd.DataFrame(
        {
            "store_id": [f"{region.id.upper()}-{i + 1:03d}" for i in range(n)],
            "region": region.id,
            "zip_code": [region.zip_codes[i % len(region.zip_codes)] for i in range(n)],
            "store_format": formats,
            "sqft": [
                int(rng.normal(48000, 6000) if f == "large" else rng.normal(14000, 2500))
                for f in formats
            ],
            "effect": rng.normal(0.0, 0.2, size=n),
            "phase": rng.integers(0, 2, size=n),
        }
    )


def _region_feeds(
    region: Region,
    all_stores: pd.DataFrame,
    products: pd.DataFrame,
    spec: SampleSpec,
    drivers: Drivers,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = _rng(spec, "demand", region.id)
    stores = all_stores[all_stores["region"] == region.id].reset_index(drop=True)
    n_s, n_p = len(stores), len(products)
    n_hist, n_all = spec.weeks, spec.weeks + spec.horizon_weeks
    week_index = weeks(spec.start, n_all)
    t = np.arange(n_all)
    woy = week_index.isocalendar().week.to_numpy(dtype=float)
    holiday = holiday_weeks(week_index).astype(float)

    promo = _promotion_plan(rng, n_s, n_p, n_all)  # discount fraction, 0 when no promotion
    region_effect = rng.normal(0.0, 0.12)
    region_trend = rng.normal(0.0, 0.04)
    store_product = rng.normal(0.0, 0.15, size=(n_s, n_p))

    p = {c: products[c].to_numpy()[None, :, None] for c in products.columns}
    log_mu = (
        np.log(p["base"])
        + np.log(stores["store_format"].map(FORMAT_FACTOR).to_numpy())[:, None, None]
        + stores["effect"].to_numpy()[:, None, None]
        + region_effect
        + store_product[:, :, None]
        + p["amplitude"] * np.cos(2 * np.pi * (woy[None, None, :] - p["peak"]) / 52.0)
        + (p["trend"] + region_trend) * t[None, None, :] / 52.0
        + p["elasticity"] * np.log1p(-promo)
        + p["holiday_lift"] * holiday[None, None, :]
        + _exogenous_effect(region, stores, products, week_index, drivers)
    )
    mu = np.exp(log_mu)
    # slow movers are delivered every other week: twice the demand on delivery weeks, else zero
    delivery = (t[None, None, :] + stores["phase"].to_numpy()[:, None, None]) % 2 == 0
    slow = p["slow"].astype(bool)
    mu = np.where(slow, np.where(delivery, 2.0 * mu, 0.0), mu)
    replenished = np.rint(mu * rng.lognormal(0.0, 0.15, size=mu.shape))  # refilled to par
    units = np.where(slow, replenished, _negative_binomial(rng, mu, dispersion=100.0))
    units = np.where(rng.random(units.shape) < 0.01, 0, units).astype(np.int64)  # stock-outs
    returned = np.zeros_like(units)  # a share of last week's shipments comes back
    returned[:, :, 1:] = rng.binomial(units[:, :, :-1], rng.uniform(0.01, 0.05, (n_s, n_p, 1)))
    return (
        _weekly_table(stores, products, week_index[:n_hist], units[:, :, :n_hist], "units"),
        _weekly_table(stores, products, week_index[:n_hist], returned[:, :, :n_hist], "units"),
        _promotions_table(stores, products, week_index, promo),
    )


def _exogenous_effect(
    region: Region,
    stores: pd.DataFrame,
    products: pd.DataFrame,
    week_index: pd.DatetimeIndex,
    drivers: Drivers,
) -> np.ndarray:
    """Log-units effect of weather, local events and regional holidays: store × product × week."""
    zips = stores["zip_code"].to_numpy()
    anomaly = drivers.weather.weekly_anomaly.reindex(columns=week_index).loc[zips].to_numpy()
    snow = drivers.weather.weekly_snow_days.reindex(columns=week_index).loc[zips].to_numpy()
    sensitivity = products["category"].map(exo.TEMP_EFFECT).to_numpy(dtype=float)
    events = drivers.events.assign(on=1.0).pivot_table(
        index="zip_code", columns="week_start", values="on", aggfunc="max"
    )
    event = events.reindex(index=zips, columns=week_index).fillna(0.0).to_numpy()
    own = drivers.holidays[drivers.holidays["region"] == region.id]
    holiday = week_index.isin(own["week_start"]).astype(float)
    store_week = (
        exo.SNOW_DAY_EFFECT * snow + exo.EVENT_LIFT * event + exo.REGIONAL_HOLIDAY_LIFT * holiday
    )
    return sensitivity[None, :, None] * anomaly[:, None, :] + store_week[:, None, :]


def _promotion_plan(rng: np.random.Generator, n_s: int, n_p: int, n_w: int) -> np.ndarray:
    """Discount per store × product × week: promotions start in ~10% of weeks and last 1-2 weeks."""
    starts = rng.random((n_s, n_p, n_w)) < 0.10
    long = rng.random((n_s, n_p, n_w)) < 0.5
    on = starts.copy()
    on[:, :, 1:] |= starts[:, :, :-1] & long[:, :, :-1]
    depth = np.round(rng.uniform(0.10, 0.35, size=(n_s, n_p, n_w)), 2)
    return np.where(on, depth, 0.0)


def _negative_binomial(rng: np.random.Generator, mu: np.ndarray, dispersion: float) -> np.ndarray:
    """Counts with mean `mu` and variance mu + mu²/dispersion."""
    return rng.poisson(rng.gamma(dispersion, mu / dispersion))


def _long(
    stores: pd.DataFrame, products: pd.DataFrame, week_index: pd.DatetimeIndex
) -> pd.DataFrame:
    idx = pd.MultiIndex.from_product(
        [stores["store_id"], products["product_id"], week_index],
        names=["store_id", "product_id", "week_start"],
    )
    return idx.to_frame(index=False)


def _weekly_table(
    stores: pd.DataFrame,
    products: pd.DataFrame,
    week_index: pd.DatetimeIndex,
    values: np.ndarray,
    name: str,
) -> pd.DataFrame:
    """Long store × product × week rows with a positive value (feeds list only what happened)."""
    frame = _long(stores, products, week_index)
    frame[name] = values.reshape(-1).astype(np.int64)
    return frame[frame[name] > 0].reset_index(drop=True)


def _promotions_table(
    stores: pd.DataFrame, products: pd.DataFrame, week_index: pd.DatetimeIndex, promo: np.ndarray
) -> pd.DataFrame:
    frame = _long(stores, products, week_index)
    frame["discount"] = promo.reshape(-1)
    frame = frame[frame["discount"] > 0].copy()
    price = frame["product_id"].map(products.set_index("product_id")["regular_price"])
    frame["promo_price"] = np.round(price * (1.0 - frame["discount"]), 2)
    return frame.drop(columns="discount").reset_index(drop=True)


def _csv(frame: pd.DataFrame) -> bytes:
    return shapes.csv_bytes(frame)
