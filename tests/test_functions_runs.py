"""The run API and the blob trigger without the Functions host: handlers called directly, the
durable client built from its binding JSON and answered by a fake Durable extension on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import azure.functions as func
import pytest
from azure.durable_functions.models.utils import http_utils

from demandops.core.lake import Lake
from demandops.core.settings import Settings
from demandops.pipeline.activities import run_instance_id
from functions.blob_arrival import raw_arrived
from functions.http_runs import INSTANCE_ID, get_run, parse_run_request, start_run


class Extension(BaseHTTPRequestHandler):
    """The Durable extension's RPC endpoints, as the client calls them."""

    started: ClassVar[list[tuple[str, Any]]] = []
    instances: ClassVar[dict[str, dict[str, Any]]] = {}
    asked: ClassVar[list[str]] = []  # the paths of the status requests
    failure: ClassVar[tuple[int, bytes] | None] = None  # status and body of a failing extension
    raced: ClassVar[bool] = False  # another trigger starts the same instance just before a POST

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        name, _, instance = self.path.split("/orchestrators/")[1].partition("/")
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if isinstance(payload, str):  # the client sends its input JSON-encoded, as a string
            payload = json.loads(payload)
        if Extension.raced:
            self.instances[instance] = {"instanceId": instance, "runtimeStatus": "Running"}
        # overridableExistingInstanceStates NonRunningStates (host.json): a running one stays
        if self.instances.get(instance, {}).get("runtimeStatus") in ("Pending", "Running"):
            message = (
                f"An Orchestration instance with the status Running already exists: {instance}"
            )
            self._send(400, {"Message": "error", "ExceptionMessage": message})
            return
        self.started.append((name, payload))
        self.instances[instance] = {"instanceId": instance, "runtimeStatus": "Pending"}
        self._send(202, {"id": instance})

    def do_GET(self) -> None:
        self.asked.append(self.path)
        if self.failure is not None:
            self.send_response(self.failure[0])
            self.send_header("Content-Length", str(len(self.failure[1])))
            self.end_headers()
            self.wfile.write(self.failure[1])
            return
        instance = self.path.split("/instances/")[1].split("?")[0]
        if instance in self.instances:
            self._send(200, self.instances[instance])
        else:
            self._send(404, {})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def client_json() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Extension)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}/runtime/webhooks/durabletask/"
    mgmt = base + "instances/INSTANCEID"
    Extension.started.clear()
    Extension.asked.clear()
    Extension.instances.clear()
    Extension.failure = None
    Extension.raced = False
    try:
        yield json.dumps(
            {
                "taskHubName": "hub",
                "creationUrls": {},
                "managementUrls": {
                    "id": "INSTANCEID",
                    "statusQueryGetUri": mgmt + "?code=k",
                    "sendEventPostUri": mgmt + "/raiseEvent/{eventName}?code=k",
                    "terminatePostUri": mgmt + "/terminate?reason={text}&code=k",
                    "purgeHistoryDeleteUri": mgmt + "?code=k",
                },
                "rpcBaseUrl": base,
            }
        )
    finally:
        server.shutdown()
        server.server_close()


def _call(handler: Any, req: func.HttpRequest, client_json: str) -> func.HttpResponse:
    async def call() -> func.HttpResponse:
        try:
            # the host passes the client binding as JSON; the durable middleware builds the client
            function = handler.build().get_user_function()
            response: func.HttpResponse = await function(req=req, client=client_json)
            return response
        finally:
            await http_utils._close_session()  # the client's session belongs to this loop

    return asyncio.run(call())


def _post(body: bytes) -> func.HttpRequest:
    return func.HttpRequest(method="POST", url="https://app.example/api/runs", body=body)


