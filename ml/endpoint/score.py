"""Azure ML online endpoint scoring script: forecasts from the registered champions.

`init` loads `models:/demand.<segment>@champion` (MLflow pyfunc models, ml/pyfunc.py) from the
registry at MLFLOW_TRACKING_URI: the segments of DEMANDOPS_SEGMENTS (comma-separated) or every
`demand.*` model with a champion. `run` answers a JSON request
`{"segment": "<region>.<format>.<velocity>", "rows": [{feature: value, ...}, ...]}` with
`{"segment", "model_version", "forecast": [...]}`, or `{"error": "..."}` in one line. Values
are cast to the model's signature (JSON has no int/float distinction). Needs only mlflow and
the packages of the model's environment, not this project.
"""

from __future__ import annotations

import json
import os
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient

PREFIX = "demand."
MAX_ROWS = 10_000
MODELS: dict[str, tuple[str, Any]] = {}  # segment -> (champion version, pyfunc model)


def init() -> None:
    """Load every served segment's champion."""
    client = MlflowClient()
    wanted = [s.strip() for s in os.environ.get("DEMANDOPS_SEGMENTS", "").split(",") if s.strip()]
    if not wanted:
        found = client.search_registered_models(filter_string=f"name LIKE '{PREFIX}%'")
        wanted = [m.name.removeprefix(PREFIX) for m in found if "champion" in m.aliases]
    MODELS.clear()
    for segment in sorted(wanted):
        version = client.get_model_version_by_alias(PREFIX + segment, "champion").version
        model = mlflow.pyfunc.load_model(f"models:/{PREFIX}{segment}/{version}")
        MODELS[segment] = (str(version), model)


def run(raw_data: str) -> dict[str, Any]:
    """Forecasts for the rows of one request (see the module docstring)."""
    try:
        request = json.loads(raw_data)
        segment, rows = request["segment"], request["rows"]
    except (ValueError, KeyError, TypeError):
        return {"error": 'the body must be JSON {"segment": "...", "rows": [{...}, ...]}'}
    if segment not in MODELS:
        return {"error": f"no champion served for segment {str(segment)[:100]!r}"}
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_ROWS:
        return {"error": f"rows must be a list of 1 to {MAX_ROWS} feature rows"}
    version, model = MODELS[segment]
    try:
        forecast = model.predict(_typed(pd.DataFrame(rows), model))
    except Exception as exc:  # a row the model refuses: say why, in one line
        return {"error": f"cannot forecast these rows: {str(exc).splitlines()[0][:300]}"}
    return {"segment": segment, "model_version": version, "forecast": [float(v) for v in forecast]}


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
