"""Orchestration scale: events per durable instance and wall time, 14 vs 50 regions.

Runs the real orchestration (`demandops.pipeline.orchestration`) through the local runner
with the local compute backend over generated sample data, and counts the history events each
orchestration instance records (the parent and one sub-orchestration per region).

    .venv/bin/python benchmarks/orchestration/experiment.py     # 14 and 50 regions, train, 3 runs
    .venv/bin/python benchmarks/orchestration/experiment.py --regions 14 50 --pipeline score
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from demandops.core.lake import Lake
from demandops.core.settings import Settings, load_settings
from demandops.pipeline import orchestration as orch
from demandops.pipeline.activities import Activities, plan_run
from demandops.pipeline.compute.local import LocalBackend
from demandops.pipeline.runner import LocalRunner
from demandops.sample.data import SampleSpec, generate

ROOT = Path(__file__).resolve().parents[2]
SPEC = SampleSpec(products=4, weeks=70, store_scale=0.4)  # small but real: every step runs


def synthetic_settings(workdir: Path, n_regions: int, workers: int) -> Settings:
    """The project's configuration with `n_regions` regions and the lake in `workdir`."""
    config = workdir / "config"
    shutil.copytree(ROOT / "config", config)
    regions = [
        {"id": f"r{i:02d}", "name": f"Region {i}", "zip_codes": [f"{10000 + i:05d}"],
         "stores": {"large": 3, "small": 4}}
        for i in range(n_regions)
    ]  # fmt: skip
    (config / "regions.yaml").write_text(yaml.safe_dump({"regions": regions}))
    env = config / "environments" / "dev.yaml"
    text = env.read_text().replace("lake: .lake", f"lake: {workdir / 'lake'}")
    env.write_text(text.replace("max_workers: 2", f"max_workers: {workers}"))
    return load_settings(config)


def measure(n_regions: int, pipeline: str, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = synthetic_settings(Path(tmp), n_regions, workers)
        generate(Lake(settings.environment.lake), settings.regions, SPEC)
        plan = plan_run(settings, None, pipeline)
        started = time.perf_counter()
        with LocalBackend(settings) as backend:
            runner = LocalRunner(
                Activities(settings, backend).table(),
                {orch.RUN_ORCHESTRATOR: orch.run_orchestrator,
                 orch.REGION_ORCHESTRATOR: orch.region_orchestrator},
                max_wait=min(plan["poll_seconds"], 0.5),
            )  # fmt: skip
            outcome = runner.run(orch.RUN_ORCHESTRATOR, plan, "bench")
        seconds = time.perf_counter() - started
    subs = [i for i in runner.instances.values() if i.id != "bench"]
    sub_events = [len(i.history) for i in subs]
    polls = [s["polls"] for s in outcome["regions"].values()]
    work = [sum(s["outputs"]["seconds"].values()) for s in outcome["regions"].values()]
    return {
        "regions": n_regions,
        "completed": outcome["states"].get("Completed", 0),
        "seconds": round(seconds, 1),
        "region_step_s": round(statistics.mean(work), 2),
        "ideal_s": round(sum(work) / workers, 1),
        "parent_events": len(runner.instances["bench"].history),
        "sub_events_mean": round(statistics.mean(sub_events), 1),
        "sub_events_max": max(sub_events),
        "polls_mean": round(statistics.mean(polls), 1),
        "polls_max": max(polls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, nargs="+", default=[14, 50])
    parser.add_argument("--pipeline", default="train", choices=["condition", "train", "score"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the median is shown")
    args = parser.parse_args()
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in args.regions}
    for _ in range(args.repeat):  # sizes interleaved, so machine drift hits them alike
        for n in args.regions:
            runs[n].append(measure(n, args.pipeline, args.workers))
    rows = [{k: statistics.median(r[k] for r in runs[n]) for k in runs[n][0]} for n in runs]
    for n, size_runs in runs.items():
        print(f"{n} regions, seconds per run: {[r['seconds'] for r in size_runs]}")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    base = rows[0]
    for row in rows[1:]:
        ratios = {k: round(row[k] / base[k], 2) for k in keys if base[k]}
        print(f"\nratios {row['regions']} / {base['regions']} regions: {ratios}")


if __name__ == "__main__":
    main()
