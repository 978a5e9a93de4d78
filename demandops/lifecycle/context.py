"""What a region's worker needs of the lifecycle: the registry, and models from the lake."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from demandops.core.errors import ConfigError
from demandops.core.lake import Lake
from demandops.core.pipeline_config import LifecycleConfig
from demandops.core.settings import Environment
from demandops.lifecycle.registry import Registry, resolve_uri
from ml.artifacts import load_model
from ml.train import SegmentModel, TrainedRegion


@dataclass(frozen=True)
class LifecycleContext:
    """What a region's worker needs to reach the registry (picklable)."""

    registry_uri: str
    artifact_root: str | None
    environment: str
    promotion: str
    today: date
    cfg: LifecycleConfig

    def registry(self) -> Registry:
        return Registry(self.registry_uri, self.artifact_root)


@dataclass
class SegmentDecision:
    """What the lifecycle did for one segment in one batch, and why."""

    segment: str
    retrain_reasons: list[str] = field(default_factory=list)
    candidate_version: str = ""
    promoted: bool = False
    gate_reasons: list[str] = field(default_factory=list)
    champion_version: str = ""
    trained_on: str = ""
    stale: bool = False
    fallback: str = ""
    error: str = ""


def open_registry(env: Environment, create: bool = True) -> Registry:
    """The environment's registry, `{lake}` substituted; a bad URI is a ConfigError. Without
    `create`, a local store that does not exist is a RegistryError (nothing is created)."""
    lake = Lake(env.lake)
    try:
        uri, artifacts = resolve_uri(env.tracking_uri(), lake.location(), lake.is_local)
    except ValueError as exc:
        raise ConfigError(f"environments/{env.name}.yaml", "registry_uri", str(exc)) from exc
    return Registry(uri, artifacts, create=create)


def context(env: Environment, cfg: LifecycleConfig, today: date) -> LifecycleContext:
    """The context for a batch: the store is created here, once, before workers use it."""
    registry = open_registry(env)
    registry.experiment_id()
    return LifecycleContext(
        registry.uri, registry.artifact_root, env.name, env.promotion, today, cfg
    )


def load_segment_model(
    lake: Lake,
    model_dataset: str,
    segment: str,
    loaded: dict[str, TrainedRegion] | None = None,
) -> SegmentModel:
    """One segment's fitted model from a committed model dataset of the lake (`loaded` caches
    the region models already read)."""
    loaded = {} if loaded is None else loaded
    if model_dataset not in loaded:
        ds = lake.dataset(model_dataset)
        if ds is None:
            raise FileNotFoundError(
                f"model dataset {lake.location(model_dataset)} is not committed"
            )
        loaded[model_dataset] = load_model(lake, ds)
    models = loaded[model_dataset].models
    if segment not in models:
        raise KeyError(f"{model_dataset} has no model for segment {segment}")
    return models[segment]
