"""`demandops init DIR` scaffolds a deployment; `demandops profile suggest FILE` drafts a profile.

A deployment is a folder a company owns: config/ (regions, pipeline, the dev environment whose
lake is DIR/lake, and config/sources/ for its profiles, with a template per feed in
config/sources/templates/), an empty lake (raw/<feed>/ folders), and a README of next steps.
Neither command needs a configuration to exist.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from conditioners.schemas import SCHEMAS
from conditioners.suggest import suggest
from demandops.core.errors import ConfigError, DataError
from demandops.core.settings import DEFAULT_CONFIG_DIR

COMMANDS = ("init", "profile")
REGION_FEEDS = ("shipments", "returns", "promotions")


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    init = sub.add_parser(
        "init",
        help="scaffold a deployment: config/, an empty lake, a profile template per feed",
        description="Create DIR with config/ (regions, pipeline, environment, profile "
        "templates), lake/raw/<feed>/ folders and a README of next steps. DIR must not exist "
        "or be empty.",
    )
    init.add_argument("dir", metavar="DIR", help="the new deployment's folder")
    init.add_argument("--region", default="main", help="the first region's id (default: main)")
    profile = sub.add_parser("profile", help="work with source profiles")
    verbs = profile.add_subparsers(dest="verb", required=True, metavar="VERB")
    draft = verbs.add_parser(
        "suggest",
        help="draft a profile from a sample of a raw CSV file (printed as YAML)",
        description="Read the start of FILE and print a draft profile: encoding, delimiter, "
        "line endings, header, each column's type and date format, and the standard columns "
        "matched by name. Check and edit it before use.",
    )
    draft.add_argument("file", metavar="FILE", help="a raw CSV export")
    draft.add_argument("--source", default="shipments", choices=sorted(SCHEMAS))
    draft.add_argument("--out", metavar="PATH", help="write the draft here instead of printing")


def run(args: argparse.Namespace) -> None:
    if args.command == "init":
        _init(Path(args.dir), args.region)
    else:
        path = Path(args.file)
        try:
            data = path.read_bytes()
            text = suggest(data, path.name, args.source)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot suggest a profile for {path}: {exc}") from exc
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
            print(f"draft profile: {args.out}")
        else:
            sys.stdout.write(text)


def _init(root: Path, region: str) -> None:
    if root.exists() and any(root.iterdir()):
        raise ConfigError(str(root), "", "the deployment folder exists and is not empty")
    config = root / "config"
    (config / "sources" / "templates").mkdir(parents=True)
    (config / "environments").mkdir()
    shutil.copy(DEFAULT_CONFIG_DIR / "pipeline.yaml", config / "pipeline.yaml")
    env = (DEFAULT_CONFIG_DIR / "environments" / "dev.yaml").read_text(encoding="utf-8")
    lake = (root / "lake").resolve()
    (config / "environments" / "dev.yaml").write_text(
        env.replace("lake: .lake ", f"lake: {lake}"), encoding="utf-8"
    )
    (config / "regions.yaml").write_text(_regions(region), encoding="utf-8")
    for source in SCHEMAS:
        (config / "sources" / "templates" / f"{source}.yaml").write_text(
            profile_template(source), encoding="utf-8"
        )
        folder = lake / "raw" / (f"{source}/region={region}" if source in REGION_FEEDS else source)
        folder.mkdir(parents=True)
        (folder / ".keep").write_bytes(b"")
    (root / "README.md").write_text(_readme(root, region), encoding="utf-8")
    print(f"deployment scaffolded in {root}; next steps: {root / 'README.md'}")


def profile_template(source: str) -> str:
    """A profile for `source` with every standard column to fill in, described."""
    schema = SCHEMAS[source]
    where = f"{source}/region=*/*.csv" if source in REGION_FEEDS else f"{source}/*.csv"
    need = "required" if source == "shipments" else "optional: delete this file if you have none"
    lines = [
        f"# {source} ({need}). Save as config/sources/<name>.yaml once filled in;",
        "# `demandops profile suggest FILE` drafts one from an export. docs/sources.md has",
        "# every option (map, price, round, negative, aggregate, from_path, skip, ...).",
        f"name: {source}",
        f"source: {source}",
        f'files: ["{where}"]  # globs below the lake\'s raw/',
        "columns:",
    ]
    for col in schema.columns:
        unit = f", in {col.unit}" if col.unit else ""
        opt = "optional" if col.nullable else "required"
        lines.append(f"  {col.name}: {{from: {col.name}}}  # {opt}: {col.description}{unit}")
    return "\n".join(lines) + "\n"


def _regions(region: str) -> str:
    return (
        "# Regions: each is a unit of parallel work and a folder region=<id> of the weekly feeds.\n"
        "# holidays: the region's public holidays ({country: DE, subdivision: NW}; default US).\n"
        "# discover: every other region=<id> folder below raw/shipments/ is a region too.\n"
        "discover: {}\n"
        "regions:\n"
        f"  - {{id: {region}, name: {region}}}\n"
    )


def _readme(root: Path, region: str) -> str:
    return f"""# Deployment in {root}

Next steps (docs/bring-your-own-data.md walks through an example):

1. Put each export below `lake/raw/`: weekly feeds per region in
   `lake/raw/shipments/region={region}/` (and returns/, promotions/), the others in
   `lake/raw/<feed>/`. Only shipments are required; a feed without a profile and without
   files is left out and the models train without it.
2. Draft a profile per export: `demandops profile suggest lake/raw/shipments/region={region}/FILE
   --out config/sources/shipments.yaml` (or copy one of `config/sources/templates/`), then edit it.
3. List your regions in `config/regions.yaml`.
4. `demandops condition --config config`: every row is counted as out, aggregated or rejected
   (reasons in `lake/quarantine/`); fix the profiles until nothing unexpected is rejected.
5. `demandops backtest --config config` to see how the models would have done, then
   `demandops run --config config` for forecasts in `lake/forecasts/`.
"""
