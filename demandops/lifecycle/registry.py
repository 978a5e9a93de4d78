"""The model registry: MLflow tracking runs and registered models, one per segment.

Every segment's model is registered as `demand.<region>.<format>.<velocity>`. A new version is a
candidate (tag `status=candidate`); the alias `champion` points at the version that forecasts.
The registered model's tag `champion_history` lists every version that was champion, oldest
first, so that a rollback can restore the previous one.

Locally the store is sqlite in the lake folder (`sqlite:///{lake}/mlflow.db`, artefacts in
`{lake}/mlflow-artifacts`); in Azure it is the Azure ML workspace's MLflow tracking URI. Only
the URI differs. Writers in several processes share one sqlite file: a write that finds the
database locked is retried.

Crash safety (docs/crash-safety.md): a local store is created whole or not at all (migrated in
a temporary file beside it, then hard-linked into place); a version's `status` tag is set last,
so a version still tagged `candidate` is one whose decision a crash interrupted, and the next
batch completes it; `set_champion` and `rollback` can be repeated until they finish.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from mlflow.entities import Metric, Param, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from demandops.core.errors import DemandOpsError

EXPERIMENT = "demandops-training"
CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"
PREFIX = "demand."
SQLITE = "sqlite:///"

T = TypeVar("T")

for _noisy in ("mlflow.store.db.utils", "alembic.runtime.migration", "mlflow.store"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)


class RegistryError(DemandOpsError):
    """The registry refused or could not complete an operation."""


def model_name(segment: str) -> str:
    """The registered model name of a segment `<region>.<format>.<velocity>`."""
    return PREFIX + segment


def resolve_uri(uri: str, lake_url: str, lake_is_local: bool) -> tuple[str, str | None]:
    """The tracking URI with `{lake}` substituted, and the artefact root of a sqlite store
    (`mlflow-artifacts` beside the database file; a tracking server keeps its own)."""
    if "{lake}" in uri:
        if not lake_is_local:
            raise ValueError(
                f"registry_uri {uri!r} puts the registry in the lake, which needs a local lake "
                f"(the lake is {lake_url}); set registry_uri to the Azure ML workspace's MLflow "
                "URI (registry_uri: azureml) or another tracking URI outside the lake"
            )
        uri = uri.replace("{lake}", str(Path(lake_url.removeprefix("file://")).resolve()))
    return uri, default_artifact_root(uri)


def default_artifact_root(uri: str) -> str | None:
    """`mlflow-artifacts` beside a sqlite store's file; None for a server (it keeps its own)."""
    if not uri.startswith(SQLITE):
        return None
    return (Path(uri.removeprefix(SQLITE)).parent / "mlflow-artifacts").as_uri()


