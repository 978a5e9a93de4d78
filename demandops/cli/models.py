"""The `demandops models` and `demandops lineage` commands: the registry as a user meets it."""

from __future__ import annotations

import argparse
import io
import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime

import pandas as pd

from demandops.cli import faults
from demandops.core.errors import ConfigError
from demandops.core.lake import Lake
from demandops.core.limits import clip, clip_list
from demandops.core.lock import command_lock
from demandops.core.settings import Environment, Settings, load_settings
from demandops.lifecycle import champions, promotion
from demandops.lifecycle.lineage import forecast_lineage, render, run_lineage
from demandops.lifecycle.registry import PREFIX, Registry, RegistryError, model_name
from demandops.monitoring import challengers, tables

COMMANDS = ("models", "lineage")


def add_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: Callable[..., None],
) -> None:
    """Add `models list|show|promote|rollback` and `lineage` to the CLI's subcommands."""
    models = sub.add_parser("models", help="the model registry: list, show, promote, rollback")
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every segment model with its champion")
    common(listing, regions=False)
    show = actions.add_parser("show", help="every version of one model, with gates and lineage")
    common(show, regions=False)
    show.add_argument("name", help="demand.<region>.<format>.<velocity> (or without demand.)")
    promote = actions.add_parser(
        "promote", help="make a validated version champion, here or in another environment"
    )
    common(promote, regions=False, lock=True)
    promote.add_argument("name", nargs="?", help="one model (default: every champion)")
    promote.add_argument("--version", help="the version to promote (default: the champion)")
    promote.add_argument("--to", metavar="ENV", help="target environment, e.g. prod")
    rollback = actions.add_parser("rollback", help="restore the previous champion")
    common(rollback, regions=False, lock=True)
    rollback.add_argument("name", help="demand.<region>.<format>.<velocity>")
    rival = actions.add_parser(
        "challenger", help="name the version that scores beside the champion (docs/serving.md)"
    )
    common(rival, regions=False, lock=True)
    rival.add_argument("name", help="<region>.<format>.<velocity> (or with demand.)")
    rival.add_argument("version", nargs="?", help="a registered version (none: show it)")
    what = rival.add_mutually_exclusive_group()
    what.add_argument("--clear", action="store_true", help="remove the challenger")
    what.add_argument(
        "--promote-if-better",
        action="store_true",
        help="make it champion if its errors are significantly lower (paired Wilcoxon)",
    )

    lineage = sub.add_parser(
        "lineage", help="model version, training run, datasets and raw files behind a forecast"
    )
    common(lineage, regions=False)
    lineage.add_argument("target", help="a forecasts file or folder, or a training run id")
    lineage.add_argument("--json", action="store_true", help="print JSON")


def _name(text: str) -> str:
    return text if text.startswith(PREFIX) else model_name(text)


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Carry out a `models` or `lineage` command; a registry that fails (unreachable, not a
    registry, refusing) is one RegistryError line, not MLflow's traceback."""
    try:
        _run(args, settings)
    except faults.REGISTRY_ERRORS as exc:
        raise RegistryError(
            f"the model registry failed: {clip(faults.registry_problem(exc), 300)}"
        ) from None


