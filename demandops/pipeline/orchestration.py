"""The one orchestration of a batch run, as plain generator functions over a durable context.

`run_orchestrator` fans out over the requested regions: one sub-orchestration per region
(`region_orchestrator`) submits that region's run to the compute backend, then polls its status
with durable timers until it is Completed, Failed or Canceled, or times out and is cancelled.
A run the backend reports "Queued" (waiting for a worker or a compute node) is not timed: the
time-out counts from the last poll that found it queued, i.e. from about when it started.
Every region's sub-orchestration is started before any of them is waited on, so the backend runs
the regions side by side; each one keeps its own history, bounded by its number of polls.

In Azure, `functions/` registers these generators with Durable Functions; on one machine,
`demandops.pipeline.runner.LocalRunner` drives the same generators. They use only this part of the
DurableOrchestrationContext API: get_input, instance_id, current_utc_datetime, set_custom_status,
call_activity, call_activity_with_retry, call_sub_orchestrator, task_any, create_timer.

Activities (the names below) are implemented by `demandops.pipeline.activities.Activities`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from azure.durable_functions import RetryOptions

from demandops.pipeline.compute import TERMINAL

RUN_ORCHESTRATOR = "run_orchestrator"
REGION_ORCHESTRATOR = "region_orchestrator"
PREPARE, SUBMIT, STATUS, CANCEL, OUTPUTS = (
    "prepare_run",
    "submit_region",
    "region_status",
    "cancel_region",
    "region_outputs",
)

ACTIVE = ("Submitting", "Submitted", "Queued", "Running")  # a region's states before its end
Orchestration = Generator[Any, Any, dict[str, Any]]


def _retry(plan: dict[str, Any]) -> RetryOptions:
    return RetryOptions(
        first_retry_interval_in_milliseconds=int(plan["retry_seconds"] * 1000),
        max_number_of_attempts=int(plan["submit_attempts"]),
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def run_orchestrator(context: Any) -> Orchestration:
    """Input: a plan (`demandops.pipeline.activities.plan_run`). Output: a summary per region."""
    plan: dict[str, Any] = context.get_input()
    regions: list[str] = plan["regions"]
    reference = yield context.call_activity_with_retry(PREPARE, _retry(plan), plan)
    progress = {r: "Submitting" for r in regions}
    context.set_custom_status(_progress(progress))
    pending = [
        context.call_sub_orchestrator(
            REGION_ORCHESTRATOR,
            {**plan, "region": r, "reference": reference, "run": context.instance_id},
            f"{context.instance_id}:{r}",
        )
        for r in regions
    ]
    tasks = dict(zip(map(id, pending), regions, strict=True))
    results: dict[str, dict[str, Any]] = {}
    while pending:
        done = yield context.task_any(pending)
        pending = [t for t in pending if t is not done]
        region = tasks[id(done)]
        summary = done.result
        if isinstance(summary, Exception):  # the sub-orchestration itself broke
            summary = {"region": region, "state": "Failed", "error": _first_line(summary)}
        results[region] = summary
        progress[region] = summary["state"]
        context.set_custom_status(_progress(progress))
    return {
        "pipeline": plan["pipeline"],
        "as_of": plan.get("as_of"),
        "states": dict(sorted(Counter(progress.values()).items())),
        "failed": [r for r in regions if progress[r] != "Completed"],
        "regions": {r: results[r] for r in regions},
    }


def _progress(progress: dict[str, str]) -> dict[str, Any]:
    done = sum(state not in ACTIVE for state in progress.values())
    return {"done": done, "total": len(progress), "regions": dict(progress)}


def active_regions(progress: Any) -> list[str]:
    """The regions of a run's progress (its custom status) that have not ended."""
    regions = progress.get("regions") if isinstance(progress, dict) else None
    return [r for r, s in regions.items() if s in ACTIVE] if isinstance(regions, dict) else []


def region_progress(progress: Any, own: dict[str, Any]) -> Any:
    """A run's progress with each active region's state as that region's own orchestration last
    set it (Queued, Running…); `own`: region → that orchestration's custom status, or None. The
    run's orchestration itself only hears of a region when it ends."""
    active = active_regions(progress)
    if not active:
        return progress
    states = dict(progress["regions"])
    for region in active:
        state = (own.get(region) or {}).get("state")
        states[region] = state if state in ACTIVE else states[region]
    return {**progress, "regions": states}


def region_orchestrator(context: Any) -> Orchestration:
    """Input: the plan plus `region`, `reference`, `run`. Output: that region's summary."""
    job: dict[str, Any] = context.get_input()
    summary: dict[str, Any] = {"region": job["region"], "state": "Submitting", "polls": 0}
    context.set_custom_status(summary)
    try:
        run_id = yield context.call_activity_with_retry(SUBMIT, _retry(job), job)
    except Exception as exc:
        error = f"submit failed ({job['submit_attempts']} attempts): {_first_line(exc)}"
        summary |= {"state": "Failed", "error": error}
        context.set_custom_status(summary)
        return summary
    summary |= {"state": "Submitted", "run_id": run_id}
    interval = timedelta(seconds=job["poll_seconds"])
    timeout = timedelta(seconds=job["timeout_seconds"])
    submitted = started = context.current_utc_datetime  # started: the last poll that saw it queued
    while True:
        context.set_custom_status(summary)
        deadline = started + timeout
        yield context.create_timer(min(deadline, context.current_utc_datetime + interval))
        status = yield context.call_activity_with_retry(STATUS, _retry(job), run_id)
        summary["polls"] += 1
        if status["state"] in TERMINAL:
            break
        if status["state"] == "Queued":  # waiting for a worker: its time-out has not started
            started = context.current_utc_datetime
            summary["state"] = "Queued"
            continue
        if summary["state"] == "Queued":
            summary["queued_seconds"] = round((started - submitted).total_seconds(), 3)
        summary["state"] = "Running"
        if context.current_utc_datetime >= deadline:
            yield context.call_activity_with_retry(CANCEL, _retry(job), run_id)
            timeout_text = f"still {status['state']} after {job['timeout_seconds']:g} s: cancelled"
            summary |= {"state": "TimedOut", "error": timeout_text}
            context.set_custom_status(summary)
            return summary
    summary["state"] = status["state"]
    if status["state"] == "Completed":
        summary["outputs"] = yield context.call_activity_with_retry(OUTPUTS, _retry(job), run_id)
    else:
        summary["error"] = status["detail"] or status["state"]
    context.set_custom_status({k: v for k, v in summary.items() if k != "outputs"})
    return summary
