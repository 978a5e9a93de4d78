"""Telemetry: a span and metrics for every pipeline step (OpenTelemetry SDK in memory), the real
Azure Monitor exporter against a fake App Insights ingestion endpoint on 127.0.0.1, no secret in
any export or log, and failed steps in spans and the monitoring tables."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from demandops.core import telemetry
from demandops.core.errors import DataError, DemandOpsError
from demandops.core.lake import Lake
from demandops.core.settings import Settings
from demandops.monitoring import tables as monitoring
from demandops.pipeline.batch import run_batch
from tests.conftest import ROOT

SAS = "sv=2025-01-05&ss=b&srt=co&sp=rl&se=2030-01-01&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
ACCOUNT_KEY = "VGhpcyBpcyBhIHNlY3JldCBhY2NvdW50IGtleSBmb3IgdGVzdHM="
IKEY = "5b1c9d2e-7f3a-4c6b-9e8d-0a1b2c3d4e5f"
REFERENCE = ["stores", "products", "shoppers", "weather", "events"]
REGION_STEPS = {"condition", "features", "train", "register", "score"}


@pytest.fixture(scope="session")
def otel() -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    """The SDK in memory, as this test process's global providers (they can be set once)."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    delta = AggregationTemporality.DELTA
    reader = InMemoryMetricReader(preferred_temporality={Counter: delta, Histogram: delta})
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return spans, reader


@pytest.fixture
def recorded(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    spans, reader = otel
    spans.clear()
    reader.get_metrics_data()  # drop what earlier tests recorded
    return spans, reader


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return {k.removeprefix("demandops."): v for k, v in (span.attributes or {}).items()}


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def test_redact_masks_connection_strings_keys_sas_and_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "opaque-secret-token-value")
    text = (
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};"
        f" GET https://acct.blob.core.windows.net/lake/x.csv?{SAS} "
        f"InstrumentationKey={IKEY};IngestionEndpoint=https://in.example/ "
        "Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2ln token opaque-secret-token-value"
    )
    clean = telemetry.redact(text)
    for secret in (ACCOUNT_KEY, "c2VjcmV0LXNpZ25hdHVyZQ", IKEY, "eyJhbGciOi", "opaque-secret"):
        assert secret not in clean
    assert "AccountKey=***" in clean and "&sig=***" in clean and "Bearer ***" in clean
    assert "AccountName=acct" in clean and "sp=rl" in clean  # what is not secret stays


def test_every_step_has_a_span_and_metrics(
    settings: Settings, small_lake: Lake, recorded: tuple[InMemorySpanExporter, Any]
) -> None:
    spans, reader = recorded
    report = run_batch(settings, ["pnw"], progress=False)
    finished = spans.get_finished_spans()
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in finished:
        by_name.setdefault(span.name, []).append(span)

    (batch,) = by_name["batch"]
    assert batch.kind == trace.SpanKind.SERVER and batch.parent is None
    assert _attrs(batch) | {"run_id": report["run_id"], "status": "completed"} == _attrs(batch)
    assert _attrs(batch)["regions"] == 1 and _attrs(batch)["segments"] == 4
    trace_id = batch.context.trace_id
    assert {s.context.trace_id for s in finished} == {trace_id}  # one trace, the run's

    (region,) = by_name["region"]
    assert region.parent is not None and region.parent.span_id == batch.context.span_id
    seconds = report["regions"]["pnw"]["seconds"]
    for name in REGION_STEPS:
        (span,) = by_name[name]
        attrs = _attrs(span)
        assert span.parent is not None and span.parent.span_id == region.context.span_id
        assert attrs["region"] == "pnw" and attrs["status"] == "completed"
        assert attrs["seconds"] == pytest.approx(seconds[name], abs=0.01)
    features = small_lake.dataset(report["regions"]["pnw"]["paths"]["features"])
    assert features is not None
    assert _attrs(by_name["features"][0])["rows"] == features.manifest["rows"]

    sources = {(_attrs(s)["source"], _attrs(s).get("region")) for s in by_name["condition_source"]}
    region_sources = {(s, "pnw") for s in ("shipments", "returns", "promotions")}
    assert sources == {(s, None) for s in REFERENCE} | region_sources
    shipments = next(s for s in by_name["condition_source"] if _attrs(s)["source"] == "shipments")
    shipped = small_lake.dataset(report["regions"]["pnw"]["paths"]["shipments"])
    assert shipped is not None
    manifest = shipped.manifest
    assert _attrs(shipments)["rows"] == manifest["rows_out"]
    assert _attrs(shipments)["rows_rejected"] == manifest["rows_rejected"] > 0

    segments = {f"pnw.{s['store_format']}.{s['velocity']}": s for s in report["segments"]}
    for name in ("train_segment", "score_segment"):
        assert {_attrs(s)["segment"] for s in by_name[name]} == set(segments)
    for span in by_name["train_segment"]:
        attrs = _attrs(span)
        assert attrs["rows"] == segments[attrs["segment"]]["n_rows"]
        assert attrs["model"] == segments[attrs["segment"]]["model"]

    points = _points(reader)
    durations = {
        (p.attributes["demandops.step"], p.attributes.get("demandops.segment")): p
        for p in points["demandops.step.duration"]
    }
    assert {("batch", None), ("region", None), *((s, None) for s in REGION_STEPS)} <= set(durations)
    assert {("train_segment", s) for s in segments} <= set(durations)
    assert durations[("train", None)].sum == pytest.approx(seconds["train"], abs=0.01)
    rows = {
        (p.attributes["demandops.step"], p.attributes.get("demandops.segment")): p.value
        for p in points["demandops.step.rows"]
    }
    assert rows[("train_segment", "pnw.large.fast")] == segments["pnw.large.fast"]["n_rows"]
    assert "demandops.run_id" not in durations[("batch", None)].attributes  # low cardinality


