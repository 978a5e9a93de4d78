"""What an Azure ML job runs: the project's packages and configuration, as a code snapshot.

Azure ML hashes a job's `code:` folder to find (or upload) its snapshot. Pointed at the
repository, the SDK walks every file below it, `.venv/` and `node_modules/` included (its ignore
file filters files, not the walk): tens of seconds per submitted job. The backend stages just
`CODE` in a folder of its own, once per process; `scripts/package.py` zips the same files."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CODE = ("demandops", "conditioners", "ml", "config")
SKIP_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def collect(root: Path, entries: tuple[str, ...]) -> list[Path]:
    """The files under `entries` (files or folders, relative to `root`), sorted, without caches."""
    files: set[Path] = set()
    for entry in entries:
        path = root / entry
        if not path.exists():
            raise FileNotFoundError(f"cannot package {entry}: no such file or folder in {root}")
        candidates = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        files.update(
            p
            for p in candidates
            if not SKIP_PARTS & set(p.relative_to(root).parts) and p.suffix not in SKIP_SUFFIXES
        )
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


@functools.cache
def staged_code(root: Path = ROOT) -> Path:
    """A folder holding a copy of `CODE` of `root` (removed when the process exits): the same
    files give the same snapshot hash, so the workspace uploads a snapshot once."""
    folder = Path(tempfile.mkdtemp(prefix="demandops-code-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for path in collect(root, CODE):
        target = folder / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return folder
