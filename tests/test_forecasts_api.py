"""GET /api/forecasts: the Function App's handler against the lake a real batch committed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from functions.http_forecasts import get_forecasts

HANDLER = get_forecasts.build().get_user_function()


def _get(params: dict[str, str]) -> tuple[int, Any]:
    req = func.HttpRequest(method="GET", url="/api/forecasts", body=b"", params=params)
    resp = HANDLER(req)
    return resp.status_code, json.loads(resp.get_body())


@pytest.fixture
def served(served_lake: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEMANDOPS_CONFIG", str(served_lake / "config"))
    return served_lake / "lake"


def test_latest_forecasts_of_a_store_and_product_with_their_champion(served: Path) -> None:
    status, body = _get({"region": "pnw"})
    assert status == 200, body
    first = body["forecasts"][0]
    store, product = first["store_id"], first["product_id"]
    status, one = _get({"region": "pnw", "store": store, "product": product, "weeks": "2"})
    assert status == 200, one
    assert [r["horizon"] for r in one["forecasts"]] == [1, 2]
    assert one["dataset"] == body["dataset"] and one["dataset"].startswith("forecasts/as_of=")
    runs = sorted((served / "monitoring" / "runs").iterdir())
    assert (
        json.loads(runs[-1].read_text())["regions"]["pnw"]["paths"]["forecasts"] == one["dataset"]
    )
    row = one["forecasts"][0]
    assert row["model_version"] and row["fallback"] == ""  # the champion forecast it
    assert row["model"] in ("ensemble", "lasso", "baseline") and row["forecast"] >= 0
    assert row["p10"] <= row["p90"]


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({}, 400, "region must be a configured region id"),
        ({"region": "x" * 5000}, 400, "(5000 characters)"),
        ({"region": "pnw", "weeks": "0"}, 400, "weeks must be a whole number from 1 to"),
        ({"region": "pnw", "weeks": "1e9"}, 400, "weeks must be"),
        ({"region": "pnw", "colour": "red"}, 400, "unknown parameter colour"),
        ({"region": "pnw", "store": "S" * 300}, 404, "(300 characters)"),
        ({"region": "tx"}, 404, "no committed forecasts for region tx"),
    ],
)
def test_bad_requests_get_a_short_answer(
    served: Path, params: dict[str, str], status: int, says: str
) -> None:
    got, body = _get(params)
    assert got == status and says in body["error"], body
    assert len(body["error"]) < 400


def test_a_broken_configuration_is_a_500(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMANDOPS_CONFIG", str(tmp_path))
    status, body = _get({"region": "pnw"})
    assert status == 500 and "forecasts unavailable" in body["error"]
