"""The monitoring tables of one run: a small star schema a BI tool reads straight from the lake.

`tables` is a pure function from the run report and the lake (which it only reads) to frames;
`write` commits them as Parquet and CSV under `monitoring/tables/run=<run id>/`, manifest last.
The schema is documented in docs/monitoring.md.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd

from demandops.core.hashing import digest
from demandops.core.lake import Lake, frame_to_csv_bytes
from demandops.core.pipeline_config import DriftConfig
from demandops.monitoring import challengers
from demandops.monitoring.drift import feature_drift
from ml.metrics import REPORTED

TABLES = (
    "runs",
    "segments",
    "steps",
    "model_metrics",
    "sources",
    "data_quality",
    "staleness",
    "forecast_actuals",
    "drift",
    "challenger_actuals",
)
SEGMENT_KEY = ["region", "store_format", "velocity"]
REGION_SOURCES = ("shipments", "returns", "promotions")


def tables(report: dict[str, Any], lake: Lake, drift: DriftConfig) -> dict[str, pd.DataFrame]:
    """Every monitoring table of the run `report`, each with the run id as its first column."""
    out = {
        "segments": _segments(report),
        "steps": _steps(report),
        "model_metrics": _model_metrics(report),
        "sources": _sources(report, lake),
        "data_quality": _data_quality(report, lake),
        "staleness": _staleness(report, lake),
        "forecast_actuals": _forecast_actuals(report, lake),
        "drift": _drift(report, lake, drift),
        "challenger_actuals": challengers.actuals(report, lake),
    }
    out["runs"] = _runs(report, out)
    for name, frame in out.items():
        frame.insert(0, "run_id", report["run_id"])
        out[name] = frame
    return {name: out[name] for name in TABLES}


def write(lake: Lake, report: dict[str, Any], drift: DriftConfig) -> dict[str, Any]:
    """Commit the run's monitoring tables (Parquet and CSV of each, manifest last); return
    their location and the drift alerts, for the run report."""
    frames = tables(report, lake, drift)
    files: dict[str, bytes] = {}
    for name, frame in frames.items():
        files[f"{name}.csv"] = frame_to_csv_bytes(frame)
        files[f"{name}.parquet"] = _parquet(frame)
    path = f"monitoring/tables/run={report['run_id']}"
    manifest = {
        "version": digest({n: files[f"{n}.csv"].decode() for n in frames}),
        "run_id": report["run_id"],
        "rows": {n: len(f) for n, f in frames.items()},
    }
    lake.commit_dataset(path, files, manifest)
    alerts = frames["drift"][frames["drift"]["alert"].astype(bool)]
    return {
        "monitoring_path": lake.location(path),
        "drift_alerts": alerts[["region", "feature", "reason"]].to_dict("records"),
    }


def latest(lake: Lake) -> str | None:
    """The folder of the most recent run's committed tables (run ids sort by start time)."""
    runs = [d for d in lake.list_dirs("monitoring/tables") if d.startswith("run=")]
    committed = [d for d in runs if lake.dataset(f"monitoring/tables/{d}") is not None]
    return f"monitoring/tables/{max(committed)}" if committed else None


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _segment_name(s: dict[str, Any]) -> str:
    return f"{s['region']}.{s['store_format']}.{s['velocity']}"


def _runs(report: dict[str, Any], out: dict[str, pd.DataFrame]) -> pd.DataFrame:
    segments = report.get("segments", [])
    drift = out["drift"]
    row = {
        "started": report["started"],
        "stage": report["stage"],
        "environment": report["environment"],
        "code_version": report["code_version"],
        "dataset_version": report["dataset_version"],
        "scoring_date": report.get("scoring_date", ""),
        "seconds": report.get("seconds"),
        "regions": len(report["regions"]),
        "failed_regions": sum(bool(r.get("failed_step")) for r in report["regions"].values()),
        "segments": len(segments),
        "stale": sum(bool(s.get("stale")) for s in segments),
        "fallback": sum(bool(s.get("fallback")) for s in segments),
        "promoted": sum(bool(s.get("promoted")) for s in segments),
        "data_quality_failed": int((out["data_quality"]["status"] == "fail").sum()),
        "drift_alerts": int(drift["alert"].sum()) if len(drift) else 0,
        "feeds_absent": ", ".join(n for n, f in report.get("feeds", {}).items() if f == "absent"),
        "warnings": " | ".join(report.get("warnings", [])),
    }
    for model, metrics in report.get("overall", {}).items():
        for metric in ("mape", "wape", "bias"):
            row[f"overall_{model}_{metric}"] = metrics.get(metric)
    return pd.DataFrame([row])


def _segments(report: dict[str, Any]) -> pd.DataFrame:
    """The segment dimension: what forecasts it, from which registry version, how old."""
    columns = [
        "segment", *SEGMENT_KEY, "n_rows", "model", "champion_version", "candidate_version",
        "promoted", "trained_on", "stale", "fallback",
    ]  # fmt: skip
    rows = [
        {"segment": _segment_name(s)} | {c: s.get(c, "") for c in columns[1:]}
        for s in report.get("segments", [])
    ]
    return pd.DataFrame(rows, columns=columns)


