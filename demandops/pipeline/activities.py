"""The orchestration's activities and its input: the only places it touches the lake or compute.

`plan_run` validates a run request against the configuration and resolves it into the
orchestration's input (regions, pipeline and the waiting policy), so that the orchestrator
itself reads no configuration. `Activities` binds the activity functions to settings and a
compute backend; Azure Functions and the local runner call the same methods.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from demandops.core.errors import DemandOpsError
from demandops.core.hashing import digest
from demandops.core.lake import Lake
from demandops.core.limits import clip
from demandops.core.settings import Settings
from demandops.pipeline import orchestration as orch
from demandops.pipeline import steps
from demandops.pipeline.compute import PIPELINE_STAGES, ComputeBackend, RegionJob


class RequestError(DemandOpsError):
    """A run request that cannot be run as asked."""


def plan_run(
    settings: Settings,
    regions: list[str] | None = None,
    pipeline: str = "weekly",
    as_of: str | None = None,
) -> dict[str, Any]:
    """The orchestration input for a run; a bad region, pipeline or date is a DemandOpsError."""
    if pipeline not in PIPELINE_STAGES:
        raise RequestError(
            f"unknown pipeline {clip(pipeline)!r}; known: {', '.join(PIPELINE_STAGES)}"
        )
    if as_of is not None:
        try:
            monday = date.fromisoformat(as_of).weekday() == 0
        except ValueError:
            raise RequestError(f"as_of must be a date YYYY-MM-DD, got {clip(as_of)!r}") from None
        if not monday:
            raise RequestError(f"as_of must be a Monday (weeks start on Monday), got {as_of}")
    waiting = settings.environment.orchestration
    return {
        "regions": [r.id for r in settings.select_regions(regions)],
        "pipeline": pipeline,
        "as_of": as_of,
        "poll_seconds": waiting.poll_seconds,
        "timeout_seconds": waiting.timeout_minutes * 60,
        "submit_attempts": waiting.submit_attempts,
        "retry_seconds": waiting.retry_seconds,
    }


def run_instance_id(settings: Settings, as_of: str | None, today: date | None = None) -> str:
    """The durable instance id of a run: one per lake, environment and week (the `as_of`
    Monday, else this week's), so that overlapping scheduled, blob-triggered and HTTP starts of
    the same week collapse into one run (functions/http_runs.py)."""
    day = date.fromisoformat(as_of) if as_of else (today or datetime.now(UTC).date())
    monday = day - timedelta(days=day.weekday())
    env = settings.environment
    return f"run-{env.name}-{digest(env.lake, 8)}-{monday.isoformat()}"


class Activities:
    """The activity functions, bound to one configuration and one compute backend."""

    def __init__(self, settings: Settings, backend: ComputeBackend) -> None:
        self.settings = settings
        self.backend = backend

    def prepare_run(self, plan: dict[str, Any]) -> dict[str, str]:
        """Condition the reference feeds every region needs (stores, products, shoppers,
        weather, events); return their paths, the profiles folder and the as-of day."""
        lake = Lake(self.settings.environment.lake)
        profiles = plan.get("profiles") or str(self.settings.config_dir / "sources")
        limits = self.settings.pipeline.limits
        ref = steps.condition_reference(
            lake, self.settings.region_ids(), Path(profiles), limits=limits
        )
        paths = {name: d.path for name, d in ref.datasets().items()}
        return {**paths, "profiles": profiles, "as_of": ref.as_of}

    def submit_region(self, job: dict[str, Any]) -> str:
        return self.backend.submit(
            RegionJob(
                run=job["run"],
                region=job["region"],
                pipeline=job["pipeline"],
                reference=job["reference"],
                as_of=job.get("as_of"),
            )
        )

    def region_status(self, run_id: str) -> dict[str, str]:
        return self.backend.status(run_id).to_dict()

    def cancel_region(self, run_id: str) -> None:
        self.backend.cancel(run_id)

    def region_outputs(self, run_id: str) -> dict[str, Any]:
        return self.backend.outputs(run_id)

    def table(self) -> dict[str, Callable[[Any], Any]]:
        """Activity name → function, as the orchestrator calls them."""
        return {
            orch.PREPARE: self.prepare_run,
            orch.SUBMIT: self.submit_region,
            orch.STATUS: self.region_status,
            orch.CANCEL: self.cancel_region,
            orch.OUTPUTS: self.region_outputs,
        }
