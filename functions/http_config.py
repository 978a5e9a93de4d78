"""GET /api/config: what this deployment is configured to run (environment, regions, horizon)."""

from __future__ import annotations

import json

import azure.functions as func

from demandops.core.errors import ConfigError
from demandops.core.settings import Settings, load_settings

bp = func.Blueprint()


def describe(settings: Settings) -> dict[str, object]:
    """The non-secret facts of a configuration, for operators and the HTTP API."""
    return {
        "environment": settings.environment.name,
        "compute": settings.environment.compute,
        "horizon_weeks": settings.pipeline.horizon_weeks,
        "regions": [{"id": r.id, "name": r.name} for r in settings.regions],
    }


@bp.route(route="config", methods=["GET"])
def get_config(req: func.HttpRequest) -> func.HttpResponse:
    try:
        body, status = describe(load_settings()), 200
    except ConfigError as exc:
        body, status = {"error": str(exc)}, 500
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")
