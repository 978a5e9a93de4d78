"""Settings: regions, environments and pipeline parameters, from `config/` and the environment.

Environment variables override the files (the Function App's app settings, infra/):
  DEMANDOPS_CONFIG        folder holding regions.yaml, pipeline.yaml and environments/ (default:
                          ./config of the project)
  DEMANDOPS_ENV           environment name, a file in environments/ (default: dev)
  DEMANDOPS_LAKE          the environment's `lake`
  DEMANDOPS_REGISTRY_URI  its `registry_uri`
  DEMANDOPS_COMPUTE       its `compute`
  AZURE_ML_SUBSCRIPTION_ID, AZURE_ML_RESOURCE_GROUP, AZURE_ML_WORKSPACE, AZURE_ML_LOCATION,
  AZURE_ML_COMPUTE, AZURE_ML_ENVIRONMENT   the fields of its `azureml:` section

`registry_uri: azureml` names the MLflow tracking URI of the Azure ML workspace: on a job's node
the one Azure ML sets (MLFLOW_TRACKING_URI), elsewhere built from the `azureml:` section's
subscription, resource group, workspace and location (what `az ml workspace show --query
mlflow_tracking_uri` prints). Any other value is the tracking URI itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from demandops.core.calendar import HolidayCalendar
from demandops.core.errors import ConfigError
from demandops.core.lake import Lake
from demandops.core.limits import clip_list
from demandops.core.pipeline_config import PipelineConfig

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
# environment variable -> the key of the environment file it overrides
OVERRIDES: dict[str, tuple[str, ...]] = {
    "DEMANDOPS_LAKE": ("lake",),
    "DEMANDOPS_REGISTRY_URI": ("registry_uri",),
    "DEMANDOPS_COMPUTE": ("compute",),
    "AZURE_ML_SUBSCRIPTION_ID": ("azureml", "subscription_id"),
    "AZURE_ML_RESOURCE_GROUP": ("azureml", "resource_group"),
    "AZURE_ML_WORKSPACE": ("azureml", "workspace"),
    "AZURE_ML_LOCATION": ("azureml", "location"),
    "AZURE_ML_COMPUTE": ("azureml", "compute"),
    "AZURE_ML_ENVIRONMENT": ("azureml", "environment"),
}
AZUREML_REGISTRY = "azureml"
AML_TRACKING_ENV = "MLFLOW_TRACKING_URI"  # set by Azure ML on a job's node


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreCounts(_Strict):
    """Stores of each format in a region (sizes the sample data)."""

    large: int = Field(ge=0)
    small: int = Field(ge=0)


class Region(_Strict):
    """A region: the unit of parallel work."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")
    name: str = Field(min_length=1)
    zip_codes: list[str] = []  # where the sample data's stores are (the generator needs them)
    stores: StoreCounts = StoreCounts(large=0, small=0)
    holidays: HolidayCalendar | None = None  # default: the US retail calendar (core/calendar.py)

    @field_validator("zip_codes")
    @classmethod
    def _five_digit_zips(cls, zips: list[str]) -> list[str]:
        bad = [z for z in zips if not (len(z) == 5 and z.isdigit())]
        if bad:
            raise ValueError(f"zip codes must be 5 digits, got {bad}")
        return zips


class Orchestration(_Strict):
    """How the orchestrator waits on each region's run and retries failed submissions."""

    poll_seconds: float = Field(gt=0, le=3600)
    timeout_minutes: float = Field(gt=0, le=7 * 24 * 60)
    submit_attempts: int = Field(ge=1, le=20)
    retry_seconds: float = Field(gt=0, le=3600)


