"""Compute backends: where a region's run executes. One interface, two implementations:
`local` (a process pool on this machine) and `azureml` (an Azure ML pipeline job per region)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from demandops.pipeline.region import Stage

RunState = Literal["Queued", "Running", "Completed", "Failed", "Canceled"]  # Queued: no worker yet
TERMINAL: tuple[RunState, ...] = ("Completed", "Failed", "Canceled")
PIPELINE_STAGES: dict[str, Stage] = {
    "condition": "condition",
    "train": "train",
    "score": "score",
    "weekly": "score",
}


@dataclass(frozen=True)
class RegionJob:
    """One region's run: which pipeline, for which orchestration, on which conditioned reference."""

    run: str
    region: str
    pipeline: str
    reference: dict[str, str] = field(default_factory=dict)
    as_of: str | None = None

    @property
    def stage(self) -> Stage:
        return PIPELINE_STAGES[self.pipeline]


@dataclass(frozen=True)
class RunStatus:
    state: RunState
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"state": self.state, "detail": self.detail}


class ComputeBackend(Protocol):
    """Submit a region's run and follow it. Run ids are strings that survive a restart."""

    def submit(self, job: RegionJob) -> str: ...

    def status(self, run_id: str) -> RunStatus: ...

    def cancel(self, run_id: str) -> None: ...

    def outputs(self, run_id: str) -> dict[str, Any]: ...
