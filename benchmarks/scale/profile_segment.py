"""Where one segment's training time goes: cProfile of its backtest and final fit.

Trains one segment exactly as the batch does (`benchmarks.accuracy.training_cost._train_one`:
the rolling-origin backtest, then the final fit) on a feature table a batch committed, under
cProfile (CPU time), and prints the CPU share of the LASSO, the embedding net and the rest.

    .venv/bin/python -m benchmarks.scale.profile_segment --lake .lake --region pnw \
        [--set nn_epoch_rows=65536]   # a training parameter (ml/train.py TrainParams) changed
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.accuracy.training_cost import _train_one
from demandops.core.settings import load_settings
from ml.train import TrainParams

PARTS = {
    "lasso": ("models.py", "fit"),
    "lasso_gram_moments": ("gram_lasso.py", "moments"),
    "lasso_path": ("gram_lasso.py", "path"),
    "embedding_net": ("embedding_net.py", "_fit"),
    "boosting": ("boosting.py", "fit"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--segment", default="large.fast", help="store_format.velocity")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a TrainParams field changed (a YAML value), repeatable",
    )
    parser.add_argument("--dump", type=Path, help="also write the cProfile stats here (pstats)")
    args = parser.parse_args()
    [features] = sorted(args.lake.glob(f"features/region={args.region}/*/features.parquet"))[-1:]
    overrides = dict(_override(text) for text in args.set)
    params = TrainParams.from_config(load_settings().pipeline, **overrides)
    profile = cProfile.Profile(time.process_time)  # CPU seconds: the shares hold under load
    cpu = time.process_time()
    result = profile.runcall(_train_one, str(features), f"{args.region}.{args.segment}", params)
    cpu = time.process_time() - cpu
    if args.dump:
        profile.dump_stats(args.dump)
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    shares = {}
    for part, (file, name) in PARTS.items():
        seconds = sum(v[3] for (f, _, n), v in stats.items() if f.endswith(file) and n == name)
        shares[part] = {"seconds": round(seconds, 1), "share": round(seconds / max(cpu, 1e-9), 3)}
    print(json.dumps({**result, "cpu_s": round(cpu, 1), "parts": shares}, indent=1))


def _override(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or name not in TrainParams.__dataclass_fields__:
        raise SystemExit(f"--set {text!r}: expected NAME=VALUE with NAME a field of TrainParams")
    parsed = yaml.safe_load(value)
    return name, tuple(parsed) if isinstance(parsed, list) else parsed


if __name__ == "__main__":
    main()
