"""Chaos: kill `demandops run` with SIGKILL at random moments, run two batches at once, feed the
hostile-input corpus, and check that nothing is lost, nothing is stuck (docs/crash-safety.md).

    .venv/bin/python benchmarks/chaos/experiment.py [--kills 50] [--chain 5] [--pairs 2] [--seed 1]

On a small generated lake (one region, two products, 60 weeks, plus the hostile files of
benchmarks/hostile_input), it first runs one undisturbed batch (the reference). Then, in chains
starting from the raw lake alone, it kills `--chain` successive batches each at a moment drawn
uniformly from [0.3 s, the reference's duration], and lets one more batch finish. After every
kill: every committed dataset (a folder with its manifest) is whole, and raw/ is unchanged. After
every chain: the registry is consistent (every segment one champion, its alias and status tag
agree, no candidate left undecided, no model dataset registered twice) and the champions and
forecasts equal the reference's. Finally `--pairs` times two batches start at once on a fresh
lake: one waits for the other (or refuses with one line naming it), the end state equals the
reference. The gates are opened (max_error 5, no improvement required) so that every segment
gets a champion: the kills then land in registration and promotion too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.hostile_input.experiment import claimed_xlsx, deep_json  # noqa: E402

GENERATE = ["--products", "2", "--weeks", "60", "--store-scale", "0.1"]
HOSTILE = {
    "raw/weather/observations/zip=98109.json": deep_json,
    "raw/shoppers/demographics_claimed.xlsx": lambda: claimed_xlsx(20),
}


def cli(config: Path, lake: Path, *args: str) -> list[str]:
    """The command line of `demandops` from this checkout."""
    base = [sys.executable, "-m", "demandops.cli", *args, "--config", str(config)]
    return [*base, "--lake", str(lake), "--region", "pnw", "--quiet"]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMANDOPS_")}
    return env | {"PYTHONPATH": str(ROOT), "DEMANDOPS_TELEMETRY": "off"}


def make_config(folder: Path, workers: int = 2) -> Path:
    """The project's configuration with the gates opened (see the module docstring)."""
    config = folder / "config"
    shutil.copytree(ROOT / "config", config)
    pipeline = config / "pipeline.yaml"
    text = re.sub(r"max_error: [0-9.]+", "max_error: 5", pipeline.read_text())
    text = re.sub(
        r"min_improvement_over_baseline: [0-9.]+", "min_improvement_over_baseline: 0", text
    )
    pipeline.write_text(text)
    dev = config / "environments" / "dev.yaml"
    dev.write_text(re.sub(r"max_workers: \d+", f"max_workers: {workers}", dev.read_text()))
    return config


def make_raw_lake(config: Path, lake: Path) -> None:
    """A small generated raw lake with the hostile-input corpus in raw/."""
    subprocess.run(cli(config, lake, "generate", *GENERATE), env=environment(), check=True,
                   capture_output=True)  # fmt: skip
    for rel, make in HOSTILE.items():
        (lake / rel).parent.mkdir(parents=True, exist_ok=True)
        (lake / rel).write_bytes(make())