@pytest.fixture
def configured(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DEMANDOPS_CONFIG", str(settings.config_dir))
    return settings


def test_start_run_answers_202_with_status_urls(configured: Settings, client_json: str) -> None:
    body = json.dumps({"regions": ["pnw", "tx"], "pipeline": "score", "as_of": "2026-11-23"})
    resp = _call(start_run, _post(body.encode()), client_json)
    assert resp.status_code == 202
    urls = json.loads(resp.get_body())
    assert urls["id"] == run_instance_id(configured, "2026-11-23")
    assert urls["statusQueryGetUri"].startswith("https://app.example/runtime/webhooks/durabletask")
    assert resp.headers["Location"] == urls["statusQueryGetUri"]
    [(name, plan)] = Extension.started
    assert name == "run_orchestrator"
    assert plan["regions"] == ["pnw", "tx"] and plan["pipeline"] == "score"
    assert plan["as_of"] == "2026-11-23"
    assert plan["poll_seconds"] == configured.environment.orchestration.poll_seconds


def test_a_second_start_of_the_same_week_answers_already_running(
    configured: Settings, client_json: str
) -> None:
    week = json.dumps({"pipeline": "weekly", "as_of": "2026-11-23"}).encode()
    first = json.loads(_call(start_run, _post(week), client_json).get_body())
    assert first["id"].startswith("run-dev-") and first["id"].endswith("-2026-11-23")
    again = _call(start_run, _post(b'{"pipeline": "train", "as_of": "2026-11-23"}'), client_json)
    assert again.status_code == 200
    body = json.loads(again.get_body())
    assert body["status"] == "already_running" and body["id"] == first["id"]
    assert body["statusQueryGetUri"] == first["statusQueryGetUri"]  # ADF polls it as before
    assert len(Extension.started) == 1
    other = json.dumps({"pipeline": "weekly", "as_of": "2026-11-30"}).encode()
    assert _call(start_run, _post(other), client_json).status_code == 202  # another week
    Extension.instances[first["id"]]["runtimeStatus"] = "Completed"
    assert _call(start_run, _post(week), client_json).status_code == 202  # a rerun when done
    assert len(Extension.started) == 3


def test_a_start_racing_another_trigger_answers_already_running(
    configured: Settings, client_json: str
) -> None:
    Extension.raced = True  # not running when asked, running when started: the extension refuses
    resp = _call(start_run, _post(b'{"pipeline": "weekly"}'), client_json)
    assert resp.status_code == 200
    assert json.loads(resp.get_body())["status"] == "already_running"
    assert Extension.started == []


def test_the_instance_id_is_one_per_lake_environment_and_week(settings: Settings) -> None:
    monday = run_instance_id(settings, None, date(2026, 11, 23))
    assert run_instance_id(settings, None, date(2026, 11, 29)) == monday  # the same week
    assert run_instance_id(settings, "2026-11-23") == monday
    assert run_instance_id(settings, None, date(2026, 11, 30)) != monday
    other = settings.model_copy(
        update={"environment": settings.environment.model_copy(update={"lake": "/elsewhere"})}
    )
    assert run_instance_id(other, "2026-11-23") != monday
    assert INSTANCE_ID.fullmatch(monday)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"pipeline": "weekly", "regions": ["pnw", "atlantis"]}', "unknown region atlantis"),
        (b'{"pipeline": "weekly"', "body is not valid JSON"),
        (b'["weekly"]', "body must be a JSON object"),
        (b'{"pipeline": "nightly"}', "pipeline must be one of train, score, weekly"),
        (b'{"regions": ["pnw"]}', "pipeline must be one of"),
        (b'{"pipeline": "train", "regions": "pnw"}', "regions must be a list of region ids"),
        (b'{"pipeline": "train", "region": ["pnw"]}', "unknown field region"),
        (b'{"pipeline": "train", "as_of": "next monday"}', "as_of must be a date"),
    ],
)
def test_bad_requests_are_400_saying_what(
    configured: Settings, client_json: str, body: bytes, message: str
) -> None:
    resp = _call(start_run, _post(body), client_json)
    assert resp.status_code == 400
    assert message in json.loads(resp.get_body())["error"]
    assert Extension.started == []


def test_default_request_runs_every_configured_region(settings: Settings) -> None:
    plan = parse_run_request(b'{"pipeline": "weekly"}', settings)
    assert plan["regions"] == settings.region_ids()