def test_a_failed_step_is_in_its_span_and_the_steps_table(
    settings: Settings, small_lake: Lake, recorded: tuple[InMemorySpanExporter, Any]
) -> None:
    for f in small_lake.list_files("raw/shipments/region=tx"):  # tx lost its shipments feed
        Path(small_lake.full_path(f)).unlink()
    spans, _ = recorded
    with pytest.raises(DataError, match="no raw data in"):
        run_batch(settings, ["pnw", "tx"], until="train", progress=False)

    path = monitoring.latest(small_lake)
    assert path is not None  # written before the error was raised
    steps = pd.read_parquet(io.BytesIO(small_lake.read_bytes(f"{path}/steps.parquet")))
    tx = steps[steps["region"] == "tx"].set_index("step")
    assert list(tx.index) == ["condition"] and tx.loc["condition", "status"] == "failed"
    error = tx.loc["condition", "error"]
    assert isinstance(error, str) and error.startswith("DataError: no raw data in")
    pnw = steps[steps["region"] == "pnw"]
    assert set(pnw["step"]) == {"condition", "features", "train", "register"}
    assert (pnw["status"] == "completed").all() and (pnw["error"] == "").all()
    run = pd.read_parquet(io.BytesIO(small_lake.read_bytes(f"{path}/runs.parquet"))).iloc[0]
    assert run["failed_regions"] == 1 and run["segments"] == 4
    report = json.loads(small_lake.read_bytes(f"monitoring/runs/{run['run_id']}.json"))
    assert report["regions"]["tx"]["failed_step"] == "condition"

    failed = {(s.name, _attrs(s).get("region")): s for s in spans.get_finished_spans()}
    for key in (("condition", "tx"), ("region", "tx"), ("batch", None)):
        span = failed[key]
        assert span.status.status_code == trace.StatusCode.ERROR
        assert _attrs(span)["status"] == "failed"
    assert failed[("condition", "pnw")].status.status_code == trace.StatusCode.UNSET


