"""A raw file landed in the lake (Event Grid blob trigger on `lake/raw/`): condition its source.

A poison file is quarantined with its reason and the function returns normally, so the trigger
does not retry it; any other error is raised and retried by the runtime."""

from __future__ import annotations

import logging

import azure.functions as func

from demandops.core.settings import load_settings
from demandops.pipeline.arrival import condition_arrival

bp = func.Blueprint()
CONTAINER = "lake"


@bp.blob_trigger(
    arg_name="blob",
    path=CONTAINER + "/raw/{name}",
    connection="LakeStorage",
    source=func.BlobSource.EVENT_GRID,
)
def raw_arrived(blob: func.InputStream) -> None:
    path = (blob.name or "").removeprefix(CONTAINER + "/")
    outcome = condition_arrival(load_settings(), path)
    log = logging.info if outcome["status"] == "conditioned" else logging.warning
    log("raw file %s: %s", path, outcome)