def test_get_run_reports_status_and_region_progress(client_json: str) -> None:
    """A region's state comes from its own sub-orchestration while it runs (here tx waits for a
    worker, "Queued"), the run's own word otherwise (ny's status cannot be read)."""
    regions = {"pnw": "Completed", "tx": "Submitting", "ny": "Submitting"}
    progress = {"done": 1, "total": 3, "regions": regions}
    Extension.instances["abc123:tx"] = {
        "name": "region_orchestrator",
        "instanceId": "abc123:tx",
        "runtimeStatus": "Running",
        "customStatus": {"region": "tx", "state": "Queued", "polls": 2, "run_id": "abc123:tx"},
        "createdTime": "2026-11-23T06:00:00Z",
        "lastUpdatedTime": "2026-11-23T06:05:00Z",
    }
    Extension.instances["abc123"] = {
        "name": "run_orchestrator",
        "instanceId": "abc123",
        "runtimeStatus": "Running",
        "customStatus": progress,
        "output": None,
        "createdTime": "2026-11-23T06:00:00Z",
        "lastUpdatedTime": "2026-11-23T06:05:00Z",
    }
    req = func.HttpRequest(
        method="GET", url="/api/runs/abc123", body=b"", route_params={"instance_id": "abc123"}
    )
    resp = _call(get_run, req, client_json)
    assert resp.status_code == 200
    body = json.loads(resp.get_body())
    assert body["status"] == "Running" and body["progress"] == {
        **progress,
        "regions": {**regions, "tx": "Queued"},
    }
    assert any("abc123:tx" in path or "abc123%3Atx" in path for path in Extension.asked)

    missing = func.HttpRequest(
        method="GET", url="/api/runs/nope", body=b"", route_params={"instance_id": "nope"}
    )
    assert _call(get_run, missing, client_json).status_code == 404


def _get(instance_id: str) -> func.HttpRequest:
    return func.HttpRequest(
        method="GET", url="/api/runs/x", body=b"", route_params={"instance_id": instance_id}
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"[" * 10_000 + b"]" * 10_000, 400, "body is nested 10000 deep"),
        (b"[" * 100_000 + b"]" * 100_000, 413, "body is 200000 bytes, more than the limit"),
        (b'{"pipeline": "weekly", "as_of": "' + b"x" * 100_000 + b'"}', 413, "more than the limit"),
        (b'{"pipeline": "weekly", "regions": ["' + b"r" * 60_000 + b'"]}', 400, "unknown region"),
        (json.dumps({f"f{i}": 1 for i in range(500)}).encode(), 400, "… and 480 more"),
    ],
)
def test_hostile_bodies_get_short_answers(
    configured: Settings, client_json: str, body: bytes, status: int, message: str
) -> None:
    resp = _call(start_run, _post(body), client_json)
    assert resp.status_code == status
    error = json.loads(resp.get_body())["error"]
    assert message in error and len(resp.get_body()) < 2500
    assert Extension.started == []


def test_error_bodies_cut_names_at_100_characters_and_lists_at_20(
    configured: Settings, client_json: str
) -> None:
    regions = ["pnw", *(f"{'x' * 500}{i}" for i in range(30))]
    body = json.dumps({"pipeline": "weekly", "regions": regions}).encode()
    error = json.loads(_call(start_run, _post(body), client_json).get_body())["error"]
    named = error.split("unknown region ")[1].split("; known")[0]
    assert named.count("x" * 100 + "…") == 20 and "x" * 101 not in named
    assert named.endswith("… and 10 more")


@pytest.mark.parametrize("bad", ["../../instances", "..", "a/b", "a?x=1", "a#b", "%2e%2e", "@x",
                                 "a\\b", "x" * 101, ""])  # fmt: skip
def test_instance_ids_outside_the_durable_format_are_400(client_json: str, bad: str) -> None:
    resp = _call(get_run, _get(bad), client_json)
    assert resp.status_code == 400 and "not a run id" in json.loads(resp.get_body())["error"]
    assert Extension.asked == []  # no URL was built from it


@pytest.mark.parametrize(
    ("failure", "status", "message"),
    [
        ((500, b'{"Message": "An error has occurred."}'), 502, "An error has occurred."),
        ((503, b"{}"), 502, "unexpected status code 503"),
        ((503, b"Service Unavailable"), 502, "the Durable extension failed"),
        ((200, b"<html>gateway</html>"), 502, "the Durable extension failed"),
    ],
)
def test_durable_extension_failures_are_502_not_no_run(
    client_json: str, failure: tuple[int, bytes], status: int, message: str
) -> None:
    Extension.failure = failure
    resp = _call(get_run, _get("abc123"), client_json)
    assert resp.status_code == status and message in json.loads(resp.get_body())["error"]
    assert len(Extension.asked) == 1


