"""`demandops dashboard`: a self-contained offline HTML site over the monitoring tables.

Two views, *ML Training* (backtest metrics per segment against the baselines, across model
versions) and *ML Monitor* (pipeline steps, scoring and staleness, drift, data quality,
forecasts against actuals), filtered by region, store format and velocity. One `index.html`
with the data, the CSS, the script and the charts (inline SVG) inside it: no network, no CDN.
"""

from __future__ import annotations

import argparse
import http.server
import io
import json
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from demandops.core.errors import DataError
from demandops.core.lake import Lake
from demandops.core.settings import Settings
from demandops.monitoring import challengers
from demandops.monitoring.tables import TABLES

COMMANDS = ("dashboard",)
HISTORY_RUNS = 20  # runs of model metrics shown across model versions
ASSETS = Path(__file__).with_name("dashboard_assets")


def add_command(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: Callable[..., None],
) -> None:
    """Add `dashboard [--out DIR] [--serve [--port N]]` to the CLI's subcommands."""
    dash = sub.add_parser(
        "dashboard", help="write the ML Training and ML Monitor dashboards (offline HTML)"
    )
    common(dash, regions=False)
    dash.add_argument("--out", metavar="DIR", default="dashboard", help="output folder")
    dash.add_argument("--serve", action="store_true", help="serve it on 127.0.0.1")
    dash.add_argument("--port", type=int, default=8050, help="port for --serve")


def run(args: argparse.Namespace, settings: Settings) -> None:
    lake = Lake(settings.environment.lake)
    life = settings.pipeline.lifecycle
    page = write(lake, Path(args.out), life.stale_after_days, life.challenger_alpha)
    print(f"dashboard: {page}")
    if args.serve:
        server = server_for(page.parent, args.port)
        print(f"serving on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


def data(lake: Lake, stale_after_days: int, alpha: float = 0.05) -> dict[str, Any]:
    """The latest run's tables, and the model metrics of the last HISTORY_RUNS runs."""
    runs = sorted(
        d for d in lake.list_dirs("monitoring/tables")
        if d.startswith("run=") and lake.dataset(f"monitoring/tables/{d}") is not None
    )  # fmt: skip
    if not runs:
        raise DataError(
            f"no monitoring tables in {lake.location('monitoring/tables')}: run the batch first"
        )
    folder = f"monitoring/tables/{runs[-1]}"
    latest = {n: _read(lake, runs[-1], n) for n in TABLES if lake.exists(f"{folder}/{n}.parquet")}
    history = pd.concat([_read(lake, r, "model_metrics") for r in runs[-HISTORY_RUNS:]])
    latest.setdefault("challenger_actuals", pd.DataFrame(columns=challengers.COLUMNS))
    out: dict[str, Any] = {name: _records(frame) for name, frame in latest.items()}
    out["history"] = _records(history)
    out["stale_after_days"] = stale_after_days
    out["challengers"] = _records(challengers.compare(latest["challenger_actuals"], alpha))
    return out


def render(payload: dict[str, Any]) -> str:
    """The whole page: template, style, script and the data as JSON, in one string."""
    text = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")
    template = (ASSETS / "index.html").read_text(encoding="utf-8")
    return (
        template.replace("/*STYLE*/", (ASSETS / "style.css").read_text(encoding="utf-8"))
        .replace("/*SCRIPT*/", (ASSETS / "app.js").read_text(encoding="utf-8"))
        .replace("/*DATA*/", text)
    )


def write(lake: Lake, out: Path, stale_after_days: int, alpha: float = 0.05) -> Path:
    """Write `out/index.html` and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    page.write_text(render(data(lake, stale_after_days, alpha)), encoding="utf-8")
    return page


def server_for(folder: Path, port: int) -> http.server.ThreadingHTTPServer:
    """An HTTP server for `folder` on 127.0.0.1 only (port 0: any free port)."""
    handler = partial(_QuietHandler, directory=str(folder))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve_in_background(folder: Path) -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    """Serve `folder` on a free loopback port from a daemon thread (stop with shutdown())."""
    server = server_for(folder, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def _read(lake: Lake, run: str, name: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(lake.read_bytes(f"monitoring/tables/{run}/{name}.parquet")))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return records
