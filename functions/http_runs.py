"""POST /api/runs starts a run (202 with the durable status URLs); GET /api/runs/{id} reports it.

Hostile requests get a short answer: a body over MAX_BODY bytes is 413, one nested deeper than
MAX_DEPTH or not JSON is 400, error messages are cut (names at 100 characters, lists at 20),
an id outside the Durable instance-id format is 400 before any URL is built, and a Durable
extension that fails or cannot be reached is 502 / 503 with the reason, not "no run".

A run's instance id is one per lake, environment and week (`run_instance_id`): a second start
of the same week while the first is pending or running answers 200 with
{"status": "already_running", "id": ...} and the first run's status URLs, and starts nothing
(host.json lets a start replace only an instance that is no longer running).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import azure.durable_functions as df
import azure.functions as func

from demandops.core.errors import ConfigError, DemandOpsError
from demandops.core.limits import TooLarge, clip, clip_list, load_json
from demandops.core.settings import Settings, load_settings
from demandops.pipeline.activities import RequestError, plan_run, run_instance_id
from demandops.pipeline.orchestration import RUN_ORCHESTRATOR, active_regions, region_progress

bp = df.Blueprint()
PIPELINES = ("train", "score", "weekly")
FIELDS = ("regions", "pipeline", "as_of")
MAX_BODY = 64 * 1024  # bytes; a run request is a few hundred
MAX_DEPTH = 8  # nesting of arrays and objects in a run request
MAX_ERROR = 6000  # characters of an error message, at most (20 names of 100 and more)
# Durable Functions instance ids: 1-100 characters, not starting with @, without / \ # ? or
# control characters; also without % (no escapes to decode twice) and not "." or ".."
INSTANCE_ID = re.compile(r"(?!\.{1,2}$)[^@/\\#?%\x00-\x1f\x7f][^/\\#?%\x00-\x1f\x7f]{0,99}")


def parse_run_request(body: bytes, settings: Settings) -> dict[str, Any]:
    """The orchestration input for a request body; anything wrong is a RequestError saying what."""
    try:
        data = load_json(body or b"null", "body", MAX_DEPTH, MAX_BODY)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError('body must be a JSON object like {"pipeline": "weekly"}')
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise RequestError(f"unknown field {clip_list(unknown)}; expected {', '.join(FIELDS)}")
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


def _error(message: str, status: int) -> func.HttpResponse:
    return _json({"error": clip(message, MAX_ERROR)}, status)


@bp.route(route="runs", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_run(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    try:
        settings = load_settings()
    except ConfigError as exc:
        return _error(str(exc), 500)
    try:
        plan = parse_run_request(req.get_body(), settings)
    except TooLarge as exc:
        return _error(str(exc), 413)
    except DemandOpsError as exc:
        return _error(str(exc), 400)
    instance_id = run_instance_id(settings, plan["as_of"])
    try:
        if await _running(client, instance_id):
            return _already_running(req, client, instance_id)
        try:
            await client.start_new(RUN_ORCHESTRATOR, instance_id, client_input=plan)
        except Exception:  # started meanwhile by another trigger: the extension refuses
            if await _running(client, instance_id):
                return _already_running(req, client, instance_id)
            raise
    except (TimeoutError, aiohttp.ClientConnectionError) as exc:
        return _error(f"the Durable extension is unreachable: {clip(exc, 300)}", 503)
    except Exception as exc:
        return _error(f"the Durable extension failed: {clip(exc, 300)}", 502)
    return client.create_check_status_response(req, instance_id)


ACTIVE = (df.OrchestrationRuntimeStatus.Pending, df.OrchestrationRuntimeStatus.Running,
          df.OrchestrationRuntimeStatus.ContinuedAsNew)  # fmt: skip


async def _running(client: df.DurableOrchestrationClient, instance_id: str) -> bool:
    status = await client.get_status(instance_id)
    return status.runtime_status in ACTIVE


def _already_running(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, instance_id: str
) -> func.HttpResponse:
    links = client.get_client_response_links(req, instance_id)
    return _json({**links, "status": "already_running", "id": instance_id}, 200)


@bp.route(route="runs/{instance_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_run(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    instance_id = req.route_params.get("instance_id", "")
    if not INSTANCE_ID.fullmatch(instance_id):
        return _error(f"not a run id: {clip(instance_id)!r} (1-100 characters, no / \\ # ? %)", 400)
    try:
        status = await client.get_status(instance_id)
    except (TimeoutError, aiohttp.ClientConnectionError) as exc:
        return _error(f"the Durable extension is unreachable: {clip(exc, 300)}", 503)
    except Exception as exc:
        return _error(f"the Durable extension failed: {clip(exc, 300)}", 502)
    if status.runtime_status is None:
        failure = _extension_failure(status)
        if failure:
            return _error(f"the Durable extension failed: {clip(failure, 300)}", 502)
        return _error(f"no run {instance_id}", 404)
    return _json(
        {
            "id": instance_id,
            "status": status.runtime_status.value,
            "created": status.created_time.isoformat() if status.created_time else None,
            "updated": status.last_updated_time.isoformat() if status.last_updated_time else None,
            "progress": await _progress(client, instance_id, status.custom_status),
            "output": status.output,
        },
        200,
    )


async def _progress(client: df.DurableOrchestrationClient, run_id: str, progress: Any) -> Any:
    """The run's progress with each active region's own state (Queued, Running…), read from that
    region's sub-orchestration; a region whose status cannot be read keeps the run's word."""

    async def own(region: str) -> Any:
        try:
            return (await client.get_status(f"{run_id}:{region}")).custom_status
        except Exception:  # the run's own progress still answers
            return None

    regions = active_regions(progress)
    states = await asyncio.gather(*(own(r) for r in regions))
    return region_progress(progress, dict(zip(regions, states, strict=True)))


def _extension_failure(status: df.DurableOrchestrationStatus) -> str:
    """The error message of a status answer without a runtime status ("" for none: the
    instance does not exist). The extension answers 404 with an empty body; an error body
    (its 500s carry a Message) is a failure of the extension, not a missing run."""
    fields = {k.lower(): v for k, v in vars(status).items() if not k.startswith("_")}
    return next((str(fields[k]) for k in ("message", "exceptionmessage") if fields.get(k)), "")
