"""GET /api/forecasts?region=&store=&product=&weeks=: the latest committed forecasts.

Thin: the answer is `demandops.pipeline.forecast_query.query`; a bad parameter is 400, a region
without committed forecasts (or a store or product it does not forecast) 404, a broken
configuration or an unreadable lake 500, each with a one-line error.
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from demandops.core.errors import DemandOpsError
from demandops.core.limits import clip
from demandops.core.settings import load_settings
from demandops.pipeline.activities import RequestError
from demandops.pipeline.forecast_query import NotFound, query

bp = func.Blueprint()


def _json(body: Any, status: int) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


@bp.route(route="forecasts", methods=["GET"])
def get_forecasts(req: func.HttpRequest) -> func.HttpResponse:
    try:
        return _json(query(load_settings(), dict(req.params)), 200)
    except NotFound as exc:
        return _json({"error": clip(exc, 300)}, 404)
    except RequestError as exc:
        return _json({"error": clip(exc, 300)}, 400)
    except (DemandOpsError, OSError, ValueError) as exc:
        return _json({"error": f"forecasts unavailable: {clip(exc, 300)}"}, 500)
