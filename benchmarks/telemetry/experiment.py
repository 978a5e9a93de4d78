"""Telemetry overhead: the same small batch with telemetry off (the OpenTelemetry API alone) and
with the SDK recording every span and metric in memory, interleaved, each run in a fresh
process (global providers can be set once per process) on a fresh copy of the same raw data.

    .venv/bin/python benchmarks/telemetry/experiment.py            # 4 runs of each mode
    .venv/bin/python benchmarks/telemetry/experiment.py --repeat 6
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ["pnw", "tx"]
MODES = ("off", "memory")
SPAN_LOOPS = 20_000


def child(mode: str, raw: Path, work: Path) -> dict[str, Any]:
    """One batch run (and a loop of empty steps) in this process, in `mode`."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from demandops.core import telemetry
    from demandops.core.settings import load_settings
    from demandops.pipeline.batch import run_batch

    spans = InMemorySpanExporter()
    if mode == "memory":
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    config = work / "config"
    shutil.copytree(ROOT / "config", config)
    env = config / "environments" / "dev.yaml"
    text = env.read_text().replace("lake: .lake", f"lake: {work / 'lake'}")
    env.write_text(text.replace("max_workers: 2", "max_workers: 1"))  # spans stay in process
    shutil.copytree(raw, work / "lake")
    settings = load_settings(config)
    started = time.perf_counter()
    run_batch(settings, REGIONS, progress=False)
    batch = time.perf_counter() - started
    recorded = len(spans.get_finished_spans())
    started = time.perf_counter()
    for i in range(SPAN_LOOPS):
        with telemetry.step("empty", region="pnw", segment="pnw.large.fast") as step:
            step.set(rows=i)
    per_step_us = (time.perf_counter() - started) / SPAN_LOOPS * 1e6
    tracer, started = trace.get_tracer("reference"), time.perf_counter()
    for i in range(SPAN_LOOPS):  # the same with the OpenTelemetry API alone, for reference
        with tracer.start_as_current_span("empty") as span:
            span.set_attribute("rows", i)
    api_us = (time.perf_counter() - started) / SPAN_LOOPS * 1e6
    return {"mode": mode, "batch_s": batch, "spans": recorded, "step_us": per_step_us,
            "api_span_us": api_us}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "RAW", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return
    from demandops.core.lake import Lake
    from demandops.core.settings import load_settings
    from demandops.sample.data import SampleSpec, generate

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw-lake"
        regions = load_settings(ROOT / "config").select_regions(REGIONS)
        generate(Lake(str(raw)), regions, SampleSpec(products=6, weeks=80, store_scale=0.5))
        for i in range(args.repeat):
            for mode in MODES if i % 2 == 0 else MODES[::-1]:  # alternate which goes first
                work = Path(tmp) / f"{mode}-{i}"
                done = subprocess.run(
                    [sys.executable, __file__, "--child", mode, str(raw), str(work)],
                    capture_output=True, text=True, check=True, cwd=ROOT,
                )  # fmt: skip
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), flush=True)
    print("\n| mode | batch s (runs) | median batch s | spans | µs per step | µs per API span |")
    print("|---|---|---:|---:|---:|---:|")
    medians = {}
    for mode in MODES:
        runs = [r for r in results if r["mode"] == mode]
        medians[mode] = statistics.median(r["batch_s"] for r in runs)
        each = ", ".join(f"{r['batch_s']:.1f}" for r in runs)
        print(
            f"| {mode} | {each} | {medians[mode]:.2f} "
            f"| {runs[0]['spans']} | {statistics.median(r['step_us'] for r in runs):.1f} "
            f"| {statistics.median(r['api_span_us'] for r in runs):.1f} |"
        )
    print(f"\nratio memory / off (median batch): {medians['memory'] / medians['off']:.3f}")


if __name__ == "__main__":
    main()
