"""OpenTelemetry spans and metrics of the pipeline steps, exported to App Insights, the console
or nowhere.

Every step runs inside `step(name, **attributes)`: one span (attributes `demandops.<key>`,
with `demandops.status` and `demandops.seconds`) and two metrics with the same low-cardinality
attributes, `demandops.step.duration` (a histogram, seconds) and `demandops.step.rows` (a
counter). The code only uses the OpenTelemetry API; `configure` installs an SDK:

- `azure`: `configure_azure_monitor` (azure-monitor-opentelemetry), when
  APPLICATIONINSIGHTS_CONNECTION_STRING is set (or `--telemetry azure`);
- `console`: spans and metrics as JSON on stderr (`--telemetry console`, DEMANDOPS_TELEMETRY);
- `off` (default): nothing is installed, the API's no-op spans cost next to nothing.

Worker processes configure themselves from the `Setup` passed with their task, and continue the
trace of the parent from a W3C trace-context carrier (`call`). Nothing secret is recorded:
every attribute value, error message and log record goes through `redact`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from demandops.core.errors import DemandOpsError

logger = logging.getLogger(__name__)

Mode = Literal["off", "console", "azure"]
MODES: tuple[Mode, ...] = ("off", "console", "azure")
CONNECTION_ENV = "APPLICATIONINSIGHTS_CONNECTION_STRING"
MODE_ENV = "DEMANDOPS_TELEMETRY"
PREFIX = "demandops."
# Offline-safe defaults for the Azure Monitor distro (set only where unset): no cloud resource
# detectors (they call the VM metadata service), every span kept, no statsbeat or control plane
AZURE_ENV_DEFAULTS = {
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
    "OTEL_TRACES_SAMPLER": "always_on",
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
}
# attributes that also label the metrics (the rest, e.g. versions and run ids, only the spans)
METRIC_KEYS = ("step", "region", "segment", "source", "status")
# environment variables whose values are secrets wherever they turn up
SECRET_ENV = (
    CONNECTION_ENV,
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
)
MASK = "***"
_SECRET_PATTERNS = [  # (pattern, replacement)
    (  # key=value pairs of connection strings
        re.compile(
            r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|InstrumentationKey|"
            r"Password|ClientSecret|ApiKey)=[^;\s'\"]+"
        ),
        rf"\1={MASK}",
    ),
    (re.compile(r"(?i)([?&]sig)=[^&\s'\"]+"), rf"\1={MASK}"),  # a SAS URL's or token's signature
    (re.compile(r"(?i)\b(Bearer) [A-Za-z0-9._~+/=-]+"), rf"\1 {MASK}"),
]
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"  # the CLI's, and a fresh worker's


def redact(text: str) -> str:
    """`text` without secrets: values of secret environment variables, connection-string keys,
    SAS signatures and bearer tokens become ***."""
    for value in _secret_values():
        text = text.replace(value, MASK)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _secret_values() -> list[str]:
    """The secret environment variables' values, and their connection-string keys' values
    (an instrumentation key also turns up alone), longest first."""
    values = []
    for name in SECRET_ENV:
        value = os.environ.get(name, "")
        values.append(value)
        values += [
            part.split("=", 1)[1] for part in value.split(";") if _SECRET_PATTERNS[0][0].match(part)
        ]
    return sorted((v for v in values if len(v) >= 8), key=len, reverse=True)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the message and any traceback of every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = record.exc_text = None
        record.msg, record.args = redact(message), None
        return True


@dataclass(frozen=True)
class Setup:
    """How a process exports telemetry; passed to worker processes with their tasks."""

    mode: Mode = "off"
    connection_string: str = field(default="", repr=False)

    @classmethod
    def resolve(cls, mode: str | None = None) -> Setup:
        """`mode` (a CLI flag) or DEMANDOPS_TELEMETRY, else `azure` when the App Insights
        connection string is set, else `off`."""
        chosen = mode or os.environ.get(MODE_ENV) or ""
        connection = os.environ.get(CONNECTION_ENV, "")
        if not chosen:
            chosen = "azure" if connection else "off"
        if chosen not in MODES:
            raise DemandOpsError(f"telemetry must be one of {', '.join(MODES)}, got {chosen!r}")
        if chosen == "azure" and not connection:
            raise DemandOpsError(f"telemetry azure needs {CONNECTION_ENV} (App Insights)")
        return cls(chosen, connection if chosen == "azure" else "")  # type: ignore[arg-type]


_state: dict[str, Any] = {"setup": Setup(), "pid": None, "providers": []}


def configure(setup: Setup) -> None:
    """Install the SDK for `setup` in this process (once) and redact the root logger's
    handlers; a process without any (a fresh pool worker) first gets the CLI's stderr handler.
    A second call in the same process changes nothing."""
    if _state["pid"] != os.getpid() and setup.mode != "off":
        if not logging.getLogger().handlers:  # a fresh (forkserver) worker logs as the CLI does
            logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
        if setup.mode == "azure":
            _configure_azure(setup.connection_string)
        else:
            _configure_console()
        _state.update(setup=setup, pid=os.getpid())
    for handler in logging.getLogger().handlers:  # the exporting log handler included
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def configure_host() -> Setup:
    """Configure a long-lived host (the Function app) from its environment. A bad setting
    (unknown mode, azure without or with a malformed connection string) is logged as an error
    and telemetry stays off, so the app still loads and serves its functions."""
    try:
        setup = Setup.resolve()
        configure(setup)
    except (DemandOpsError, ValueError) as error:
        logger.error("telemetry off: %s", redact(str(error)))
        setup = Setup()
        configure(setup)
    return setup


def _configure_azure(connection_string: str) -> None:
    for name, value in AZURE_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry.sdk.resources import Resource

    configure_azure_monitor(
        connection_string=connection_string,
        resource=Resource.create({"service.name": "demandops"}),
        disable_offline_storage=True,  # a failed export is dropped, not kept on disk for retry
        enable_live_metrics=False,
        enable_performance_counters=False,
        # our spans are the pipeline's steps; no span per HTTP call of the lake's SDK
        instrumentation_options={
            name: {"enabled": False}
            for name in ("azure_sdk", "requests", "urllib", "urllib3", "httpx")
        },
    )
    _state["providers"] = [trace.get_tracer_provider(), metrics.get_meter_provider()]


def _configure_console() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({"service.name": "demandops"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    reader = PeriodicExportingMetricReader(
        ConsoleMetricExporter(out=sys.stderr), export_interval_millis=3_600_000
    )
    meter_provider = MeterProvider(metric_readers=[reader], resource=resource)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _state["providers"] = [tracer_provider, meter_provider]


def current() -> Setup:
    """The setup this process exports with (`off` if it never configured telemetry)."""
    setup: Setup = _state["setup"] if _state["pid"] == os.getpid() else Setup()
    return setup


def flush() -> None:
    """Export what is buffered (spans, and the metrics collected so far)."""
    if _state["pid"] == os.getpid():
        for provider in _state["providers"]:
            provider.force_flush()


def pool_context(preload: list[str]) -> BaseContext | None:
    """The multiprocessing context of a worker pool: with telemetry on, a fresh forkserver
    (which imports the `preload` modules once), so that each worker configures its own
    exporters instead of sharing a forked copy of this process's (and its HTTP connections);
    otherwise the platform's default."""
    if current().mode == "off":
        return None
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    return ctx


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers, to continue the trace in another process."""
    headers: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(headers)
    return headers


def call(setup: Setup, headers: Mapping[str, str], fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn(*args)` in a worker: telemetry configured as `setup`, inside the trace of
    `headers`; what it recorded is exported before the result is returned."""
    configure(setup)
    token = otel_context.attach(TraceContextTextMapPropagator().extract(dict(headers)))
    try:
        return fn(*args)
    finally:
        otel_context.detach(token)
        flush()