def create_store(uri: str, artifact_root: str | None) -> None:
    """Create the sqlite store of `uri` atomically, with the training experiment, if it does not
    exist: MLflow's ~70 migrations run in `<db>.creating-<pid>-<rand>` beside it, which is then
    hard-linked to its name (a store another process created meanwhile wins). A temporary file
    of a creator that died (a kill -9) is removed. Other URIs: nothing to do."""
    if not uri.startswith(SQLITE):
        return
    db = Path(uri.removeprefix(SQLITE))
    db.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_creations(db)
    if db.exists():
        return
    tmp = db.with_name(f"{db.name}.creating-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        client = MlflowClient(tracking_uri=SQLITE + str(tmp), registry_uri=SQLITE + str(tmp))
        client.create_experiment(EXPERIMENT, artifact_location=artifact_root)
        client.search_registered_models(max_results=1)  # the registry's tables are checked too
        with contextlib.suppress(FileExistsError):
            os.link(tmp, db)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            leftover.unlink(missing_ok=True)


def _remove_dead_creations(db: Path) -> None:
    for tmp in db.parent.glob(f"{db.name}.creating-*"):
        pid = tmp.name.removeprefix(f"{db.name}.creating-").split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _retry(fn: Callable[[], T], attempts: int = 30) -> T:
    """Run `fn`, retrying while another process holds the sqlite write lock."""
    for attempt in range(attempts):
        try:
            return fn()
        except MlflowException as exc:
            if "locked" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def store_exists(uri: str) -> bool:
    """Whether the store of `uri` exists: a sqlite file is looked for; other URIs name a
    server or workspace, which is taken to exist."""
    return not uri.startswith(SQLITE) or Path(uri.removeprefix(SQLITE)).is_file()


class Registry:
    """A thin layer over `MlflowClient` for segment models.

    The store is created (atomically, by `create_store`) before the client is: MLflow's client
    creates and migrates a missing sqlite file in place, which a kill would leave half-migrated.
    With `create=False` a missing local store is a RegistryError instead (a mistyped lake)."""

    def __init__(self, uri: str, artifact_root: str | None = None, *, create: bool = True) -> None:
        self.uri = uri
        self.artifact_root = artifact_root or default_artifact_root(uri)
        if create:
            create_store(uri, self.artifact_root)
        elif not store_exists(uri):
            raise RegistryError(
                f"no model registry at {uri.removeprefix(SQLITE)}: no batch has run on this "
                "lake (is --lake right?)"
            )
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self._experiment_id: str | None = None

    def experiment_id(self) -> str:
        """The training experiment's id, created on first use."""
        if self._experiment_id is None:
            found = _retry(lambda: self.client.get_experiment_by_name(EXPERIMENT))
            if found is None:
                try:
                    self._experiment_id = _retry(
                        lambda: self.client.create_experiment(
                            EXPERIMENT, artifact_location=self.artifact_root
                        )
                    )
                except MlflowException as exc:  # created meanwhile by another process
                    found = self.client.get_experiment_by_name(EXPERIMENT)
                    if found is None:
                        raise RegistryError(f"cannot create experiment {EXPERIMENT}") from exc
            if found is not None:
                self._experiment_id = found.experiment_id
        assert self._experiment_id is not None
        return self._experiment_id

    # -- writing ------------------------------------------------------------------------
    def log_run(
        self,
        run_name: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str],
        artefacts: dict[str, bytes],
        model_dir: Path | None = None,
    ) -> str:
        """One finished tracking run with its parameters, metrics, tags and files (added to
        `model_dir`, an MLflow model folder, when given) under `model/`; its id."""
        run = _retry(
            lambda: self.client.create_run(self.experiment_id(), run_name=run_name, tags=tags)
        )
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        _retry(
            lambda: self.client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())],
                params=[Param(k, str(v)) for k, v in sorted(params.items())],
                tags=[RunTag(k, v) for k, v in sorted(tags.items())],
            )
        )
        with tempfile.TemporaryDirectory() as tmp:
            folder = model_dir or Path(tmp, "model")
            folder.mkdir(exist_ok=True)
            for name, data in artefacts.items():
                (folder / name).write_bytes(data)
            _retry(lambda: self.client.log_artifacts(run_id, str(folder), "model"))
        _retry(lambda: self.client.set_terminated(run_id))
        return run_id

    def register(self, name: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
        """A new version of `name` from the run's `model/` artefacts, tagged a candidate."""
        try:
            _retry(lambda: self.client.create_registered_model(name))
        except MlflowException as exc:
            if "already exists" not in str(exc).lower():
                raise
        source = f"runs:/{run_id}/model"
        return _retry(
            lambda: self.client.create_model_version(
                name, source, run_id=run_id, tags={**tags, "status": "candidate"}
            )
        )

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            _retry(lambda k=key, v=value: self.client.set_model_version_tag(name, version, k, v))  # type: ignore[misc]

    def set_champion(self, name: str, version: str) -> None:
        """Point the champion alias at `version`, append it to the champion history, retire any
        other version still tagged champion, and tag it champion last. Repeating it after an
        interruption finishes it."""
        _retry(lambda: self.client.set_registered_model_alias(name, CHAMPION, version))
        history = self.champion_history(name)
        if history[-1:] != [version]:
            history.append(version)
            text = ",".join(history)
            _retry(lambda: self.client.set_registered_model_tag(name, HISTORY_TAG, text))
        self._retire_others(name, version, "retired")
        self.tag_version(name, version, {"status": "champion"})

    def set_challenger(self, name: str, version: str | None) -> None:
        """Point the challenger alias at `version` (a registered one), or remove it (None)."""
        if version is None:
            _retry(lambda: self.client.delete_registered_model_alias(name, CHALLENGER))
            return
        self.version(name, version)  # a RegistryError if there is no such version
        _retry(lambda: self.client.set_registered_model_alias(name, CHALLENGER, version))

    def challenger(self, name: str) -> ModelVersion | None:
        return self._by_alias(name, CHALLENGER)

    def _retire_others(self, name: str, keep: str, status: str) -> None:
        for other in self.versions(name):
            if other.tags.get("status") == "champion" and str(other.version) != keep:
                self.tag_version(name, str(other.version), {"status": status})

    def rollback(self, name: str) -> tuple[str, str]:
        """Make the previous champion the champion again; (from version, to version)."""
        history = self.champion_history(name)
        current = self.champion(name)
        if current is None or len(history) < 2:
            raise RegistryError(f"{name}: no previous champion to roll back to")
        previous = history[-2]
        _retry(lambda: self.client.set_registered_model_alias(name, CHAMPION, previous))
        _retry(
            lambda: self.client.set_registered_model_tag(name, HISTORY_TAG, ",".join(history[:-1]))
        )
        self._retire_others(name, previous, "rolled_back")
        self.tag_version(name, previous, {"status": "champion"})
        return str(current.version), previous

    # -- reading ------------------------------------------------------------------------
    def champion(self, name: str) -> ModelVersion | None:
        return self._by_alias(name, CHAMPION)

    def _by_alias(self, name: str, alias: str) -> ModelVersion | None:
        try:
            return _retry(lambda: self.client.get_model_version_by_alias(name, alias))
        except MlflowException as exc:
            if "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
                return None
            raise

    def champion_history(self, name: str) -> list[str]:
        try:
            model = _retry(lambda: self.client.get_registered_model(name))
        except MlflowException:
            return []
        text = model.tags.get(HISTORY_TAG, "")
        return [v for v in text.split(",") if v]

    def version(self, name: str, version: str) -> ModelVersion:
        try:
            return _retry(lambda: self.client.get_model_version(name, version))
        except MlflowException as exc:
            raise RegistryError(f"no version {version} of {name} in {self.uri}") from exc

    def versions(self, name: str) -> list[ModelVersion]:
        found = _retry(lambda: self.client.search_model_versions(f"name = '{name}'"))
        return sorted(found, key=lambda v: int(v.version))

    def find(self, name: str, **tags: str) -> ModelVersion | None:
        """The newest version of `name` whose tags include `tags`."""
        hits = [v for v in self.versions(name) if _has(v.tags, tags.items())]
        return hits[-1] if hits else None

    def names(self, prefix: str = PREFIX) -> list[str]:
        models = _retry(
            lambda: self.client.search_registered_models(
                filter_string=f"name LIKE '{prefix}%'", max_results=1000
            )
        )
        return sorted(m.name for m in models)

    def run(self, run_id: str) -> Any:
        try:
            return _retry(lambda: self.client.get_run(run_id))
        except MlflowException as exc:
            raise RegistryError(f"no training run {run_id} in {self.uri}") from exc

    def download_model(self, run_id: str, into: Path) -> Path:
        """The run's whole `model/` folder, downloaded under `into`."""
        return Path(_retry(lambda: self.client.download_artifacts(run_id, "model", str(into))))

    def artefact(self, run_id: str, name: str) -> bytes:
        """The bytes of one file of a run's `model/` artefacts."""
        with tempfile.TemporaryDirectory() as tmp:
            path = self.client.download_artifacts(run_id, f"model/{name}", tmp)
            return Path(path).read_bytes()


def _has(tags: dict[str, str], wanted: Iterable[tuple[str, str]]) -> bool:
    return all(tags.get(k) == v for k, v in wanted)
