"""The orchestration's activities, bound once per worker process to the deployment's
settings and compute backend (`compute:` in the environment)."""

from __future__ import annotations

import functools
from typing import Any

import azure.durable_functions as df

from demandops.core.settings import Settings, load_settings
from demandops.pipeline.activities import Activities
from demandops.pipeline.compute import ComputeBackend

bp = df.Blueprint()


def backend_for(settings: Settings) -> ComputeBackend:
    if settings.environment.compute == "azureml":
        from demandops.pipeline.compute.azureml import AzureMLBackend

        return AzureMLBackend.from_settings(settings)
    from demandops.pipeline.compute.local import LocalBackend

    return LocalBackend(settings)


@functools.cache
def activities() -> Activities:
    settings = load_settings()
    return Activities(settings, backend_for(settings))


@bp.activity_trigger(input_name="plan")
def prepare_run(plan: dict[str, Any]) -> dict[str, str]:
    return activities().prepare_run(plan)


@bp.activity_trigger(input_name="job")
def submit_region(job: dict[str, Any]) -> str:
    return activities().submit_region(job)


@bp.activity_trigger(input_name="run_id")
def region_status(run_id: str) -> dict[str, str]:
    return activities().region_status(run_id)


@bp.activity_trigger(input_name="run_id")
def cancel_region(run_id: str) -> None:
    activities().cancel_region(run_id)


@bp.activity_trigger(input_name="run_id")
def region_outputs(run_id: str) -> dict[str, Any]:
    return activities().region_outputs(run_id)