class AzureML(_Strict):
    """The Azure ML workspace that runs the train and score components."""

    subscription_id: str = Field(min_length=1)
    resource_group: str = Field(min_length=1)
    workspace: str = Field(min_length=1)
    compute: str = Field(min_length=1, description="compute cluster name")
    environment: str = Field(
        pattern=r"^azureml:[^:@]+:[^:@]+$", description="azureml:<name>:<version>"
    )
    location: str | None = Field(
        default=None, pattern=r"^[a-z0-9]+$", description="the workspace's Azure region"
    )

    def tracking_uri(self) -> str:
        """The workspace's MLflow tracking URI; a ValueError saying what is missing."""
        if set(self.subscription_id) <= {"0", "-"}:
            raise ValueError(
                "registry_uri: azureml needs the workspace's subscription: set "
                "AZURE_ML_SUBSCRIPTION_ID or azureml.subscription_id (it is a placeholder)"
            )
        if self.location is None:
            raise ValueError(
                "registry_uri: azureml needs the workspace's region: set AZURE_ML_LOCATION or "
                "azureml.location (e.g. westeurope); or set registry_uri to the workspace's "
                "MLflow tracking URI (az ml workspace show --query mlflow_tracking_uri)"
            )
        return (
            f"azureml://{self.location}.api.azureml.ms/mlflow/v1.0/subscriptions/"
            f"{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{self.workspace}"
        )


class Environment(_Strict):
    """Where the lake, registry and compute of one environment (dev, prod) live."""

    name: str
    lake: str = Field(min_length=1)
    registry_uri: str = Field(min_length=1)
    compute: Literal["local", "azureml"]
    max_workers: int = Field(ge=1, le=64)
    # auto: the batch promotes candidates that pass the gates; manual: only
    # `demandops models promote --to <env>` sets this environment's champions
    promotion: Literal["auto", "manual"] = "auto"
    # how long a batch waits for another batch of this lake and environment before it refuses
    # (demandops/core/lock.py; `demandops run --lock-wait`)
    lock_wait_seconds: float = Field(default=60, ge=0, le=24 * 3600)

    orchestration: Orchestration
    azureml: AzureML | None = None

    @model_validator(mode="after")
    def _azureml_needs_a_workspace(self) -> Environment:
        if self.compute == "azureml" and self.azureml is None:
            raise ValueError("compute: azureml needs an `azureml:` section (workspace, cluster)")
        return self

    def tracking_uri(self) -> str:
        """The registry's MLflow tracking URI; for `azureml`, the workspace's: the one Azure ML
        gives a job's node (MLFLOW_TRACKING_URI), else built from the `azureml:` section. A
        ValueError says what is missing."""
        if self.registry_uri != AZUREML_REGISTRY:
            return self.registry_uri
        given = os.environ.get(AML_TRACKING_ENV, "")
        if given.startswith("azureml://"):
            return given
        if self.azureml is None:
            raise ValueError(
                "registry_uri: azureml needs the workspace: an `azureml:` section (or the "
                f"AZURE_ML_* settings), or {AML_TRACKING_ENV} as Azure ML sets it on a job's node"
            )
        return self.azureml.tracking_uri()


