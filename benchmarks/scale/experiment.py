"""Production scale: the product's own batch on production-density sample data, measured.

For each variant (regions × store density) it generates a fresh lake with `demandops generate
--store-scale S --products P --weeks W --region …` and runs `demandops run` on it in a child
process, sampling the whole process tree (the CLI and its pool workers) every half second:

- wall time of generate and run, and per step (the run report's seconds, summed over regions);
- CPU seconds of the whole tree (getrusage(RUSAGE_CHILDREN) around the run: every descendant
  is waited for, so pool workers count), and the peak of the tree's summed resident memory;
- shipment rows generated, rows per CPU-second and per wall-second; the load average;
- the cost's scaling exponent d log(CPU) / d log(rows) between variants of the same regions.

    .venv/bin/python -m benchmarks.scale.experiment --regions 1                # production density
    .venv/bin/python -m benchmarks.scale.experiment --regions 1 2 --store-scale 1 4   # cheaper
    .venv/bin/python -m benchmarks.scale.experiment --regions 14 --config my-config/  # another
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "demandops.cli"]


def region_ids(n: int) -> list[str]:
    regions = yaml.safe_load((ROOT / "config" / "regions.yaml").read_text())["regions"]
    if not 1 <= n <= len(regions):
        raise SystemExit(f"--regions must be 1..{len(regions)}, got {n}")
    return [r["id"] for r in regions[:n]]


class TreeSampler(threading.Thread):
    """Peak summed RSS of a process and its descendants, sampled every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root, self.every, self.peak, self.done = psutil.Process(pid), every, 0, False

    def run(self) -> None:
        while not self.done:
            try:
                tree = [self.root, *self.root.children(recursive=True)]
                self.peak = max(self.peak, sum(_rss(p) for p in tree))
            except psutil.NoSuchProcess:
                return
            time.sleep(self.every)


def _rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(command: list[str]) -> dict[str, float]:
    """Wall, CPU seconds of the tree and peak tree RSS of `command`, which must succeed."""
    cpu, wall = _children_cpu(), time.perf_counter()
    child = subprocess.Popen(command)
    sampler = TreeSampler(child.pid)
    sampler.start()
    try:
        code = child.wait()
    finally:  # interrupted: stop the run and its pool workers with it
        sampler.done = True
        if child.poll() is None:
            for process in [*psutil.Process(child.pid).children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    process.terminate()
            child.terminate()
    if code != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed with exit code {code}")
    return {
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(_children_cpu() - cpu, 1),
        "peak_rss_gb": round(sampler.peak / 2**30, 2),
    }


def shipment_rows(lake: Path) -> int:
    """Data rows of the raw shipment files (header lines not counted)."""
    files = list((lake / "raw" / "shipments").rglob("*.csv"))
    return sum(f.read_bytes().count(b"\n") - 1 for f in files)


def variant(
    workdir: Path, n_regions: int, args: argparse.Namespace, scale: float
) -> dict[str, Any]:
    lake = workdir / f"lake-{n_regions}r-{scale:g}x"
    common = [
        "--lake",
        str(lake),
        "--quiet",
        *(a for r in region_ids(n_regions) for a in ("--region", r)),
    ]
    spec = [
        "--products",
        str(args.products),
        "--weeks",
        str(args.weeks),
        "--store-scale",
        str(scale),
    ]
    generated = measured([*CLI, "generate", *common, *spec])
    report_file = workdir / f"report-{n_regions}r-{scale:g}x.json"
    load_before = os.getloadavg()
    config = ["--config", str(args.config)] if args.config else []
    run = measured([*CLI, "run", *common, *config, "--report-json", str(report_file)])
    report = json.loads(report_file.read_text())
    steps: dict[str, float] = {}
    for info in report["regions"].values():
        for step, seconds in info.get("seconds", {}).items():
            steps[step] = round(steps.get(step, 0.0) + float(seconds or 0.0), 1)
    rows = shipment_rows(lake)
    return {
        "regions": n_regions,
        "store_scale": scale,
        "products": args.products,
        "weeks": args.weeks,
        "config": str(args.config or "config/"),
        "shipment_rows": rows,
        "generate": generated,
        "run": run,
        "step_seconds_summed_over_regions": steps,
        "rows_per_cpu_s": round(rows / max(run["cpu_s"], 1e-9)),
        "rows_per_wall_s": round(rows / max(run["wall_s"], 1e-9)),
        "failed_regions": report.get("failed", []),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def exponents(results: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """d log(run CPU) / d log(`key`) between variants that differ only in `key`."""
    fixed = {"shipment_rows": "regions", "regions": "store_scale"}[key]
    return [
        {
            "by": key,
            "from": a[key],
            "to": b[key],
            "exponent": round(
                math.log(b["run"]["cpu_s"] / a["run"]["cpu_s"]) / math.log(b[key] / a[key]), 2
            ),
        }
        for a in results
        for b in results
        if a[fixed] == b[fixed] and a[key] < b[key]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, nargs="+", default=[1])
    parser.add_argument("--store-scale", type=float, nargs="+", default=[14.4])
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--weeks", type=int, default=156)
    parser.add_argument("--workdir", type=Path, help="keep the lakes here (default: a temp dir)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    parser.add_argument(
        "--config",
        type=Path,
        help="the batch's configuration folder (`demandops run --config`; default: config/)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        results = []
        for n in args.regions:
            for scale in args.store_scale:
                results.append(variant(workdir, n, args, scale))
                print(json.dumps(results[-1]), flush=True)
    summary = {
        "variants": results,
        "exponents": exponents(results, "shipment_rows") + exponents(results, "regions"),
    }
    print(json.dumps(summary["exponents"]))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
