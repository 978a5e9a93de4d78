"""Manual registry operations across environments: promote a validated version, roll back.

`promote` to another environment copies the model dataset between lakes (manifest last) and
re-logs the run, with its parameters, metrics, tags and artefacts (lineage included), in the
target registry before making it that environment's champion. Every operation is recorded in
the target lake's `monitoring/promotions/`.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from demandops.core.lake import MANIFEST, Lake
from demandops.core.settings import Environment
from demandops.lifecycle.champions import open_registry, record_decision
from demandops.lifecycle.registry import RegistryError


def promote(
    src_env: Environment, dst_env: Environment, name: str, version: str | None, today: date
) -> str:
    """Make a validated version champion in `dst_env` (copying it and its lineage there)."""
    src = open_registry(src_env, create=False)
    mv = src.version(name, version) if version else src.champion(name)
    if mv is None:
        raise RegistryError(f"{name} has no champion in {src_env.name}; name a --version")
    if mv.tags.get("gate_passed") != "true":
        raise RegistryError(
            f"{name} v{mv.version} did not pass the promotion gates: "
            f"{mv.tags.get('gate_reasons', 'never evaluated')}"
        )
    if dst_env.name == src_env.name:
        src.set_champion(name, str(mv.version))
        record_decision(
            Lake(src_env.lake), src_env.name, name, str(mv.version), "promoted-manual",
            [f"promoted by hand in {src_env.name}"], {}, today,
        )  # fmt: skip
        return f"{name} v{mv.version} is now champion in {src_env.name}"
    dst = open_registry(dst_env)
    dst_lake = Lake(dst_env.lake)
    _copy_dataset(Lake(src_env.lake), dst_lake, mv.tags["model_dataset"])
    source_run = mv.tags.get("run_id") or str(mv.run_id)
    copied = dst.find(name, source_run_id=source_run)
    if copied is None:
        run = src.run(source_run)
        tags = dict(mv.tags) | {
            "source_environment": src_env.name,
            "source_version": str(mv.version),
            "source_run_id": source_run,
            "environment": dst_env.name,
        }
        with tempfile.TemporaryDirectory() as tmp:  # the MLflow model, or a legacy pickle
            folder = src.download_model(source_run, Path(tmp))
            run_id = dst.log_run(
                f"promote.{name}", dict(run.data.params), dict(run.data.metrics), tags, {}, folder
            )
        copied = dst.register(name, run_id, tags | {"run_id": run_id})
    dst.set_champion(name, str(copied.version))
    record_decision(
        dst_lake, dst_env.name, name, str(copied.version), "promoted-from-" + src_env.name,
        [f"{src_env.name} v{mv.version} (run {source_run}) passed: {mv.tags.get('gate_reasons')}"],
        {"source_version": str(mv.version), "source_run_id": source_run}, today,
    )  # fmt: skip
    return f"{name} {src_env.name} v{mv.version} -> {dst_env.name} v{copied.version} (champion)"


def _copy_dataset(src: Lake, dst: Lake, path: str) -> None:
    """Copy a committed dataset between lakes, manifest last; nothing if already there."""
    if dst.dataset(path) is not None:
        return
    ds = src.dataset(path)
    if ds is None:
        raise RegistryError(f"model dataset {src.location(path)} is not committed")
    for f in src.list_files(path):
        if not f.endswith("/" + MANIFEST):
            dst.write_bytes(f, src.read_bytes(f))
    dst.write_bytes(f"{path}/{MANIFEST}", src.read_bytes(f"{path}/{MANIFEST}"))


def rollback(env: Environment, name: str, today: date) -> str:
    """Restore the previous champion of `name` in `env`."""
    registry = open_registry(env, create=False)
    old, new = registry.rollback(name)
    record_decision(
        Lake(env.lake), env.name, name, new, "rollback",
        [f"rolled back from v{old} to v{new}"], {"from_version": old}, today,
    )  # fmt: skip
    return f"{name}: champion v{old} -> v{new} (rolled back)"


def promote_challenger(env: Environment, name: str, result: dict[str, Any], today: date) -> str:
    """Make the challenger of `result` (a row of `monitoring.challengers.compare`) champion
    if it was significantly better than the current champion; otherwise say why not."""
    registry = open_registry(env, create=False)
    champion = registry.champion(name)
    version = str(result["challenger_version"])
    if champion is None or str(champion.version) != str(result["champion_version"]):
        return f"{name}: the comparison is against v{result['champion_version']}, not the champion"
    if not result["better"]:
        return f"{name}: champion v{champion.version} kept: {result['note']}"
    registry.set_champion(name, version)
    registry.set_challenger(name, None)
    values = {k: result[k] for k in ("pairs", "champion_mae", "challenger_mae", "p_value")}
    record_decision(
        Lake(env.lake), env.name, name, version, "promoted-challenger", [str(result["note"])],
        values | {"previous_champion": str(champion.version)}, today,
    )  # fmt: skip
    return f"{name}: challenger v{version} is now champion ({result['note']})"
