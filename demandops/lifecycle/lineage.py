"""Lineage: from a forecast or a training run back to the raw files (with sha256) behind it.

The lake's manifests chain: forecasts manifest → per segment the champion's registry version and
training run → the run's tags (model dataset, features dataset, dataset and code versions, git
commit) → the features manifest's `depends` (conditioned dataset versions) → each conditioned
manifest's `inputs`, the raw files with their sha256.
"""

from __future__ import annotations

import json
from typing import Any

from demandops.core.errors import DataError
from demandops.core.lake import MANIFEST, Dataset, Lake

RUN_TAGS = (
    "segment",
    "model_kind",
    "model_dataset",
    "features_dataset",
    "features_version",
    "dataset_version",
    "code_version",
    "git_commit",
    "trained_on",
    "environment",
)


def find_dataset(lake: Lake, zone: str, version: str) -> Dataset | None:
    """The committed dataset of `zone` whose folder is `v=<version>`."""
    suffix = f"/v={version}/{MANIFEST}"
    for f in lake.list_files(zone):
        if f.endswith(suffix):
            return lake.dataset(f[: -len(MANIFEST) - 1])
    return None


def data_lineage(lake: Lake, features: Dataset) -> dict[str, Any]:
    """The feature table and every conditioned dataset and raw file (sha256) it was built from."""
    conditioned = []
    for name, version in sorted(features.manifest.get("depends", {}).items()):
        ds = find_dataset(lake, "conditioned", version)
        checks = None if ds else find_dataset(lake, "monitoring", version)  # data-quality results
        entry: dict[str, Any] = {"name": name, "version": version}
        if ds is not None:
            entry |= {"path": ds.path, "raw_files": ds.manifest.get("inputs", {})}
        elif checks is not None:  # checks on the conditioned feeds: no raw files of their own
            entry |= {"path": checks.path, "raw_files": {}}
        else:
            entry["missing"] = f"no committed conditioned dataset v={version} in {lake.location()}"
        conditioned.append(entry)
    return {
        "features": {"path": features.path, "version": features.version},
        "conditioned": conditioned,
    }


def run_lineage(lake: Lake, registry: Any, run_id: str) -> dict[str, Any]:
    """A training run's parameters, versions and data lineage."""
    run = registry.run(run_id)
    tags = run.data.tags
    out: dict[str, Any] = {
        "run_id": run_id,
        **{k: tags.get(k, "") for k in RUN_TAGS},
        "params": dict(run.data.params),
    }
    features = lake.dataset(tags.get("features_dataset", ""))
    if features is not None:
        out["data"] = data_lineage(lake, features)
    else:  # e.g. a model promoted from another environment: its lineage travelled with it
        out["data"] = json.loads(registry.artefact(run_id, "lineage.json"))
    return out


def forecast_lineage(lake: Lake, registry: Any, path: str) -> dict[str, Any]:
    """Lineage of a forecasts dataset (its folder or any file in it), per segment."""
    rel = _relative(lake, path)
    folder = rel if rel.rsplit("/", 1)[-1].startswith("v=") else rel.rsplit("/", 1)[0]
    ds = lake.dataset(folder)
    if ds is None or not folder.startswith("forecasts/"):
        raise DataError(f"{path} is not a committed forecasts dataset")
    segments = {}
    for segment, champ in sorted(ds.manifest.get("champions", {}).items()):
        entry = dict(champ)
        if champ.get("run_id"):
            entry["run"] = run_lineage(lake, registry, champ["run_id"])
        segments[segment] = entry
    return {
        "forecasts": {"path": ds.path, "version": ds.version, "as_of": ds.manifest.get("as_of")},
        "model_dataset": ds.manifest.get("model"),
        "features": ds.manifest.get("features"),
        "segments": segments,
    }


def _relative(lake: Lake, path: str) -> str:
    """`path` relative to the lake root (accepts absolute local paths and lake URLs)."""
    for prefix in (lake.location(), lake.root, lake.url):
        if path.startswith(prefix.rstrip("/") + "/"):
            return path[len(prefix.rstrip("/")) + 1 :].rstrip("/")
    return path.strip("/")


def render(lineage: dict[str, Any], indent: int = 0) -> str:
    """An indented text tree of a lineage record."""
    lines = []
    pad = "  " * indent
    for key, value in lineage.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.append(render(value, indent + 1))
        elif isinstance(value, list):
            lines.append(f"{pad}{key}:")
            for item in value:
                if isinstance(item, dict):
                    lines.append(f"{pad}  -")
                    lines.append(render(item, indent + 2))
                else:
                    lines.append(f"{pad}  - {item}")
        else:
            lines.append(f"{pad}{key}: {value}")
    return "\n".join(line for line in lines if line)