def _steps(report: dict[str, Any]) -> pd.DataFrame:
    """One row per region and step that ran (a step reusing its committed output takes ~0 s);
    a failed region's failed step has status `failed` and the error."""
    rows = []
    for region, info in sorted(report["regions"].items()):
        failed = info.get("failed_step")
        seconds = dict(info["seconds"])
        if failed and failed not in seconds:  # the region failed outside its steps
            seconds[failed] = None
        rows += [
            {
                "region": region,
                "step": step,
                "seconds": value,
                "status": "failed" if step == failed else "completed",
                "output_version": info["versions"].get(_STEP_OUTPUT.get(step, step), ""),
                "error": info.get("error", "") if step == failed else "",
            }
            for step, value in seconds.items()
        ]
    columns = ["region", "step", "seconds", "status", "output_version", "error"]
    return pd.DataFrame(rows, columns=columns)


_STEP_OUTPUT = {"condition": "quality", "train": "model", "register": "model", "score": "forecasts"}


def _model_metrics(report: dict[str, Any]) -> pd.DataFrame:
    """Backtest metrics of every model of every segment, with the registry version trained."""
    rows = [
        {"segment": _segment_name(s)}
        | {k: s[k] for k in SEGMENT_KEY}
        | {
            "model": model,
            "chosen": model == s["model"],
            "candidate_version": s.get("candidate_version", ""),
            "champion_version": s.get("champion_version", ""),
            "model_dataset": report["regions"][s["region"]]["versions"].get("model", ""),
        }
        | {m: metrics.get(m) for m in REPORTED}
        for s in report.get("segments", [])
        for model, metrics in sorted(s["by_model"].items())
    ]
    columns = ["segment", *SEGMENT_KEY, "model", "chosen", "candidate_version",
               "champion_version", "model_dataset", *REPORTED]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _sources(report: dict[str, Any], lake: Lake) -> pd.DataFrame:
    """Per conditioned dataset (reference and each region's feeds): version and row counts."""
    paths = [(None, name, path) for name, path in sorted(report["reference"].items())]
    paths += [
        (region, name, info["paths"][name])
        for region, info in sorted(report["regions"].items())
        for name in REGION_SOURCES
        if name in info["paths"]
    ]
    rows = []
    for region, name, path in paths:
        dataset = lake.dataset(path)
        manifest = dataset.manifest if dataset is not None else {}
        rows.append(
            {
                "region": region or "",
                "source": name,
                "version": manifest.get("version", ""),
                "rows_in": manifest.get("rows_in"),
                "rows_out": manifest.get("rows_out"),
                "rows_rejected": manifest.get("rows_rejected"),
                "rows_aggregated": manifest.get("rows_aggregated", 0),
                "absent": bool(manifest.get("absent", False)),
                "rejected_by_reason": json.dumps(manifest.get("rejected_by_reason", {})),
                "unreadable_files": len(manifest.get("unreadable", [])),
            }
        )
    return pd.DataFrame(rows)


def _data_quality(report: dict[str, Any], lake: Lake) -> pd.DataFrame:
    """Every cross-source check of every region (pass and fail), with its dataset version."""
    frames = []
    for _, info in sorted(report["regions"].items()):
        path = info["paths"].get("quality")
        if path:
            checks = lake.read_csv(f"{path}/checks.csv", keep_default_na=False)
            checks.insert(1, "version", info["versions"]["quality"])
            frames.append(checks)
    columns = ["region", "version", "check", "status", "failing", "detail"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _staleness(report: dict[str, Any], lake: Lake) -> pd.DataFrame:
    """The run's champions table (monitoring/champions/<run id>.csv): age and staleness."""
    path = f"monitoring/champions/{report['run_id']}.csv"
    columns = ["segment", "champion_version", "trained_on", "age_days", "stale", "fallback"]
    if not lake.exists(path):
        return pd.DataFrame(columns=columns)
    return lake.read_csv(path, keep_default_na=False)[columns]


def _forecast_actuals(report: dict[str, Any], lake: Lake) -> pd.DataFrame:
    """Backtest forecasts against actuals, summed per segment, model and week."""
    keys = [*SEGMENT_KEY, "model", "origin", "week_start"]
    frames = []
    for info in report["regions"].values():
        if "model" in info["paths"]:
            holdout = lake.read_csv(f"{info['paths']['model']}/holdout.csv")
            frames.append(
                holdout.groupby(keys, as_index=False)
                .agg(actual=("units", "sum"), forecast=("forecast", "sum"), rows=("units", "size"))
                .sort_values(keys)
            )
    if not frames:
        return pd.DataFrame(columns=[*keys, "actual", "forecast", "rows"])
    return pd.concat(frames, ignore_index=True)


def _drift(report: dict[str, Any], lake: Lake, config: DriftConfig) -> pd.DataFrame:
    """Per region and feature: PSI (and KS for numeric ones), training window vs scoring batch."""
    frames = []
    for region, info in sorted(report["regions"].items()):
        if "features" in info["paths"]:
            data = lake.read_bytes(f"{info['paths']['features']}/features.parquet")
            table = feature_drift(pd.read_parquet(io.BytesIO(data)), config)
            table.insert(0, "region", region)
            frames.append(table)
    if not frames:
        return pd.DataFrame(columns=["region", "feature", "kind", "psi", "ks", "alert", "reason"])
    return pd.concat(frames, ignore_index=True)
