"""The Azure ML compute backend: one pipeline job per region, built from the command components
in `ml/components/` (train, then score), on the compute cluster named in the settings. Each step
gets the environment's name, lake and registry tracking URI as inputs, and runs as the compute
cluster's managed identity. Their code is `code_snapshot.CODE`, staged once per process."""

from __future__ import annotations

import re
from typing import Any

from azure.ai.ml import MLClient, dsl, load_component
from azure.ai.ml.entities import ManagedIdentityConfiguration, PipelineJob

from demandops.core.errors import ConfigError
from demandops.core.settings import AzureML, Environment, Settings
from demandops.pipeline.compute import RegionJob, RunState, RunStatus
from demandops.pipeline.compute.code_snapshot import ROOT, staged_code

COMPONENTS = ROOT / "ml" / "components"
STATES: dict[str, RunState] = {
    "Completed": "Completed",
    "Failed": "Failed",
    "Canceled": "Canceled",
    # waiting for compute: the region's time-out has not started
    **dict.fromkeys(("NotStarted", "Queued", "Preparing", "Provisioning", "Starting"), "Queued"),
}


def job_name(job: RegionJob) -> str:
    """A deterministic job name, so a retried submission updates the same job."""
    return re.sub(r"[^a-z0-9_-]", "_", f"demandops-{job.run}-{job.region}".lower())[:250]


def step_inputs(env: Environment) -> dict[str, str]:
    """The inputs every step gets besides its region: environment, lake, registry."""
    try:
        registry = env.tracking_uri()
    except ValueError as exc:
        raise ConfigError(f"environments/{env.name}.yaml", "registry_uri", str(exc)) from exc
    if "{lake}" in registry:
        raise ConfigError(
            f"environments/{env.name}.yaml", "registry_uri",
            f"{registry!r} is in the lake, which an Azure ML job cannot share: set "
            "registry_uri (or DEMANDOPS_REGISTRY_URI) to azureml or another tracking URI",
        )  # fmt: skip
    return {"env": env.name, "lake": env.lake, "registry": registry}


def build_pipeline(job: RegionJob, env: Environment, workspace: AzureML) -> PipelineJob:
    """The region's pipeline job: train, then (for score and weekly) score."""
    if job.stage == "condition":
        raise ValueError("conditioning runs in the Function App, not as an Azure ML job")
    train: Any = load_component(source=COMPONENTS / "train.yml")
    score: Any = load_component(source=COMPONENTS / "score.yml")
    for component in (train, score):
        component.environment = workspace.environment
        component.code = str(staged_code())

    @dsl.pipeline(  # type: ignore[call-overload]
        name=f"demandops_{job.pipeline}",
        description=f"demandops {job.pipeline} for region {job.region}",
        default_compute=workspace.compute,
    )
    def region_pipeline(region, env, lake, registry):  # type: ignore[no-untyped-def]  # annotations break dsl
        common = {"region": region, "env": env, "lake": lake, "registry": registry}
        trained = train(**common)
        if job.stage == "train":
            return {"report": trained.outputs.report}
        scored = score(**common, trained=trained.outputs.report)
        return {"report": scored.outputs.report}

    pipeline: PipelineJob = region_pipeline(region=job.region, **step_inputs(env))
    pipeline.identity = ManagedIdentityConfiguration()
    pipeline.name = job_name(job)
    pipeline.experiment_name = "demandops"
    pipeline.tags = {"region": job.region, "run": job.run, "pipeline": job.pipeline}
    if job.as_of:
        pipeline.tags["as_of"] = job.as_of
    return pipeline


class AzureMLBackend:
    """Submits and follows region pipeline jobs through an `MLClient`."""

    def __init__(self, client: MLClient, settings: Settings) -> None:
        if settings.environment.azureml is None:
            raise ValueError("the environment has no `azureml:` section")
        self.client = client
        self.settings = settings
        self.workspace = settings.environment.azureml

    @classmethod
    def from_settings(cls, settings: Settings, **client_kwargs: Any) -> AzureMLBackend:
        """A backend on the configured workspace, signed in with the default Azure credential
        (the Function App's managed identity in Azure)."""
        from azure.identity import DefaultAzureCredential

        ws = settings.environment.azureml
        if ws is None:
            raise ValueError("the environment has no `azureml:` section")
        client = MLClient(
            DefaultAzureCredential(), ws.subscription_id, ws.resource_group, ws.workspace,
            **client_kwargs,
        )  # fmt: skip
        return cls(client, settings)

    def submit(self, job: RegionJob) -> str:
        pipeline = build_pipeline(job, self.settings.environment, self.workspace)
        created = self.client.jobs.create_or_update(pipeline)
        return str(created.name)

    def status(self, run_id: str) -> RunStatus:
        status = _status(self.client.jobs.get(run_id))
        state = STATES.get(status, "Running")
        detail = "" if state in ("Queued", "Running") else f"Azure ML job {run_id}: {status}"
        return RunStatus(state, detail)

    def cancel(self, run_id: str) -> None:
        self.client.jobs.begin_cancel(run_id)

    def outputs(self, run_id: str) -> dict[str, Any]:
        job = self.client.jobs.get(run_id)
        return {"job": job.name, "status": _status(job), "studio_url": job.studio_url}


def _status(job: Any) -> str:
    """A job's status as Azure ML names it (an enum member or a string, by SDK version)."""
    return str(getattr(job.status, "value", job.status))