def test_an_unreachable_durable_extension_is_503(client_json: str) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = client_json.replace(json.loads(client_json)["rpcBaseUrl"].split("/runtime")[0],
                               f"http://127.0.0.1:{port}")  # fmt: skip
    resp = _call(get_run, _get("abc123"), dead)
    assert resp.status_code == 503
    assert "the Durable extension is unreachable" in json.loads(resp.get_body())["error"]


def _blob(lake: Lake, path: str) -> func.InputStream:
    data = lake.read_bytes(path)
    return func.blob.InputStream(data=data, name=f"lake/{path}", length=len(data))


def test_blob_arrival_conditions_the_region(configured: Settings, small_lake: Lake) -> None:
    path = next(f for f in small_lake.list_files("raw/shipments/region=pnw"))
    raw_arrived.build().get_user_function()(_blob(small_lake, path))
    assert small_lake.list_files("conditioned/shipments/region=pnw")
    assert small_lake.list_files("conditioned/stores")
    assert not small_lake.list_files("conditioned/shipments/region=tx")


def test_poison_blob_is_quarantined_once_and_left_in_place(
    configured: Settings, small_lake: Lake
) -> None:
    bad = "raw/shipments/region=tx/late_export.csv"
    small_lake.write_bytes(bad, b"\xff\xfe\x00garbage\x00\xff")
    handler = raw_arrived.build().get_user_function()
    for _ in range(2):  # a redelivery finds it quarantined already
        handler(_blob(small_lake, bad))
    [reason] = [f for f in small_lake.list_files("quarantine/poison") if f.endswith("reason.txt")]
    assert reason.startswith(f"quarantine/poison/{bad}/v=")
    assert f"cannot read {bad}" in small_lake.read_bytes(reason).decode()
    assert small_lake.read_bytes(bad) == b"\xff\xfe\x00garbage\x00\xff"
    # the region's other files are conditioned; the poison file is listed, not read
    [manifest] = [
        f for f in small_lake.list_files("conditioned/shipments/region=tx") if "manifest" in f
    ]
    assert [u["file"] for u in small_lake.read_json(manifest)["unreadable"]] == [bad]

    small_lake.write_bytes("raw/inventory/2026.csv", b"zip,temp\n")
    handler(_blob(small_lake, "raw/inventory/2026.csv"))
    manifest = small_lake.read_json(
        next(f for f in small_lake.list_files("quarantine/poison/raw/inventory") if "manifest" in f)
    )
    assert "unknown source 'inventory'" in manifest["reason"]


def test_activities_run_a_region_through_the_configured_backend(
    configured: Settings, small_lake: Lake
) -> None:
    """The activity functions as the host calls them, on the dev environment's local backend."""
    import time

    from functions import activities as fa

    fa.activities.cache_clear()
    try:

        def call(fn: Any, arg: Any) -> Any:
            return fn.build().get_user_function()(arg)

        plan = parse_run_request(b'{"pipeline": "train", "regions": ["pnw"]}', configured)
        reference = call(fa.prepare_run, plan)
        assert small_lake.dataset(reference["stores"]) is not None
        job = {**plan, "region": "pnw", "reference": reference, "run": "fn1"}
        run_id = call(fa.submit_region, job)
        assert call(fa.submit_region, job) == run_id  # a retried submission is the same run
        deadline = time.monotonic() + 60
        while (status := call(fa.region_status, run_id))["state"] == "Running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert status == {"state": "Completed", "detail": ""}
        outputs = call(fa.region_outputs, run_id)
        assert outputs["region"] == "pnw" and small_lake.dataset(outputs["paths"]["model"])
        call(fa.cancel_region, run_id)  # a finished run stays finished
        assert call(fa.region_status, run_id)["state"] == "Completed"
    finally:
        fa.activities().backend.close()  # type: ignore[attr-defined]
        fa.activities.cache_clear()
