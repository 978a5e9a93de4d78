"""Forecasts on request: the latest committed forecasts of a region, for `GET /api/forecasts`.

The latest are those of the newest run report (`monitoring/runs/*.json`) that names a committed
forecasts dataset of the region; without one, the newest `as_of` folder if it holds exactly one
committed version. Each row says which model forecast it (`model`, `model_version`: the
champion's registry version, or the challenger's for stores assigned to it) and, where the
baseline forecast, why (`fallback`). A request that is wrong in any way is a RequestError
whose one line says what (names cut at 100 characters).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from demandops.core.lake import Dataset, Lake
from demandops.core.limits import clip, clip_list
from demandops.core.settings import Settings
from demandops.pipeline.activities import RequestError

PARAMS = ("region", "store", "product", "weeks")
MAX_ROWS = 20_000  # rows of one answer; a whole large region needs store= or product=
COLUMNS = ["store_id", "product_id", "week_start", "horizon", "forecast", "p10", "p50", "p90",
           "model", "model_version", "trained_on", "stale", "fallback"]  # fmt: skip


class NotFound(RequestError):
    """The region has no committed forecasts yet."""


def query(settings: Settings, params: Mapping[str, str]) -> dict[str, Any]:
    """The answer to one request's query parameters (region required; store, product, weeks)."""
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise RequestError(f"unknown parameter {clip_list(unknown)}; expected {', '.join(PARAMS)}")
    region = params.get("region", "")
    if region not in {r.id for r in settings.regions}:
        raise RequestError(f"region must be a configured region id, not {clip(region)!r}")
    weeks = _weeks(params.get("weeks"), settings.pipeline.horizon_weeks)
    lake = Lake(settings.environment.lake)
    dataset = latest_forecasts(lake, region)
    frame = lake.read_csv(dataset.file("forecasts.csv"), dtype=str, keep_default_na=False)
    rows = frame[pd.to_numeric(frame["horizon"]) <= weeks]
    for param, column in (("store", "store_id"), ("product", "product_id")):
        if params.get(param):
            rows = rows[rows[column] == params[param]]
            if rows.empty:
                raise NotFound(f"no forecasts for {param} {clip(params[param])!r} in {region}")
    if len(rows) > MAX_ROWS:
        raise RequestError(f"{len(rows)} rows is over {MAX_ROWS}: add store= or product=")
    return {
        "region": region,
        "as_of": str(dataset.manifest.get("as_of", "")),
        "dataset": dataset.path,
        "weeks": weeks,
        "rows": len(rows),
        "forecasts": _records(rows[[c for c in COLUMNS if c in rows.columns]]),
    }


def latest_forecasts(lake: Lake, region: str) -> Dataset:
    """The region's latest committed forecasts dataset (see the module docstring)."""
    for name in sorted(lake.list_files("monitoring/runs"), reverse=True):
        try:
            path = json.loads(lake.read_bytes(name))["regions"][region]["paths"]["forecasts"]
        except (KeyError, TypeError, ValueError):
            continue  # a run without this region's forecasts, or a report not readable
        if (found := lake.dataset(path)) is not None:
            return found
    for as_of in sorted(lake.list_dirs("forecasts"), reverse=True):
        folder = f"forecasts/{as_of}/region={region}"
        found_all = [lake.dataset(f"{folder}/{v}") for v in lake.list_dirs(folder)]
        committed = [d for d in found_all if d is not None]
        if len(committed) == 1:
            return committed[0]
    raise NotFound(f"no committed forecasts for region {region} yet: run a batch first")


def _weeks(text: str | None, horizon: int) -> int:
    if text is None or text == "":
        return horizon
    if not text.isdigit() or not 1 <= int(text) <= horizon:
        raise RequestError(f"weeks must be a whole number from 1 to {horizon}, not {clip(text)!r}")
    return int(text)


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    out = rows.copy()
    for column in ("forecast", "p10", "p50", "p90"):
        out[column] = pd.to_numeric(out[column], errors="coerce")
    out["horizon"] = out["horizon"].astype(int)
    out["stale"] = out["stale"] == "True"
    return json.loads(out.to_json(orient="records"))
