"""Build the deployable artefacts into dist/, byte for byte reproducible from the same tree:

- `functionapp.zip`: what Azure Functions runs (`func azure functionapp publish` or zip deploy),
  the entry point, host settings, runtime requirements and the packages it imports;
- `aml.zip`: what Azure ML jobs are built from: the code their commands run, the configuration,
  the Azure ML components and environment (both under ml/) and the submission script.

Entries are sorted, timestamped 1980-01-01 and given fixed permissions, so the zip's sha256
changes only when a packaged file does."""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

from demandops.pipeline.compute.code_snapshot import CODE, collect

ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS: dict[str, tuple[str, ...]] = {
    "functionapp.zip": (
        "function_app.py",
        "host.json",
        "requirements.txt",
        ".amlignore",
        "functions",
        *CODE,
    ),
    "aml.zip": (*CODE, "pyproject.toml", "README.md", "scripts/aml_jobs.py"),
}
EPOCH = (1980, 1, 1, 0, 0, 0)


def build_zip(root: Path, entries: tuple[str, ...], target: Path) -> str:
    """Write `target` from `entries` deterministically; return its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in collect(root, entries):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(target)
    return hashlib.sha256(target.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree (default: this repo)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder")
    args = parser.parse_args(argv)
    for name, entries in ARTEFACTS.items():
        try:
            sha = build_zip(args.root, entries, args.out / name)
        except FileNotFoundError as exc:
            print(f"package: error: {exc}", file=sys.stderr)
            return 2
        print(f"{args.out / name}  sha256 {sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
