"""`demandops backtest`: how the models would have done on a deployment's conditioned data.

Conditions the raw feeds (or reuses the committed datasets), builds each region's features with
lags of at least gap + horizon weeks, runs the rolling-origin protocol of ml/backtest.py and
prints MAPE, WAPE, RMSE and bias of every model per segment and overall. Nothing is registered
or promoted; `--json PATH` also writes every table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any

import pandas as pd

from demandops.core.calendar import US_RETAIL_CALENDAR
from demandops.core.errors import DataError
from demandops.core.lake import Lake
from demandops.core.settings import Settings
from demandops.pipeline import steps
from demandops.pipeline.steps.modeling import region_feeds
from ml.backtest import Peer, Protocol, lightgbm_peer, rolling_origin, summary
from ml.feature_table import feature_table
from ml.train import TrainParams

COMMANDS = ("backtest",)
PEERS: dict[str, Peer] = {"lightgbm": lightgbm_peer}


def add_command(sub: argparse._SubParsersAction, common: Any) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser(
        "backtest",
        help="rolling-origin backtest of every model on the conditioned data",
        description="Fit on every week up to a cut, forecast the HORIZON weeks after a GAP, for "
        "ROUNDS cuts STEP weeks apart ending at the last week of history; print MAPE, WAPE, "
        "RMSE and bias per model, per segment and overall.",
    )
    common(cmd)
    cmd.add_argument("--rounds", type=int, default=4, help="rolling origins (default 4)")
    cmd.add_argument("--horizon", type=int, help="weeks forecast per round (default: pipeline's)")
    cmd.add_argument("--gap", type=int, default=0, help="weeks between cut and forecast (0)")
    cmd.add_argument("--step", type=int, help="weeks between cuts (default: the horizon)")
    cmd.add_argument(
        "--peer", choices=sorted(PEERS), action="append", help="also a peer model (bench extra)"
    )
    cmd.add_argument("--json", metavar="PATH", help="also write the tables as JSON")


def run(args: argparse.Namespace, settings: Settings) -> None:
    cfg = settings.pipeline
    horizon = args.horizon or cfg.horizon_weeks
    try:
        protocol = Protocol(args.rounds, horizon, args.gap, args.step or horizon)
    except ValueError as exc:
        raise DataError(f"backtest: {exc}") from exc
    peers = {name: PEERS[name] for name in args.peer or []}
    if "lightgbm" in peers and importlib.util.find_spec("lightgbm") is None:
        raise DataError("backtest --peer lightgbm needs LightGBM: pip install 'demandops[bench]'")
    params = TrainParams.from_config(cfg, horizon_weeks=protocol.lead, backtest_origins=1)
    forecasts = backtest(settings, [r.id for r in settings.select_regions(args.region)],
                         protocol, params, peers)  # fmt: skip
    by_segment, overall = summary(forecasts)
    print_tables(protocol, by_segment, overall, forecasts)
    if args.json:
        tables = {"protocol": protocol.__dict__, "segments": by_segment, "overall": overall}
        text = json.dumps(
            {k: v.to_dict("records") if isinstance(v, pd.DataFrame) else v
             for k, v in tables.items()}, indent=2, default=str,
        )  # fmt: skip
        Path(args.json).write_text(text + "\n", encoding="utf-8")
        print(f"json: {args.json}")


def backtest(
    settings: Settings,
    regions: list[str],
    protocol: Protocol,
    params: TrainParams,
    peers: dict[str, Peer],
) -> pd.DataFrame:
    """Every model's forecasts of every round in every region."""
    lake = Lake(settings.environment.lake)
    cfg = settings.pipeline
    ref = steps.condition_reference(lake, settings.region_ids(), settings.config_dir / "sources")
    frames = []
    for region in regions:
        inputs = steps.condition_region(lake, region, ref, cfg.horizon_weeks)
        feeds = region_feeds(lake, region, ref, inputs)
        calendar = cfg.holidays.get(region, US_RETAIL_CALENDAR)
        features, _ = feature_table(
            feeds, protocol.lead, cfg.baseline_window_weeks, holidays=calendar
        )
        try:
            frames.append(rolling_origin(features, protocol, params, peers))
        except ValueError as exc:
            raise DataError(f"backtest of region {region}: {exc}") from exc
    return pd.concat(frames, ignore_index=True)


def print_tables(
    protocol: Protocol, by_segment: pd.DataFrame, overall: pd.DataFrame, forecasts: pd.DataFrame
) -> None:
    p = protocol
    cuts = sorted(forecasts["round"].unique())
    print(
        f"backtest: {p.rounds} rounds, {p.horizon} weeks each after a gap of {p.gap}, cuts "
        f"{p.step} weeks apart ({pd.Timestamp(cuts[0]):%Y-%m-%d} .. "
        f"{pd.Timestamp(cuts[-1]):%Y-%m-%d}); {len(forecasts['week_start'].unique())} weeks"
    )
    header = f"{'segment':<24}{'model':<16}{'rows':>7}{'MAPE':>8}{'WAPE':>8}{'RMSE':>10}{'bias':>8}"
    print("\n" + header)
    for row in by_segment.itertuples():
        name = f"{row.region}.{row.store_format}.{row.velocity}"
        print(_line(name, row))
    print("\n" + header)
    for row in overall.sort_values("wape").itertuples():
        print(_line("overall", row))


def _line(name: str, row: Any) -> str:
    return (
        f"{name:<24}{row.model:<16}{row.n_rows:>7}{_pct(row.mape)}{_pct(row.wape)}"
        f"{row.rmse:>10.2f}{_pct(row.bias, signed=True)}"
    )


def _pct(value: float, signed: bool = False) -> str:
    if pd.isna(value):
        return f"{'-':>8}"
    return f"{value * 100:>+7.1f}%" if signed else f"{value * 100:>7.1f}%"
