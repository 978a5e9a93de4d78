"""POST /api/runs starts a run (202 with the durable status URLs); GET /api/runs/{id} reports it."""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from demandops.core.errors import ConfigError, DemandOpsError
from demandops.core.settings import Settings, load_settings
from demandops.pipeline.activities import RequestError, plan_run
from demandops.pipeline.orchestration import RUN_ORCHESTRATOR

bp = df.Blueprint()
PIPELINES = ("train", "score", "weekly")
FIELDS = ("regions", "pipeline", "as_of")


def parse_run_request(body: bytes, settings: Settings) -> dict[str, Any]:
    """The orchestration input for a request body; anything wrong is a RequestError saying what."""
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError('body must be a JSON object like {"pipeline": "weekly"}')
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise RequestError(f"unknown field {', '.join(unknown)}; expected {', '.join(FIELDS)}")
    regions = data.get("regions")
    if regions is not None and (
        not isinstance(regions, list) or not all(isinstance(r, str) for r in regions)
    ):
        raise RequestError('regions must be a list of region ids, e.g. ["pnw", "tx"]')
    if data.get("pipeline") not in PIPELINES:
        raise RequestError(f"pipeline must be one of {', '.join(PIPELINES)}")
    as_of = data.get("as_of")
    if as_of is not None and not isinstance(as_of, str):
        raise RequestError("as_of must be a date string YYYY-MM-DD")
    try:
        return plan_run(settings, regions, data["pipeline"], as_of)
    except ConfigError as exc:  # an unknown region
        raise RequestError(exc.problem) from None


def _json(body: Any, status: int) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


@bp.route(route="runs", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_run(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    try:
        settings = load_settings()
    except ConfigError as exc:
        return _json({"error": str(exc)}, 500)
    try:
        plan = parse_run_request(req.get_body(), settings)
    except DemandOpsError as exc:
        return _json({"error": str(exc)}, 400)
    instance_id = await client.start_new(RUN_ORCHESTRATOR, client_input=plan)
    return client.create_check_status_response(req, instance_id)


@bp.route(route="runs/{instance_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_run(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    instance_id = req.route_params["instance_id"]
    status = await client.get_status(instance_id)
    if status.runtime_status is None:
        return _json({"error": f"no run {instance_id}"}, 404)
    return _json(
        {
            "id": instance_id,
            "status": status.runtime_status.value,
            "created": status.created_time.isoformat() if status.created_time else None,
            "updated": status.last_updated_time.isoformat() if status.last_updated_time else None,
            "progress": status.custom_status,
            "output": status.output,
        },
        200,
    )
