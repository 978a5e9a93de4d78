"""Stable content hashes: dataset versions are named by the hash of their inputs and code."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

# the code that shapes data: a change here makes every derived dataset new; the CLI, the
# settings loader and the entry points do not
DATA_CODE = (
    "conditioners",
    "ml",
    "demandops/pipeline/steps",
    "demandops/core/calendar.py",
    "demandops/core/limits.py",
    "demandops/monitoring/quality.py",
    "demandops/monitoring/drift.py",
)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-serialisable object, independent of dict order."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(text.encode("utf-8"))[:length]


@cache
def code_version() -> str:
    """Hash of the Python sources in DATA_CODE."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for entry in DATA_CODE:
        base = root / entry
        for path in sorted(base.rglob("*.py")) if base.is_dir() else [base]:
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]