def _run(args: argparse.Namespace, settings: Settings) -> None:
    env = settings.environment
    registry = champions.open_registry(env, create=False)
    today = datetime.now(UTC).date()
    if args.command == "lineage":
        lake = Lake(env.lake)
        is_file = os.path.exists(args.target) or args.target.startswith(("forecasts/", lake.url))
        found = (
            forecast_lineage(lake, registry, args.target)
            if is_file
            else run_lineage(lake, registry, args.target)
        )
        print(json.dumps(found, indent=2, default=str) if args.json else render(found))
    elif args.action == "list":
        print(f"{'model':<30}{'champion':>9}{'trained on':>12}{'versions':>9}  latest")
        for name in registry.names():
            champ = registry.champion(name)
            versions = registry.versions(name)
            latest = versions[-1]
            print(
                f"{name:<30}{'v' + str(champ.version) if champ else '-':>9}"
                f"{champ.tags.get('trained_on', '') if champ else '':>12}{len(versions):>9}"
                f"  v{latest.version} {latest.tags.get('status', '')}"
            )
    elif args.action == "show":
        name = _name(args.name)
        versions = registry.versions(name)
        if not versions:
            known = clip_list(registry.names())
            raise RegistryError(f"no model {clip(name)} in the registry; known: {known or 'none'}")
        champ = registry.champion(name)
        for v in versions:
            flag = " (champion)" if champ is not None and champ.version == v.version else ""
            print(f"{name} v{v.version}{flag}: {v.tags.get('status', '')}")
            for key in ("trained_on", "run_id", "model_dataset", "dataset_version", "git_commit"):
                print(f"  {key}: {v.tags.get(key, '')}")
            print(f"  gates: {v.tags.get('gate_reasons', '')}")
    elif args.action == "promote":
        target = _target(args, env)
        names = [_name(args.name)] if args.name else registry.names()
        with command_lock(target, "models-promote", args.lock_wait):
            for name in names:
                print(promotion.promote(env, target, name, args.version, today))
    elif args.action == "challenger":
        with command_lock(env, "models-challenger", args.lock_wait):
            print(_challenger(args, settings, registry, today))
    else:
        with command_lock(env, "models-rollback", args.lock_wait):
            print(promotion.rollback(env, _name(args.name), today))


def _challenger(
    args: argparse.Namespace, settings: Settings, registry: Registry, today: date
) -> str:
    name = _name(args.name)
    if args.clear or args.version:
        registry.set_challenger(name, None if args.clear else args.version)
        return f"{name}: challenger {'cleared' if args.clear else 'v' + args.version}"
    current = registry.challenger(name)
    if current is None:
        return f"{name}: no challenger"
    if not args.promote_if_better:
        return f"{name}: challenger v{current.version}"
    lake, alpha = Lake(settings.environment.lake), settings.pipeline.lifecycle.challenger_alpha
    folder = tables.latest(lake)
    rows = lake.read_bytes(f"{folder}/challenger_actuals.parquet") if folder else None
    frame = challengers.compare(pd.read_parquet(io.BytesIO(rows)), alpha) if rows else None
    match = None if frame is None else frame[
        (frame["segment"] == name.removeprefix(PREFIX))
        & (frame["challenger_version"] == str(current.version))
    ]  # fmt: skip
    if match is None or match.empty:
        return f"{name}: challenger v{current.version} has no forecasts with actuals yet"
    best = {str(k): v for k, v in match.iloc[0].items()}
    return promotion.promote_challenger(settings.environment, name, best, today)


# set by --lake and --registry-uri for the source environment, not for the target
SOURCE_ONLY = ("DEMANDOPS_LAKE", "DEMANDOPS_REGISTRY_URI")


def _target(args: argparse.Namespace, env: Environment) -> Environment:
    """The environment to promote into: its own lake and registry, not a --lake or
    --registry-uri given for the source."""
    if not args.to or args.to == env.name:
        return env
    given = {n: os.environ.pop(n) for n in SOURCE_ONLY if n in os.environ}
    try:
        target = load_settings(args.config, args.to).environment
    finally:
        os.environ.update(given)
    uri = target.registry_uri
    placeholder = (
        f"cannot promote to {args.to}: its registry_uri {clip(uri)!r} is not a tracking URI; "
        f"set it in environments/{args.to}.yaml to the Azure ML workspace's MLflow URI "
        "(az ml workspace show --query mlflow_tracking_uri)"
    )
    if uri != "azureml" and "://" not in uri and not uri.startswith("sqlite:"):
        raise RegistryError(placeholder)
    try:
        champions.open_registry(target).names()
    except ConfigError as exc:  # `azureml` without the workspace it names
        raise RegistryError(f"{placeholder} or name the workspace ({_first_line(exc)})") from None
    except Exception as exc:  # whatever stops listing it: unreachable, not a store...
        raise RegistryError(
            f"cannot promote to {args.to}: its registry {clip(uri)} is not usable from here "
            f"({_first_line(exc)})"
        ) from None
    return target


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return clip(text.splitlines()[0] if text else type(exc).__name__, 200)
