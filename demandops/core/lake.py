"""The data lake: a folder tree over fsspec (a local folder, or ADLS Gen2 through `abfs://`).

Datasets are immutable folders named by version (`.../v=<hash>/`). Their files are written
first and `manifest.json` last: the manifest is the commit marker, and readers ignore any
folder without one. No rename is needed, so the protocol is the same on a local disk, on Blob
storage and on ADLS Gen2, and a crash never leaves a half-written dataset visible.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import fsspec
import pandas as pd

from demandops.core.csv_text import csv_text
from demandops.core.errors import DataError
from demandops.core.hashing import sha256_bytes
from demandops.core.limits import clip

MANIFEST = "manifest.json"
ZONES = (
    "raw",
    "conditioned",
    "features",
    "models",
    "forecasts",
    "metrics",
    "quarantine",
    "monitoring",
)


@dataclass(frozen=True)
class Dataset:
    """A committed dataset: its folder (relative to the lake root) and its manifest."""

    path: str
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def file(self, name: str) -> str:
        return f"{self.path}/{name}"


class Lake:
    """Read and write files and versioned datasets under one root URL."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        self.is_local = "file" in _protocols(self.fs)

    def __repr__(self) -> str:
        return f"Lake({self.url!r})"

    def full_path(self, rel: str) -> str:
        """The path of `rel` below the root; a path that climbs out (`..`) is a DataError."""
        if ".." in rel.replace("\\", "/").split("/"):
            raise DataError(f"refused {clip(rel)!r}: the path leaves the lake {self.url}")
        return f"{self.root}/{rel.strip('/')}" if rel else self.root

    def refusal(self, rel: str) -> str | None:
        """Why the file at `rel` is not read, or None: on a local lake, a symbolic link (even
        to a file in the lake: raw/ holds what was delivered, not pointers) or a path that
        resolves outside the lake through a linked folder."""
        if not self.is_local:
            return None
        path = self.full_path(rel)
        if os.path.islink(path):
            return f"cannot read {rel}: a symbolic link (to {clip(os.readlink(path))}), not a file"
        root = os.path.realpath(self.root)
        if os.path.commonpath([root, os.path.realpath(path)]) != root:
            return f"cannot read {rel}: it resolves outside the lake, through a linked folder"
        return None

    def location(self, rel: str = "") -> str:
        """A path a person can open: the local path, or the URL in the cloud."""
        if self.is_local:
            return self.full_path(rel)
        return f"{self.url}/{rel}" if rel else self.url

    # -- files --------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self.full_path(rel)))

    def read_bytes(self, rel: str) -> bytes:
        refused = self.refusal(rel)
        if refused:
            raise DataError(refused)
        try:
            return bytes(self.fs.cat_file(self.full_path(rel)))
        except FileNotFoundError as exc:
            raise DataError(f"not found in the lake: {self.location(rel)}") from exc

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write one file whole: readers see the old file or the new one, never a part."""
        zone = rel.strip("/").split("/", 1)[0]
        if zone not in ZONES:
            raise ValueError(f"{rel!r} is outside the lake's zones {ZONES}")
        path = self.full_path(rel)
        if self.is_local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex}"
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException as exc:  # a full disk: no partial file is left behind
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                if isinstance(exc, OSError) and exc.filename is None:  # say where
                    raise OSError(exc.errno, exc.strerror, path) from exc
                raise
        else:  # a blob upload becomes visible only when complete
            self.fs.pipe_file(path, data)

    def list_files(self, rel: str) -> list[str]:
        """Relative paths of every file below `rel`, sorted; [] if it does not exist."""
        base = self.full_path(rel)
        if not self.fs.exists(base):
            return []
        found = self.fs.find(base)
        prefix = self.root.rstrip("/") + "/"
        return sorted(p[len(prefix) :] if p.startswith(prefix) else p for p in found)

    def list_dirs(self, rel: str) -> list[str]:
        """Names of the folders directly below `rel`, sorted."""
        base = self.full_path(rel)
        if not self.fs.exists(base):
            return []
        entries = self.fs.ls(base, detail=True)
        return sorted(
            e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory"
        )

    # -- tables -------------------------------------------------------------------------
    def read_csv(self, rel: str, **kwargs: Any) -> pd.DataFrame:
        return pd.read_csv(io.BytesIO(self.read_bytes(rel)), **kwargs)

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    # -- versioned datasets -------------------------------------------------------------
    def dataset(self, path: str) -> Dataset | None:
        """The committed dataset at `path`, or None if it is absent or was never committed."""
        manifest_path = f"{path}/{MANIFEST}"
        if not self.exists(manifest_path):
            return None
        return Dataset(path=path, manifest=self.read_json(manifest_path))

    def commit_dataset(
        self, path: str, files: Mapping[str, bytes], manifest: Mapping[str, Any]
    ) -> Dataset:
        """Write `files` under `path`, then the manifest (with every file's hash) as the commit."""
        for name, data in files.items():
            self.write_bytes(f"{path}/{name}", data)
        full = {
            **manifest,
            "files": {n: {"sha256": sha256_bytes(d), "bytes": len(d)} for n, d in files.items()},
        }
        text = json.dumps(full, indent=2, sort_keys=True, default=str) + "\n"
        self.write_bytes(f"{path}/{MANIFEST}", text.encode("utf-8"))
        return Dataset(path=path, manifest=json.loads(text))


def commit_or_reuse(
    lake: Lake, path: str, build: Callable[[], tuple[dict[str, bytes], dict[str, object]]]
) -> Dataset:
    """The committed dataset at `path`; if there is none, `build()` its files and commit them."""
    existing = lake.dataset(path)
    if existing is not None:
        return existing
    files, manifest = build()
    return lake.commit_dataset(path, files, manifest)


def versioned(prefix: str, version: str) -> str:
    return f"{prefix}/v={version}"


def frame_to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """Standard CSV: UTF-8, comma, ISO dates, no index, stable float formatting."""
    return csv_text(frame).encode("utf-8")


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