def fresh_copy(raw_lake: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(raw_lake, dest, symlinks=True)
    return dest


def run(
    config: Path, lake: Path, *extra: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """One batch to its end. A batch that reads the hostile files ends with status 1 (raw
    files could not be read); anything else but 0 is a failure."""
    done = subprocess.run(cli(config, lake, "run", *extra), env=environment(), text=True,
                          capture_output=True, timeout=900)  # fmt: skip
    if done.returncode not in (0, 1) or "report:" not in done.stdout:
        raise AssertionError(f"batch failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def kill_at(config: Path, lake: Path, seconds: float) -> bool:
    """Start a batch and SIGKILL it after `seconds`; False if it ended before."""
    proc = subprocess.Popen(cli(config, lake, "run"), env=environment(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def partial_datasets(lake: Path) -> tuple[list[str], int]:
    """Committed datasets that are not whole (a file of the manifest missing or different),
    and the number of uncommitted folders (no manifest: invisible to readers)."""
    broken, uncommitted = [], 0
    for folder in sorted(lake.rglob("v=*")):
        manifest = folder / "manifest.json"
        if not manifest.exists():
            uncommitted += 1
            continue
        for name, meta in json.loads(manifest.read_text())["files"].items():
            path = folder / name
            if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != meta["sha256"]:
                broken.append(str(path.relative_to(lake)))
    return broken, uncommitted


def registry_state(lake: Path) -> dict[str, Any]:
    """Per registered model: its versions' status and model dataset, the champion alias."""
    db = sqlite3.connect(f"file:{lake / 'mlflow.db'}?mode=ro", uri=True)
    try:
        tags = db.execute("select name, version, key, value from model_version_tags").fetchall()
        aliases = dict(
            db.execute(
                "select name, version from registered_model_aliases where alias = 'champion'"
            ).fetchall()
        )
    finally:
        db.close()
    models: dict[str, dict[str, Any]] = {}
    for name, version, key, value in tags:
        models.setdefault(name, {"champion": aliases.get(name), "versions": {}})
        models[name]["versions"].setdefault(str(version), {})[key] = value
    return models


def registry_problems(state: dict[str, Any]) -> list[str]:
    """Every segment one champion, alias and status agree, nothing undecided, no duplicates."""
    problems = []
    for name, model in sorted(state.items()):
        versions = model["versions"]
        tagged = [v for v, t in versions.items() if t.get("status") == "champion"]
        if model["champion"] is None or tagged != [str(model["champion"])]:
            problems.append(f"{name}: alias {model['champion']}, status champion on {tagged}")
        undecided = [v for v, t in versions.items() if t.get("status") == "candidate"]
        if undecided:
            problems.append(f"{name}: undecided candidates {undecided}")
        datasets = [t.get("model_dataset_version") for t in versions.values()]
        if len(datasets) != len(set(datasets)):
            problems.append(f"{name}: a model dataset registered twice: {sorted(datasets)}")
    return problems


def outcome(lake: Path) -> dict[str, Any]:
    """What must equal an undisturbed run: per week and region the committed forecasts' bytes
    (the dataset's version differs: it hashes the champions' MLflow run ids, random per store),
    and per model the champion's version and model dataset."""
    forecasts: dict[str, list[str]] = {}
    for manifest in sorted((lake / "forecasts").rglob("manifest.json")):
        data = (manifest.parent / "forecasts.csv").read_bytes()
        where = str(manifest.parent.parent.relative_to(lake))
        forecasts.setdefault(where, []).append(hashlib.sha256(data).hexdigest())
    state = registry_state(lake)
    champions = {
        name: (m["champion"], m["versions"][str(m["champion"])].get("model_dataset_version"))
        for name, m in state.items()
        if m["champion"] is not None
    }
    return {"forecasts": forecasts, "champions": champions}


def check_final(lake: Path, reference: dict[str, Any] | None) -> list[str]:
    """The registry's problems, and any difference from the reference run's outcome."""
    problems = registry_problems(registry_state(lake))
    got = outcome(lake)
    for key in ("forecasts", "champions"):
        if reference is not None and got[key] != reference[key]:
            problems.append(
                f"{key} differ from the undisturbed run: {got[key]} != {reference[key]}"
            )
    leftovers = [p.name for p in lake.glob("mlflow.db.creating-*")]
    return problems + ([f"store creation leftovers {leftovers}"] if leftovers else [])


def chaos_chain(
    config: Path, raw_lake: Path, lake: Path, kills: int, duration: float, rng: random.Random,
    reference: dict[str, Any], log: Callable[[str], None] = print,
) -> dict[str, int]:  # fmt: skip
    """`kills` killed batches on a fresh copy of the raw lake, then one to its end; counts."""
    fresh_copy(raw_lake, lake)
    raw = hashes(lake / "raw")
    counts = {"kills": 0, "ended_first": 0, "partial_visible": 0, "uncommitted_left": 0,
              "raw_changed": 0, "inconsistent": 0}  # fmt: skip
    for _ in range(kills):
        moment = rng.uniform(0.3, duration)
        killed = kill_at(config, lake, moment)
        counts["kills" if killed else "ended_first"] += 1
        broken, uncommitted = partial_datasets(lake)
        counts["partial_visible"] += len(broken)
        counts["uncommitted_left"] += uncommitted
        counts["raw_changed"] += hashes(lake / "raw") != raw
        log(f"  {'killed' if killed else 'ended before'} at {moment:5.1f} s: "
            f"{len(broken)} partial visible, {uncommitted} uncommitted folders")  # fmt: skip
    run(config, lake)
    problems = check_final(lake, reference) + (
        ["raw changed"] if hashes(lake / "raw") != raw else []
    )
    counts["inconsistent"] += bool(problems)
    for problem in problems:
        log(f"  PROBLEM: {problem}")
    return counts


def concurrent_pair(
    config: Path, raw_lake: Path, lake: Path, lock_wait: float, reference: dict[str, Any] | None
) -> tuple[list[int], list[str], list[str]]:
    """Two batches started at once on a fresh lake: their exit statuses, the refusal lines,
    and the problems of the end state (after a last batch if one refused)."""
    fresh_copy(raw_lake, lake)
    procs = [
        subprocess.Popen(
            cli(config, lake, "run", "--lock-wait", str(lock_wait)),
            env=environment(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in procs]
    codes = [p.returncode for p in procs]
    refusals = [err.strip() for _, err in outputs if "is busy" in err]
    if any(c == 2 for c in codes):
        run(config, lake)
    return codes, refusals, check_final(lake, reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs in all")
    parser.add_argument("--chain", type=int, default=5, help="kills before a batch may finish")
    parser.add_argument("--pairs", type=int, default=2, help="concurrent pairs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", default="/tmp/demandops-chaos", help="scratch folder")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = make_config(work)
    raw_lake = work / "raw-lake"
    make_raw_lake(config, raw_lake)
    started = time.monotonic()
    run(config, fresh_copy(raw_lake, work / "reference"))
    duration = time.monotonic() - started
    reference = outcome(work / "reference")
    print(f"reference batch: {duration:.1f} s, {len(reference['champions'])} champions, "
          f"{len(reference['forecasts'])} forecast files")  # fmt: skip
    for i in range(args.pairs):
        wait = 0 if i % 2 else 3 * duration  # one refuses at once, or one waits for the other
        codes, refusals, problems = concurrent_pair(
            config, raw_lake, work / "pair", wait, reference
        )
        print(f"pair {i + 1} (--lock-wait {wait:.0f}): exit {codes}, refusals {refusals}, "
              f"problems {problems}", flush=True)  # fmt: skip
    rng = random.Random(args.seed)
    totals: dict[str, int] = {}
    chains = 0
    while sum(totals.get(k, 0) for k in ("kills", "ended_first")) < args.kills:
        left = args.kills - sum(totals.get(k, 0) for k in ("kills", "ended_first"))
        print(f"chain {chains + 1}:")
        counts = chaos_chain(config, raw_lake, work / "chaos", min(args.chain, left), duration,
                             rng, reference)  # fmt: skip
        totals = {k: totals.get(k, 0) + v for k, v in counts.items()}
        chains += 1
        print(f"after {chains} chains: {json.dumps(totals)}; {elapsed(started)}", flush=True)
    print(f"total {elapsed(started)}")


def elapsed(started: float) -> str:
    """Wall time since `started`, and CPU seconds of this process and its reaped children (the
    batches and their workers; a killed batch's workers are reaped by init, not counted)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    load = os.getloadavg()[0]
    return f"{time.monotonic() - started:.0f} s wall, {cpu:.0f} CPU-s, load {load:.1f}"


if __name__ == "__main__":
    main()
