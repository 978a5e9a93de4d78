"""The Function App without the Functions host: its registrations and handlers called directly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import azure.functions as func
import pytest

import function_app
from functions.http_config import get_config

ROOT = Path(__file__).resolve().parent.parent


FUNCTIONS = function_app.app.get_functions()  # indexing twice is an error in azure-functions


def test_app_registers_the_config_route() -> None:
    routes = {f.get_function_name(): getattr(f.get_trigger(), "route", None) for f in FUNCTIONS}
    assert routes["get_config"] == "config"


def test_get_config_answers_with_the_configured_regions() -> None:
    req = func.HttpRequest(method="GET", url="/api/config", body=b"")
    handler = get_config.build().get_user_function()
    resp = handler(req)
    assert resp.status_code == 200
    body = json.loads(resp.get_body())
    assert body["environment"] == "dev" and len(body["regions"]) == 14


def test_get_config_reports_a_broken_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMANDOPS_CONFIG", str(tmp_path))
    handler = get_config.build().get_user_function()
    resp = handler(func.HttpRequest(method="GET", url="/api/config", body=b""))
    assert resp.status_code == 500
    assert "unknown environment" in json.loads(resp.get_body())["error"]


def _names(text: str) -> set[str]:
    return {
        re.split(r"[<>=\[ ]", line.strip())[0].lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    }


def test_runtime_requirements_match_the_package_and_leave_out_torch() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _names((ROOT / "requirements.txt").read_text())
    assert _names("\n".join(project["dependencies"])) <= runtime
    assert "torch" not in runtime


def test_function_app_routes_need_a_function_key() -> None:
    triggers = {f.get_function_name(): f.get_trigger() for f in FUNCTIONS}
    http = {n: t for n, t in triggers.items() if t.get_binding_name() == "httpTrigger"}
    assert {n: t.route for n, t in http.items()} == {
        "get_config": "config",
        "get_forecasts": "forecasts",
        "start_run": "runs",
        "get_run": "runs/{instance_id}",
    }
    assert all(t.auth_level == func.AuthLevel.FUNCTION for t in http.values())
    assert triggers["raw_arrived"].path == "lake/raw/{name}"
    assert triggers["raw_arrived"].get_dict_repr()["source"] == "EventGrid"
    assert {n for n, t in triggers.items() if t.get_binding_name() == "orchestrationTrigger"} == {
        "run_orchestrator",
        "region_orchestrator",
    }
    assert Path(function_app.__file__).read_text().count("def ") == 0  # registration only


@pytest.mark.parametrize(
    ("mode", "connection", "reason"),
    [
        ("azure", "", "telemetry azure needs APPLICATIONINSIGHTS_CONNECTION_STRING"),
        ("", "InstrumentationKey=not-a-key;Bogus", "Invalid"),
        ("loud", "", "telemetry must be one of off, console, azure"),
    ],
)
def test_app_loads_with_telemetry_off_when_its_setting_is_broken(
    mode: str, connection: str, reason: str
) -> None:
    """A bad telemetry setting is logged as an error; the app still indexes every function."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DEMANDOPS_TELEMETRY": mode}
    env["APPLICATIONINSIGHTS_CONNECTION_STRING"] = connection
    code = "import function_app; print(len(function_app.app.get_functions()))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(FUNCTIONS)
    assert "telemetry off:" in done.stderr and reason in done.stderr
    assert "not-a-key" not in done.stderr
