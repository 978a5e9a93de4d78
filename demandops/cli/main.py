"""The `demandops` command line: generate, condition, train, score, run, backtest, models,
dashboard, init, profile suggest."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from demandops.cli import backtest as backtest_cli
from demandops.cli import deploy, faults
from demandops.cli import models as models_cli
from demandops.core import telemetry
from demandops.core.errors import DemandOpsError
from demandops.core.lake import Lake
from demandops.core.settings import Settings, load_settings
from demandops.monitoring import dashboard
from demandops.pipeline.activities import plan_run
from demandops.pipeline.batch import Stage, orchestrate, run_batch
from demandops.pipeline.condition_summary import CONDITION_SOURCES, condition_summary, print_summary
from demandops.sample.data import SampleSpec, generate

SIGPIPE_STATUS = 141  # 128 + SIGPIPE: what a shell tool whose reader went away exits with


class DataQualityFailure(Exception):
    """The batch finished, but some raw data could not be used (exit status 1)."""


def _common(parser: argparse.ArgumentParser, regions: bool = True, lock: bool = False) -> None:
    parser.add_argument("--env", help="environment in config/environments (default: dev)")
    parser.add_argument("--lake", help="lake location, a folder or abfs:// URL (default: from env)")
    parser.add_argument(
        "--registry-uri",
        metavar="URI",
        help="MLflow tracking URI of the model registry (default: the environment's registry_uri)",
    )
    parser.add_argument("--config", help="configuration folder (default: the project's config/)")
    if regions:
        parser.add_argument(
            "--region",
            action="append",
            metavar="ID",
            help="a region id from config/regions.yaml; repeat for several (default: all)",
        )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--telemetry",
        choices=telemetry.MODES,
        help="OpenTelemetry spans and metrics: to App Insights (azure, the default when "
        f"{telemetry.CONNECTION_ENV} is set), to stderr (console) or nowhere (off, the default)",
    )
    if lock:
        parser.add_argument(
            "--lock-wait",
            type=float,
            metavar="SECONDS",
            help="wait this long for another batch on the same lake and environment, then "
            "refuse (default: the environment's lock_wait_seconds)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="demandops",
        description="Weekly demand forecasting across regions, stores and products.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="write realistic sample raw feeds into the lake's raw/")
    _common(gen)
    defaults = SampleSpec()
    gen.add_argument(
        "--products", type=int, default=defaults.products, help="products in the catalogue"
    )
    gen.add_argument("--weeks", type=int, default=defaults.weeks, help="weeks of shipment history")
    gen.add_argument("--start", default=defaults.start, help="first week (a Monday, YYYY-MM-DD)")
    gen.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    gen.add_argument(
        "--store-scale",
        type=float,
        default=defaults.store_scale,
        help="multiply configured store counts",
    )

    cond = sub.add_parser(
        "condition",
        help="condition raw feeds into standardized CSV (bad rows to quarantine/)",
        description="Condition raw feeds with the source profiles; print rows in/out/rejected "
        "per source, the dataset versions and the data-quality results. Exit status 1 when a "
        "raw file could not be read (it is skipped and stays in raw/).",
    )
    _common(cond, lock=True)
    cond.add_argument("--source", choices=CONDITION_SOURCES, help="only this source")
    cond.add_argument("--profiles", metavar="DIR", help="source profiles (default: config/sources)")
    cond.add_argument("--json", action="store_true", help="print the summary as JSON")

    for name, text in (
        ("train", "condition, build features and train one model per segment"),
        ("score", "all of train, then forecast the coming weeks"),
        ("run", "the whole weekly batch for every region, with a summary and a report"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        _common(cmd, lock=True)
        cmd.add_argument("--report-json", metavar="PATH", help="also write the run report as JSON")
        cmd.add_argument(
            "--local",
            action="store_true",
            help="run on this machine even if the environment's compute is azureml "
            "(how the Azure ML components run their step)",
        )
    models_cli.add_commands(sub, _common)
    dashboard.add_command(sub, _common)
    backtest_cli.add_command(sub, _common)
    deploy.add_commands(sub)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    if args.lake:
        os.environ["DEMANDOPS_LAKE"] = args.lake
    if args.registry_uri:
        os.environ["DEMANDOPS_REGISTRY_URI"] = args.registry_uri
    return load_settings(args.config, args.env)


def _generate(args: argparse.Namespace, settings: Settings) -> None:
    spec = SampleSpec(
        products=args.products,
        weeks=args.weeks,
        start=args.start,
        seed=args.seed,
        store_scale=args.store_scale,
        horizon_weeks=settings.pipeline.horizon_weeks,
    )
    regions = settings.select_regions(args.region)
    lake = Lake(settings.environment.lake)
    try:
        files = generate(lake, regions, spec)
    except ValueError as exc:
        raise DemandOpsError(f"cannot generate sample data: {exc}") from exc
    size = sum(len(f.data) for f in files) / 1e6
    print(f"sample data: {len(regions)} regions, {spec.products} products, {spec.weeks} weeks")
    print(f"  {len(files)} raw files ({size:.1f} MB) in {lake.location('raw')}")


def _print_summary(report: dict[str, Any], lake: Lake) -> None:
    print(f"run {report['run_id']}  ({report['seconds']} s, dataset {report['dataset_version']})")
    segments = report.get("segments", [])
    if segments:
        print(
            f"\n{'segment':<22}{'rows':>8}  {'model':<8}{'MAPE':>7}{'WAPE':>7}{'bias':>7}"
            f"{'RMSE':>8}{'RMSE0':>9}{'P10-P90':>8}  {'base MAPE':>9}{'base WAPE':>10}"
        )
        for s in segments:
            name = f"{s['region']}.{s['store_format']}.{s['velocity']}"
            print(
                f"{name:<22}{s['n_rows']:>8}  {s['model']:<8}{_pct(s['mape'])}{_pct(s['wape'])}"
                f"{_pct(s.get('bias'))}{_num(s['rmse'], 8)}{_num(s['rmse0'], 9)}"
                f"{_pct(s.get('coverage80'), 8)}  {_pct(s['baseline_mape'], 9)}"
                f"{_pct(s['baseline_wape'], 10)}"
            )
    print(f"\n{len(report['regions'])} regions, {len(segments)} segments")
    feeds = report.get("feeds", {})
    used = [n for n, state in feeds.items() if state != "absent"]
    absent = [n for n, state in feeds.items() if state == "absent"]
    if feeds:
        print(
            f"feeds used: {', '.join(used)}" + (f"; absent: {', '.join(absent)}" if absent else "")
        )
    if "scoring_date" in report:
        _print_registry(report, segments)
    for model, m in report.get("overall", {}).items():
        print(
            f"overall {model:<13} MAPE {_pct(m['mape'])}  WAPE {_pct(m['wape'])}"
            f"  bias {_pct(m.get('bias'))}  RMSE {_num(m['rmse'], 7)}  RMSE0 {_num(m['rmse0'], 7)}"
            f"  ({m['n_rows']} holdout rows)"
        )
    for warning in report.get("warnings", []):
        print(f"warning: {warning}")
    if "metrics_path" in report:
        print(f"metrics:   {report['metrics_path']}")
    if any("forecasts" in r["paths"] for r in report["regions"].values()):
        print(f"forecasts: {lake.location('forecasts')}")
    print(f"report:    {lake.location('monitoring/runs/' + report['run_id'] + '.json')}")


def _print_quality(results: list[dict[str, Any]]) -> None:
    """Failed data-quality checks one per line, files with too many rejected rows loudly on
    stderr, other warnings counted (details in the report)."""
    for q in results:
        if q["status"] == "fail":
            print(f"data quality fail: {q['region']} {q['check']} ({q['failing']}) {q['detail']}")
        if q["check"] == "rejected_share":
            print(f"WARNING: {q['region']}: {q['detail']}", file=sys.stderr)
    warnings = sum(q["status"] == "warn" and q["check"] != "rejected_share" for q in results)
    if warnings:
        print(f"data quality: {warnings} warning(s), see data_quality in the report")


def _print_registry(report: dict[str, Any], segments: list[dict[str, Any]]) -> None:
    """One line on the registry: champions, promotions, staleness, fallbacks, and the why."""
    count = {
        "champions": sum(1 for s in segments if s.get("champion_version")),
        "promoted this run": sum(1 for s in segments if s.get("promoted")),
        "stale": sum(1 for s in segments if s.get("stale")),
        "on the baseline": sum(1 for s in segments if s.get("fallback")),
    }
    print(
        f"registry (scoring date {report['scoring_date']}): "
        + ", ".join(f"{n} {what}" for what, n in count.items())
    )
    for s in segments:
        name = f"{s['region']}.{s['store_format']}.{s['velocity']}"
        if s.get("fallback") or s.get("stale") or s.get("registry_error"):
            why = s.get("registry_error") or s.get("fallback") or "stale"
            print(f"  {name}: {why}")


def _pct(value: float | None, width: int = 7) -> str:
    return f"{'-':>{width}}" if value is None else f"{value * 100:>{width - 1}.1f}%"


def _num(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.2f}"


def _submit_to_azureml(args: argparse.Namespace, settings: Settings, stage: Stage) -> None:
    """The same orchestration, driven from here, with every region a pipeline job in Azure ML."""
    from demandops.pipeline.compute.azureml import AzureMLBackend

    plan = plan_run(settings, args.region, "weekly" if args.command == "run" else stage)
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    outcome = orchestrate(
        settings, plan, AzureMLBackend.from_settings(settings), run_id, not args.quiet
    )
    for region, s in outcome["regions"].items():
        where = s.get("outputs", {}).get("studio_url") or s.get("error", "")
        print(f"{region:<12}{s['state']:<11}{s.get('run_id', '-'):<40}{where}")
    print(f"{len(outcome['regions'])} regions: {outcome['states']}")
    if set(outcome["states"]) != {"Completed"}:
        raise DemandOpsError(f"run {run_id}: not every region completed: {outcome['states']}")


def _run(args: argparse.Namespace, settings: Settings) -> None:
    stage: Stage = {"condition": "condition", "train": "train"}.get(args.command, "score")  # type: ignore[assignment]
    if settings.environment.compute == "azureml" and not args.local and stage != "condition":
        _submit_to_azureml(args, settings, stage)
        return
    regions = [r.id for r in settings.select_regions(args.region)]
    env = settings.environment
    # an Azure ML component's step (--local): one region of a batch its orchestration runs once
    scope = f"{env.name}.region={'+'.join(regions)}" if env.compute == "azureml" else None
    report = run_batch(settings, regions, until=stage, progress=not args.quiet,
                       lock_wait=args.lock_wait, lock_scope=scope)  # fmt: skip
    if args.report_json:
        path = Path(args.report_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        try:
            tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    _print_summary(report, Lake(settings.environment.lake))
    if args.report_json:
        print(f"json:      {args.report_json}")
    _print_quality(report["data_quality"])
    if any(q["check"] == "readable_files" for q in report["data_quality"]):
        raise DataQualityFailure("raw files could not be read; they were skipped and stay in raw/")


def _condition(args: argparse.Namespace, settings: Settings) -> int:
    profiles = Path(args.profiles) if args.profiles else settings.config_dir / "sources"
    regions = [r.id for r in settings.select_regions(args.region)]
    progress = not (args.quiet or args.json)
    summary = condition_summary(settings, regions, profiles, args.source, progress, args.lock_wait)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print_summary(summary)
    if summary["unreadable"]:
        print(
            f"demandops: error: {len(summary['unreadable'])} raw file(s) could not be read; "
            "they were skipped and stay in raw/ (see `unreadable`)",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
    except BrokenPipeError:  # the reader went away (`demandops models list | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_STATUS
    return status


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # ours say enough
    logging.basicConfig(level=logging.WARNING, format=telemetry.LOG_FORMAT)
    try:
        if args.command in deploy.COMMANDS:  # no configuration needed
            deploy.run(args)
            return 0
        telemetry.configure(telemetry.Setup.resolve(args.telemetry))
        settings = _settings(args)
        if args.command == "generate":
            _generate(args, settings)
        elif args.command == "condition":
            return _condition(args, settings)
        elif args.command in backtest_cli.COMMANDS:
            backtest_cli.run(args, settings)
        elif args.command in models_cli.COMMANDS:
            models_cli.run(args, settings)
        elif args.command in dashboard.COMMANDS:
            dashboard.run(args, settings)
        else:
            _run(args, settings)
    except DataQualityFailure as exc:
        print(f"demandops: error: {exc}", file=sys.stderr)
        return 1
    except DemandOpsError as exc:
        print(f"demandops: error: {telemetry.redact(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise  # not a fault: `main` stops quietly
    except (OSError, UnicodeDecodeError, *faults.REGISTRY_ERRORS) as exc:  # a fault, not a bug
        print(f"demandops: error: {telemetry.redact(faults.describe(exc))}", file=sys.stderr)
        return 2
    finally:
        telemetry.flush()
    return 0