class Settings(_Strict):
    """Everything the pipeline needs to know about where and what to run."""

    config_dir: Path
    environment: Environment
    regions: list[Region]
    pipeline: PipelineConfig

    def region_ids(self) -> list[str]:
        return [r.id for r in self.regions]

    def select_regions(self, ids: list[str] | None) -> list[Region]:
        """The regions named by `ids` (all when empty); an unknown id is a ConfigError."""
        if not ids:
            return list(self.regions)
        known = {r.id: r for r in self.regions}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ConfigError(
                str(self.config_dir / "regions.yaml"),
                "regions",
                f"unknown region {clip_list(unknown)}; known: {clip_list(list(known))}",
            )
        return [known[i] for i in dict.fromkeys(ids)]


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(str(path), "", "file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        raise ConfigError(str(path), "", problem) from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read the file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            str(path), where, f"not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from exc


def _validated(
    model: type[BaseModel], data: Any, path: Path, prefix: str = "", hints: bool = False
) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(str(path), prefix, f"expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in first["loc"])
        key = (prefix + "." + key if prefix else key).replace(".[", "[")
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        setting = {".".join(k): n for n, k in OVERRIDES.items()}.get(key) if hints else None
        also = f" (or set {setting})" if setting else ""
        raise ConfigError(str(path), key, first["msg"] + also + more) from exc


class Discovery(_Strict):
    """`discover:` in regions.yaml: the regions are the `region=<id>` folders of a raw feed."""

    feed: str = Field(default="shipments", pattern=r"^[a-z][a-z0-9_]*$")
    holidays: HolidayCalendar | None = None  # every discovered region's public holidays


def _load_regions(path: Path, lake: str) -> list[Region]:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "expected `regions:` (a list) and/or `discover:`")
    listed = data.get("regions", [] if "discover" in data else None)
    if not isinstance(listed, list):
        raise ConfigError(str(path), "regions", "expected a list of regions under `regions:`")
    regions = [_validated(Region, r, path, f"regions[{i}]") for i, r in enumerate(listed)]
    if "discover" in data:
        found = _validated(Discovery, data["discover"] or {}, path, "discover")
        regions += _discovered(found, lake, path, {r.id for r in regions})
    if not regions:
        raise ConfigError(str(path), "regions", "at least one region is required")
    seen: set[str] = set()
    for i, region in enumerate(regions):
        if region.id in seen:
            raise ConfigError(str(path), f"regions[{i}].id", f"duplicate region id {region.id!r}")
        seen.add(region.id)
    return regions


def _discovered(found: Discovery, lake: str, path: Path, listed: set[str]) -> list[Region]:
    """A region for every `region=<id>` folder below raw/<feed>/ of the lake that holds a file
    (hidden files aside) and is not listed."""
    raw, feed = Lake(lake), f"raw/{found.feed}"
    folders = [f for f in raw.list_dirs(feed) if f.startswith("region=")]
    ids = [f.split("=", 1)[1] for f in folders if _holds_a_file(raw, f"{feed}/{f}")]
    if not ids and not listed:
        raise ConfigError(
            str(path), "discover", f"no region=<id> folders below raw/{found.feed}/ in {lake}"
        )
    return [
        _validated(Region, {"id": i, "name": i, "holidays": found.holidays}, path, f"region={i}")
        for i in sorted(set(ids) - listed)
    ]


def _holds_a_file(lake: Lake, folder: str) -> bool:
    return any(not name.rsplit("/", 1)[-1].startswith(".") for name in lake.list_files(folder))


def _overridden(data: Any) -> Any:
    """The environment file's data with the set environment variables of OVERRIDES applied."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for name, key in OVERRIDES.items():
        value = os.environ.get(name)
        if not value:
            continue
        if len(key) == 1:
            data[key[0]] = value
        else:
            section = data.get(key[0])
            data[key[0]] = {**(section if isinstance(section, dict) else {}), key[1]: value}
    return data


def load_settings(config_dir: str | Path | None = None, env: str | None = None) -> Settings:
    """Read the configuration, apply environment-variable overrides, validate everything."""
    root = Path(config_dir or os.environ.get("DEMANDOPS_CONFIG") or DEFAULT_CONFIG_DIR)
    env_name = env or os.environ.get("DEMANDOPS_ENV") or "dev"
    env_path = root / "environments" / f"{env_name}.yaml"
    if not env_path.is_file():
        available = sorted(p.stem for p in (root / "environments").glob("*.yaml"))
        raise ConfigError(
            str(env_path), "", f"unknown environment {env_name!r}; known: {available}"
        )
    env_data = _overridden(_read_yaml(env_path))
    environment = _validated(Environment, env_data, env_path, hints=True)
    pipeline_path = root / "pipeline.yaml"
    pipeline = _validated(PipelineConfig, _read_yaml(pipeline_path), pipeline_path)
    regions = _load_regions(root / "regions.yaml", environment.lake)
    calendars = {r.id: r.holidays for r in regions if r.holidays is not None}
    return Settings(
        config_dir=root,
        environment=environment,
        regions=regions,
        pipeline=pipeline.model_copy(update={"holidays": calendars}),
    )
