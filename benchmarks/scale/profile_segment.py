"""Where one segment's training time goes: cProfile of its backtest and final fit.

Trains one segment exactly as the batch does (`benchmarks.accuracy.training_cost._train_one`:
the rolling-origin backtest, then the final fit) on a feature table a batch committed, under
cProfile (CPU time), and prints the CPU share of the LASSO, the embedding net and the rest.

    .venv/bin/python -m benchmarks.scale.profile_segment --lake .lake --region pnw
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from pathlib import Path

from benchmarks.accuracy.training_cost import _train_one
from demandops.core.settings import load_settings
from ml.train import TrainParams

PARTS = {
    "lasso": ("models.py", "fit"),
    "lasso_gram_moments": ("gram_lasso.py", "moments"),
    "lasso_path": ("gram_lasso.py", "path"),
    "embedding_net": ("embedding_net.py", "fit"),
    "boosting": ("boosting.py", "fit"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--segment", default="large.fast", help="store_format.velocity")
    args = parser.parse_args()
    [features] = sorted(args.lake.glob(f"features/region={args.region}/*/features.parquet"))[-1:]
    params = TrainParams.from_config(load_settings().pipeline)
    profile = cProfile.Profile(time.process_time)  # CPU seconds: the shares hold under load
    cpu = time.process_time()
    result = profile.runcall(_train_one, str(features), f"{args.region}.{args.segment}", params)
    cpu = time.process_time() - cpu
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    shares = {}
    for part, (file, name) in PARTS.items():
        seconds = sum(v[3] for (f, _, n), v in stats.items() if f.endswith(file) and n == name)
        shares[part] = {"seconds": round(seconds, 1), "share": round(seconds / max(cpu, 1e-9), 3)}
    print(json.dumps({**result, "cpu_s": round(cpu, 1), "parts": shares}, indent=1))


if __name__ == "__main__":
    main()