@dataclass
class Step:
    """The attributes of a running step; `set` adds more (e.g. rows once they are known)."""

    attributes: dict[str, Any]

    def set(self, **attributes: Any) -> None:
        self.attributes.update(attributes)


@contextmanager
def step(name: str, root: bool = False, **attributes: Any) -> Iterator[Step]:
    """A span named `name` around a pipeline step, and its duration and rows as metrics.

    `root`: the span of a whole run (an App Insights request; the others are in-process
    dependencies). A step that raises is recorded as failed, its error message redacted."""
    span = _tracer().start_span(name, kind=SpanKind.SERVER if root else SpanKind.INTERNAL)
    record = Step({"step": name, **attributes})
    status, start = "completed", time.perf_counter()
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False,
                            set_status_on_exception=False):  # fmt: skip
            yield record
    except BaseException as exc:
        status = "failed"
        message = redact(f"{type(exc).__name__}: {exc}")
        span.set_status(Status(StatusCode.ERROR, message))
        span.add_event(
            "exception",
            {"exception.type": type(exc).__name__, "exception.message": redact(str(exc))},
        )
        raise
    finally:
        seconds = time.perf_counter() - start
        record.set(status=status, seconds=round(seconds, 3))
        if span.is_recording():
            span.set_attributes(_attributes(record.attributes))
        span.end()
        _record_metrics(record.attributes, seconds)


def _attributes(values: Mapping[str, Any]) -> dict[str, str | bool | int | float]:
    out: dict[str, str | bool | int | float] = {}
    for key, value in values.items():
        if value is None:
            continue
        if not isinstance(value, bool | int | float):
            value = redact(str(value))
        out[PREFIX + key] = value
    return out


_INSTRUMENTS: dict[str, Any] = {}


def _tracer() -> trace.Tracer:
    return trace.get_tracer("demandops")


def _record_metrics(values: Mapping[str, Any], seconds: float) -> None:
    if type(metrics.get_meter_provider()).__module__.startswith("opentelemetry.metrics"):
        return  # the API's own (no-op) provider: nothing would be recorded
    if not _INSTRUMENTS:
        meter = metrics.get_meter("demandops")
        _INSTRUMENTS["duration"] = meter.create_histogram(
            "demandops.step.duration", unit="s", description="seconds a pipeline step took"
        )
        _INSTRUMENTS["rows"] = meter.create_counter(
            "demandops.step.rows", unit="{row}", description="rows a pipeline step produced"
        )
    labels = _attributes({k: values[k] for k in METRIC_KEYS if k in values})
    _INSTRUMENTS["duration"].record(seconds, labels)
    rows = values.get("rows")
    if isinstance(rows, int) and not isinstance(rows, bool):
        _INSTRUMENTS["rows"].add(rows, labels)
