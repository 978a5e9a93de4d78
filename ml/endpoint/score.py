"""Azure ML online endpoint scoring script: forecasts from the registered champions.

`init` loads `models:/demand.<segment>@champion` (MLflow pyfunc models, ml/pyfunc.py) from the
registry at MLFLOW_TRACKING_URI: the segments of DEMANDOPS_SEGMENTS (comma-separated) or every
`demand.*` model with a champion. `run` answers a JSON request
`{"segment": "<region>.<format>.<velocity>", "rows": [{feature: value, ...}, ...]}` with
`{"segment", "model_version", "forecast": [...]}`, or `{"error": "..."}` in one line with
status 400 (a malformed request or rows the model refuses) or 404 (no champion served for the
segment). Values are cast to the model's signature (JSON has no int/float distinction). Needs
only mlflow and the packages of the model's environment, not this project: under Azure ML's
HTTP server (ml/endpoint/environment/) `run` answers an HTTP response with that status, without
it (in-process) the answer alone; `answer` gives both.

A promotion or rollback is served without a restart: at most every DEMANDOPS_RELOAD_SECONDS
(60; 0: every request) a request first re-reads the champion aliases and loads the segments
whose alias moved (and, with DEMANDOPS_SEGMENTS empty, new champions). One thread re-reads while
the others serve the loaded models; if the registry cannot be read they stay served.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient

try:  # the server Azure ML runs this script under; absent in-process (the project's own venv)
    from azureml_inference_server_http.api.aml_response import AMLResponse
except ImportError:
    AMLResponse = None

PREFIX = "demand."
MAX_ROWS = 10_000
RELOAD_ENV = "DEMANDOPS_RELOAD_SECONDS"
DEFAULT_RELOAD_SECONDS = 60.0
MODELS: dict[str, tuple[str, Any]] = {}  # segment -> (champion version, pyfunc model)
_RELOAD = {"every": DEFAULT_RELOAD_SECONDS, "due": 0.0}  # seconds; time.monotonic() of next
_LOCK = threading.Lock()  # held by the one thread re-reading the aliases
log = logging.getLogger(__name__)


def init() -> None:
    """Load every served segment's champion."""
    every = _reload_seconds()
    client = MlflowClient()
    with _LOCK:
        MODELS.clear()
        for segment in _wanted(client):
            _load_champion(client, segment)
        _RELOAD.update(every=every, due=time.monotonic() + every)


def run(raw_data: str) -> Any:
    """The answer to one request (see the module docstring): under the server, as an HTTP
    response with its status."""
    body, status = answer(raw_data)
    return body if AMLResponse is None else AMLResponse(body, status, json_str=True)


def answer(raw_data: str) -> tuple[dict[str, Any], int]:
    """Forecasts for the rows of one request, or an error, and the HTTP status."""
    try:
        request = json.loads(raw_data)
        segment, rows = request["segment"], request["rows"]
    except (ValueError, KeyError, TypeError):
        return {"error": 'the body must be JSON {"segment": "...", "rows": [{...}, ...]}'}, 400
    _refresh()
    served = MODELS.get(segment) if isinstance(segment, str) else None
    if served is None:
        return {"error": f"no champion served for segment {str(segment)[:100]!r}"}, 404
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_ROWS:
        return {"error": f"rows must be a list of 1 to {MAX_ROWS} feature rows"}, 400
    version, model = served
    try:
        forecast = model.predict(_typed(pd.DataFrame(rows), model))
    except Exception as exc:  # a row the model refuses: say why, in one line
        return {"error": f"cannot forecast these rows: {str(exc).splitlines()[0][:300]}"}, 400
    body = {"segment": segment, "model_version": version, "forecast": [float(v) for v in forecast]}
    return body, 200


def _reload_seconds() -> float:
    """DEMANDOPS_RELOAD_SECONDS as a number of seconds >= 0 (default 60)."""
    text = os.environ.get(RELOAD_ENV, "").strip()
    try:
        seconds = float(text) if text else DEFAULT_RELOAD_SECONDS
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"{RELOAD_ENV} must be a number of seconds >= 0, not {text[:50]!r}")
    return seconds


def _wanted(client: MlflowClient) -> list[str]:
    """The segments to serve: DEMANDOPS_SEGMENTS, or every `demand.*` model with a champion."""
    wanted = [s.strip() for s in os.environ.get("DEMANDOPS_SEGMENTS", "").split(",") if s.strip()]
    if not wanted:
        found = client.search_registered_models(filter_string=f"name LIKE '{PREFIX}%'")
        wanted = [m.name.removeprefix(PREFIX) for m in found if "champion" in m.aliases]
    return sorted(wanted)


def _load_champion(client: MlflowClient, segment: str) -> None:
    """Serve `segment`'s current champion, loading it unless it is the version served."""
    version = str(client.get_model_version_by_alias(PREFIX + segment, "champion").version)
    if segment in MODELS and MODELS[segment][0] == version:
        return
    model = mlflow.pyfunc.load_model(f"models:/{PREFIX}{segment}/{version}")
    MODELS[segment] = (version, model)  # one assignment: a reader sees the old or the new pair
    log.info("serving %s%s version %s", PREFIX, segment, version)


def _refresh() -> None:
    """Re-read the champion aliases if due, in one thread at a time (the others do not wait);
    a segment that cannot be re-read keeps its loaded model, with a warning."""
    if time.monotonic() < _RELOAD["due"] or not _LOCK.acquire(blocking=False):
        return
    try:
        _RELOAD["due"] = time.monotonic() + _RELOAD["every"]
        client = MlflowClient()
        for segment in _wanted(client):
            try:
                _load_champion(client, segment)
            except Exception as exc:  # registry unreachable, alias removed, model unloadable
                log.warning("%s: keeps version %s: %s", segment, _served(segment), _line(exc))
    except Exception as exc:  # the segment list itself unreadable
        log.warning("champions not re-read, the loaded ones stay served: %s", _line(exc))
    finally:
        _LOCK.release()


def _served(segment: str) -> str:
    return MODELS[segment][0] if segment in MODELS else "none"


def _line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _typed(frame: pd.DataFrame, model: Any) -> pd.DataFrame:
    """`frame` with every column of the model's input schema cast to the schema's type."""
    schema = model.metadata.get_input_schema()
    for column, kind in zip(schema.input_names(), schema.pandas_types(), strict=True):
        if column not in frame:
            continue  # a missing column is the schema check's to report
        if str(kind).startswith("datetime"):
            frame[column] = pd.to_datetime(frame[column])
        else:
            frame[column] = frame[column].astype(kind)
    return frame