def test_a_failed_region_error_is_raised_when_the_report_cannot_be_written(
    settings: Settings, small_lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    """The region's error, not the later one of writing the report, reaches the user."""
    for f in small_lake.list_files("raw/shipments/region=tx"):
        Path(small_lake.full_path(f)).unlink()
    runs = Path(small_lake.full_path("monitoring/runs"))
    shutil.rmtree(runs, ignore_errors=True)
    runs.parent.mkdir(parents=True, exist_ok=True)
    runs.write_text("a file where the run reports' folder belongs")
    with pytest.raises(DataError, match="no raw data in") as raised:
        run_batch(settings, ["pnw", "tx"], until="condition", progress=False)
    (note,) = raised.value.__notes__
    assert note.startswith("the run report was not written: ")
    assert note in caplog.text


def test_errors_and_logs_are_redacted(
    recorded: tuple[InMemorySpanExporter, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    spans, _ = recorded
    monkeypatch.setenv(telemetry.CONNECTION_ENV, f"InstrumentationKey={IKEY}")
    url = f"https://acct.blob.core.windows.net/lake/raw/x.csv?{SAS}"
    with pytest.raises(OSError), telemetry.step("condition_source", source=url):
        raise OSError(f"403 for {url} with AccountKey={ACCOUNT_KEY} ({IKEY})")
    (span,) = spans.get_finished_spans()
    exported = json.dumps(json.loads(span.to_json()))
    assert "c2VjcmV0LXNpZ25hdHVyZQ" not in exported and ACCOUNT_KEY not in exported
    assert IKEY not in exported and "sig=***" in exported and "AccountKey=***" in exported
    assert span.events[0].attributes["exception.type"] == "OSError"  # type: ignore[index]

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        telemetry.configure(telemetry.Setup())  # off: only the root handlers' redaction
        try:
            raise RuntimeError(f"lake {url}")
        except RuntimeError:
            logging.getLogger("demandops.x").exception("cannot read %s with key %s", url, IKEY)
    finally:
        root.removeHandler(handler)
    logged = stream.getvalue()
    assert "cannot read https://acct.blob" in logged and "RuntimeError: lake" in logged
    assert "c2VjcmV0LXNpZ25hdHVyZQ" not in logged and IKEY not in logged


def test_setup_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(telemetry.CONNECTION_ENV, raising=False)
    monkeypatch.delenv(telemetry.MODE_ENV, raising=False)
    assert telemetry.Setup.resolve().mode == "off"
    monkeypatch.setenv(telemetry.MODE_ENV, "console")
    assert telemetry.Setup.resolve().mode == "console"
    assert telemetry.Setup.resolve("off").mode == "off"
    with pytest.raises(DemandOpsError, match="telemetry azure needs APPLICATIONINSIGHTS"):
        telemetry.Setup.resolve("azure")
    monkeypatch.setenv(telemetry.MODE_ENV, "loud")
    with pytest.raises(DemandOpsError, match="telemetry must be one of off, console, azure"):
        telemetry.Setup.resolve()
    monkeypatch.delenv(telemetry.MODE_ENV)
    monkeypatch.setenv(telemetry.CONNECTION_ENV, f"InstrumentationKey={IKEY}")
    setup = telemetry.Setup.resolve()
    assert setup.mode == "azure" and IKEY not in repr(setup)


class _Ingestion(BaseHTTPRequestHandler):
    """App Insights' ingestion API (Breeze): POST /v2.1/track with a JSON array of envelopes
    (what azure-monitor-opentelemetry sends: not gzip'd, not JSON lines); keeps them all."""

    received: list[bytes]
    envelopes: list[dict[str, Any]]
    requests: list[tuple[str, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.path, self.headers.get("Content-Type", "")))
        self.received.append(body)
        items = json.loads(body)
        self.envelopes.extend(items)
        n = len(items)
        answer = json.dumps({"itemsReceived": n, "itemsAccepted": n, "errors": []})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def ingestion() -> Iterator[tuple[str, type[_Ingestion]]]:
    handler = type("Ingestion", (_Ingestion,), {"received": [], "envelopes": [], "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _data(envelope: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = envelope["data"]["baseData"]
    return data


def test_azure_monitor_exporter_sends_every_step_to_app_insights(
    settings: Settings,
    small_lake: Lake,
    tmp_path: Path,
    ingestion: tuple[str, type[_Ingestion]],
) -> None:
    endpoint, server = ingestion
    config = tmp_path / "config2"
    shutil.copytree(settings.config_dir, config)
    env_file = config / "environments" / "dev.yaml"
    env_file.write_text(env_file.read_text().replace("max_workers: 1", "max_workers: 2"))
    connection = f"InstrumentationKey={IKEY};IngestionEndpoint={endpoint}"
    storage = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINS"))}
    env |= {
        telemetry.CONNECTION_ENV: connection,
        "AZURE_STORAGE_CONNECTION_STRING": storage,
        "AZURE_STORAGE_SAS_TOKEN": SAS,
        "TMPDIR": str(tmp_path),  # anything the exporter would keep on disk lands here
    }
    done = subprocess.run(
        [sys.executable, "-m", "demandops.cli", "run", "--region", "pnw", "--quiet",
         "--config", str(config), "--lake", settings.environment.lake],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    envelopes = server.envelopes
    assert {path for path, _ in server.requests} == {"/v2.1/track"}
    assert {kind.split(";")[0] for _, kind in server.requests} == {"application/json"}
    assert all(body.lstrip().startswith(b"[") for body in server.received)  # plain JSON arrays
    kinds = {e["name"].rsplit(".", 1)[-1] for e in envelopes}
    assert {"Request", "RemoteDependency", "Metric"} <= kinds
    assert {e["iKey"] for e in envelopes} == {IKEY}
    spans = [e for e in envelopes if e["name"].endswith(("Request", "RemoteDependency"))]
    names = [_data(e)["name"] for e in spans]
    (request,) = [e for e in spans if e["name"].endswith("Request")]
    assert _data(request)["name"] == "batch" and _data(request)["success"] is True
    operation = request["tags"]["ai.operation.id"]
    assert {e["tags"]["ai.operation.id"] for e in spans} == {operation}  # one trace
    for step in ("region", *REGION_STEPS):
        assert names.count(step) == 1, step
    assert names.count("train_segment") == names.count("score_segment") == 4
    sources = [_data(e)["properties"]["demandops.source"] for e in spans
               if _data(e)["name"] == "condition_source"]  # fmt: skip
    # the reference is conditioned before the regions and looked up again for the report
    assert sorted(sources) == sorted([*REFERENCE * 2, "shipments", "returns", "promotions"])
    (region,) = [e for e in spans if _data(e)["name"] == "region"]
    assert region["tags"]["ai.operation.parentId"] == _data(request)["id"]  # across processes
    assert region["tags"]["ai.cloud.role"] == "demandops"
    dependencies = [_data(e) for e in spans if e["name"].endswith("RemoteDependency")]
    assert {d["type"] for d in dependencies} == {"InProc"}  # in-process steps
    train = next(_data(e) for e in spans if _data(e)["name"] == "train")
    assert train["properties"]["demandops.region"] == "pnw"
    assert train["properties"]["demandops.status"] == "completed"
    metric_names = {m["name"] for e in envelopes if e["name"].endswith("Metric")
                    for m in _data(e)["metrics"]}  # fmt: skip
    assert {"demandops.step.duration", "demandops.step.rows"} <= metric_names

    exported = b"".join(server.received).decode()
    captured = exported + done.stdout + done.stderr
    for secret in (connection, ACCOUNT_KEY, "c2VjcmV0LXNpZ25hdHVyZQ"):
        assert secret not in captured
    assert IKEY not in done.stdout + done.stderr
    assert exported.count(IKEY) == len(envelopes)  # only as each envelope's iKey
    assert not any(tmp_path.glob("**/opentelemetry-python-*"))  # no offline storage


def test_console_telemetry_prints_spans_and_metrics_on_stderr(
    settings: Settings, small_lake: Lake
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "demandops.cli", "condition", "--region", "pnw", "--quiet",
         "--telemetry", "console", "--config", str(settings.config_dir),
         "--lake", settings.environment.lake],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != telemetry.CONNECTION_ENV},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"name": "condition_source"' not in done.stdout  # the summary alone on stdout
    decoder, spans, text = json.JSONDecoder(), [], done.stderr
    position = text.find("{")
    while position != -1:
        item, end = decoder.raw_decode(text, position)
        spans.append(item)
        position = text.find("{", end)
    sources = {
        s["attributes"]["demandops.source"] for s in spans if s.get("name") == "condition_source"
    }
    assert sources == {*REFERENCE, "shipments", "returns", "promotions"}
    metrics_out = [s for s in spans if "resource_metrics" in s][-1]  # cumulative: the last
    names = {m["name"] for r in metrics_out["resource_metrics"] for sc in r["scope_metrics"]
             for m in sc["metrics"]}  # fmt: skip
    assert names == {"demandops.step.duration", "demandops.step.rows"}


def test_a_fresh_worker_logs_to_stderr_redacted_when_telemetry_is_on() -> None:
    """A forkserver pool worker starts without the CLI's log handler: configuring telemetry
    gives it one, with the CLI's format and the redaction."""
    code = (
        "import logging; from demandops.core import telemetry\n"
        "telemetry.configure(telemetry.Setup('console'))\n"
        f"logging.getLogger('ml.score').warning('segment failed: AccountKey={ACCOUNT_KEY}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WARNING ml.score: segment failed: AccountKey=***" in done.stderr
    assert ACCOUNT_KEY not in done.stderr
