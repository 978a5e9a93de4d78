"""Basic model validation: the whole weekly batch in a temporary lake, then checks on its
report. By default on the small dataset checked in under tests/data/sample_lake (data
validation → training → scoring); with any of --region/--products/--weeks/--store-scale, on
data generated to that size. `make validate-model` runs it; CI runs it on every change.

Exit 0 when every check passes, 1 with one line per failed check otherwise, 2 when the batch
itself stops on a user error (the CLI's own one-line message)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from demandops.cli import main as demandops
from demandops.core.lake import Lake
from ml.features import BASELINE_COLUMNS

DATASET = Path(__file__).resolve().parent.parent / "tests" / "data" / "sample_lake"
DATASET_REGIONS = ["pnw", "ncal"]

BASELINES = BASELINE_COLUMNS  # the baselines are reported under their column names
REQUIRED = ("mape", "wape", "rmse", "bias", "baseline_mape", "baseline_wape")


def check_report(report: dict[str, Any], regions: list[str]) -> list[str]:
    """Every problem found in a run report; empty when the models are fit to promote to CD."""
    problems = []
    segments = report.get("segments", [])
    for region in regions:
        if not any(s["region"] == region for s in segments):
            problems.append(f"region {region}: no segment in the report")
        elif "forecasts" not in report["regions"].get(region, {}).get("paths", {}):
            problems.append(f"region {region}: no forecasts")
    for s in segments:
        name = f"{s['region']}.{s['store_format']}.{s['velocity']}"
        for metric in REQUIRED:
            value = s.get(metric)
            if not isinstance(value, int | float) or not math.isfinite(value):
                problems.append(f"segment {name}: {metric} is {value!r}, not a finite number")
        if s.get("n_rows", 0) <= 0:
            problems.append(f"segment {name}: no holdout rows")
    overall = report.get("overall", {})
    models = [m for m in overall if m not in BASELINES]
    if not models or "hist_avg" not in overall:
        problems.append(f"overall metrics lack a model or the hist_avg baseline: {sorted(overall)}")
    for model in models:
        wape, base = overall[model]["wape"], overall.get("hist_avg", {}).get("wape", math.inf)
        if not wape < base:
            problems.append(f"overall {model}: WAPE {wape:.3f} is not below hist_avg's {base:.3f}")
    return problems


def copy_dataset(source: Path, lake: Lake) -> None:
    """The checked-in raw files into `lake`'s raw/ zone."""
    for path in sorted((source / "raw").rglob("*")):
        if path.is_file():
            lake.write_bytes(path.relative_to(source).as_posix(), path.read_bytes())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--region", action="append", metavar="ID", help="generate these regions")
    parser.add_argument("--products", type=int, help="generate this many products (default 6)")
    parser.add_argument("--weeks", type=int, help="generate this many weeks (default 80)")
    parser.add_argument("--store-scale", type=float, help="generate with this store scale (0.5)")
    parser.add_argument("--report-json", metavar="PATH", help="keep the run report here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    generated = any(
        v is not None for v in (args.region, args.products, args.weeks, args.store_scale)
    )
    regions = (args.region or ["pnw", "tx"]) if generated else DATASET_REGIONS
    picks = [a for r in regions for a in ("--region", r)]
    sample = ["--products", str(args.products or 6), "--weeks", str(args.weeks or 80)]
    sample += ["--store-scale", str(args.store_scale or 0.5)]
    with tempfile.TemporaryDirectory(prefix="demandops-validate-") as tmp:
        lake = ["--lake", str(Path(tmp) / "lake"), "--quiet"]
        report_path = Path(args.report_json or Path(tmp) / "report.json")
        if generated:
            code = demandops(["generate", *picks, *sample, *lake])
        else:
            code = 0
            copy_dataset(DATASET, Lake(str(Path(tmp) / "lake")))
        code = code or demandops(["run", *picks, *lake, "--report-json", str(report_path)])
        if code:
            return code
        report = json.loads(report_path.read_text(encoding="utf-8"))
    problems = check_report(report, regions)
    for problem in problems:
        print(f"model validation: {problem}", file=sys.stderr)
    verdict = "FAILED" if problems else "passed"
    print(f"model validation: {verdict} ({len(report['segments'])} segments)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
