"""The orchestration: driven by the local runner on real data, replayed by the real Durable
Functions replay engine (timers, retries, time-outs), and by `orchestrator_generator_wrapper`."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.durable_functions import Orchestrator
from azure.durable_functions.models import DurableOrchestrationContext
from azure.durable_functions.models.Task import AtomicTask
from azure.durable_functions.testing import orchestrator_generator_wrapper
from tqdm import tqdm

from demandops.core.lake import Lake
from demandops.core.settings import Settings
from demandops.pipeline import orchestration as orch
from demandops.pipeline.activities import plan_run
from demandops.pipeline.batch import orchestrate
from demandops.pipeline.compute.local import LocalBackend
from demandops.pipeline.progress import show_progress
from demandops.pipeline.runner import EVENT_TYPES, LocalRunner
from demandops.pipeline.runner import Orchestrator as OrchestratorFunction

ORCHESTRATORS: dict[str, OrchestratorFunction] = {
    orch.RUN_ORCHESTRATOR: orch.run_orchestrator,
    orch.REGION_ORCHESTRATOR: orch.region_orchestrator,
}


def _replay(fn: Any, history: list[dict[str, Any]], input_: Any) -> dict[str, Any]:
    """One episode of the real replay engine over `history`: the orchestrator's state."""
    context = {
        "history": history,
        "instanceId": "i",
        "isReplaying": False,
        "parentInstanceId": None,
        "input": json.dumps(input_),
        "upperSchemaVersion": 2,
    }
    state: dict[str, Any] = json.loads(
        Orchestrator(fn).handle(DurableOrchestrationContext.from_json(json.dumps(context)))
    )
    return state


def test_one_failing_region_never_hides_the_others(settings: Settings, small_lake: Lake) -> None:
    for f in small_lake.list_files("raw/shipments/region=tx"):  # tx lost its shipments feed
        Path(small_lake.full_path(f)).unlink()
    plan = plan_run(settings, ["pnw", "tx"], "train")
    statuses: list[Any] = []
    with LocalBackend(settings) as backend:
        from demandops.pipeline.activities import Activities

        runner = LocalRunner(
            Activities(settings, backend).table(), ORCHESTRATORS, 0.05, statuses.append
        )
        outcome = runner.run(orch.RUN_ORCHESTRATOR, plan, "run1")
    pnw, tx = outcome["regions"]["pnw"], outcome["regions"]["tx"]
    assert pnw["state"] == "Completed" and pnw["outputs"]["versions"]["model"]
    assert small_lake.dataset(pnw["outputs"]["paths"]["model"]) is not None
    assert tx["state"] == "Failed" and "no raw data in" in tx["error"]
    assert "raw/shipments/region=tx" in tx["error"]
    assert outcome["states"] == {"Completed": 1, "Failed": 1} and outcome["failed"] == ["tx"]
    assert statuses[-1] == {"done": 2, "total": 2, "regions": {"pnw": "Completed", "tx": "Failed"}}
    assert set(runner.instances) == {"run1", "run1:pnw", "run1:tx"}

    # every history replays through the real durable engine to the same output
    for instance in runner.instances.values():
        fn = ORCHESTRATORS[instance.name]
        state = _replay(fn, instance.history, instance.context.get_input())
        assert state["isDone"] is True
        assert state["output"] == instance.output


def test_every_region_is_submitted_before_any_is_waited_on(
    settings: Settings, small_lake: Lake
) -> None:
    with LocalBackend(settings) as backend:
        outcome = orchestrate(
            settings, plan_run(settings, ["pnw", "tx"], "condition"), backend, "r"
        )
    assert set(outcome["regions"]) == {"pnw", "tx"}
    assert all(s["state"] == "Completed" and s["polls"] >= 1 for s in outcome["regions"].values())


def _event(kind: str, at: datetime, event_id: int = -1, **attrs: Any) -> dict[str, Any]:
    return {
        "EventType": EVENT_TYPES[kind],
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": at.isoformat(),
        **attrs,
    }


T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
JOB: dict[str, Any] = {
    "region": "pnw",
    "pipeline": "score",
    "as_of": None,
    "run": "r",
    "reference": {},
    "regions": ["pnw"],
    "poll_seconds": 60.0,
    "timeout_seconds": 150.0,
    "submit_attempts": 3,
    "retry_seconds": 5.0,
}


class History:
    """Writes a history the way the Durable Task Framework does, one episode at a time."""

    def __init__(self) -> None:
        self.events = [
            _event("OrchestratorStarted", T0),
            _event("ExecutionStarted", T0, Name=orch.REGION_ORCHESTRATOR, Version=None),
        ]
        self.next_id = 0

    def episode(self, at: datetime, *events: tuple[str, dict[str, Any]]) -> History:
        if self.events[-1]["EventType"] != EVENT_TYPES["ExecutionStarted"]:
            self.events.append(_event("OrchestratorStarted", at))
        for kind, attrs in events:
            self.events.append(_event(kind, at, **attrs))
        return self

    def activity(self, at: datetime, result: Any = None, error: str | None = None) -> History:
        task = self.next_id
        self.next_id += 1
        if error:
            done = ("TaskFailed", {"TaskScheduledId": task, "Reason": error, "Details": "x"})
        else:
            done = ("TaskCompleted", {"TaskScheduledId": task, "Result": json.dumps(result)})
        return self.episode(at, ("TaskScheduled", {"EventId": task}), done)

    def timer(self, at: datetime, fires: datetime) -> History:
        timer = self.next_id
        self.next_id += 1
        self.episode(at, ("TimerCreated", {"EventId": timer, "FireAt": fires.isoformat()}))
        return self.episode(fires, ("TimerFired", {"TimerId": timer, "FireAt": fires.isoformat()}))


def _actions(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The scheduled actions, with the retry wrappers (compound actions) flattened."""
    flat: list[dict[str, Any]] = []
    todo = list(state["actions"])
    while todo:
        action = todo.pop(0)
        if isinstance(action, list):
            todo[:0] = action
        elif "compoundActions" in action:
            todo[:0] = action["compoundActions"]
        else:
            flat.append(action)
    return flat


def test_replay_polls_with_timers_until_completed() -> None:
    h = History().activity(T0, "job-1")
    t1, t2 = T0 + timedelta(seconds=60), T0 + timedelta(seconds=120)
    h.timer(T0, t1).activity(t1, {"state": "Running", "detail": ""})
    state = _replay(orch.region_orchestrator, h.events, JOB)
    assert state["isDone"] is False
    assert state["customStatus"] == {"region": "pnw", "state": "Running", "polls": 1,
                                     "run_id": "job-1"}  # fmt: skip
    timer = _actions(state)[-1]
    assert timer["actionType"] == 5 and timer["fireAt"].startswith("2026-11-23T06:02:00")

    h.timer(t1, t2).activity(t2, {"state": "Completed", "detail": ""}).activity(t2, {"v": 1})
    state = _replay(orch.region_orchestrator, h.events, JOB)
    assert state["isDone"] is True
    assert state["output"] == {"region": "pnw", "state": "Completed", "polls": 2,
                               "run_id": "job-1", "outputs": {"v": 1}}  # fmt: skip


def test_replay_times_out_cancels_and_reports() -> None:
    h = History().activity(T0, "job-1")
    t1, t2, t3 = (T0 + timedelta(seconds=s) for s in (60, 120, 150))
    running = {"state": "Running", "detail": ""}
    h.timer(T0, t1).activity(t1, running).timer(t1, t2).activity(t2, running)
    h.timer(t2, t3).activity(t3, running)  # the last timer is cut at the deadline
    state = _replay(orch.region_orchestrator, h.events, JOB)
    cancel = _actions(state)[-1]
    assert cancel["functionName"] == orch.CANCEL and json.loads(cancel["input"]) == "job-1"
    assert any(a.get("fireAt", "").startswith("2026-11-23T06:02:30") for a in _actions(state))

    h.activity(t3, None)
    state = _replay(orch.region_orchestrator, h.events, JOB)
    assert state["isDone"] is True
    assert state["output"]["state"] == "TimedOut" and state["output"]["polls"] == 3
    assert "still Running after 150 s: cancelled" in state["output"]["error"]


def test_replay_retries_a_failed_submission_then_gives_up() -> None:
    h = History()
    at = T0
    for attempt in range(3):  # each failure is followed by a retry timer, the last one too
        h.activity(at, error=f"throttled {attempt}")
        h.timer(at, at + timedelta(seconds=5))
        at += timedelta(seconds=5)
    state = _replay(orch.region_orchestrator, h.events, JOB)
    assert state["isDone"] is True
    assert state["output"]["state"] == "Failed"
    assert state["output"]["error"].startswith("submit failed (3 attempts): throttled 2")

    h = History().activity(T0, error="throttled").timer(T0, T0 + timedelta(seconds=5))
    h.activity(T0 + timedelta(seconds=5), "job-2")  # the second attempt succeeds
    state = _replay(orch.region_orchestrator, h.events, JOB)
    assert state["isDone"] is False
    assert state["customStatus"]["run_id"] == "job-2"
    retry = [a for a in _actions(state) if a["actionType"] == 1]
    assert retry[0]["retryOptions"] == {"firstRetryIntervalInMilliseconds": 5000,
                                        "maxNumberOfAttempts": 3}  # fmt: skip


class FailedTask:
    """A task whose result raises, as the wrapper expects of a failed one."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    @property
    def result(self) -> Any:
        raise self.error


class ScriptedContext:
    """Just enough of a context for `orchestrator_generator_wrapper`: tasks come back done."""

    def __init__(self, input_: Any, answers: dict[str, list[Any]]) -> None:
        self.input, self.answers = input_, answers
        self.instance_id = "w"
        self.current_utc_datetime = T0
        self.custom_status: Any = None

    def get_input(self) -> Any:
        return self.input

    def set_custom_status(self, status: Any) -> None:
        self.custom_status = dict(status)

    def _done(self, value: Any) -> Any:
        if isinstance(value, Exception):
            return FailedTask(value)
        task = AtomicTask(None, [])
        task.set_value(is_error=False, value=value)
        return task

    def call_activity_with_retry(self, name: str, retry: Any, input_: Any = None) -> Any:
        return self._done(self.answers[name].pop(0))

    def create_timer(self, fire_at: datetime) -> AtomicTask:
        self.current_utc_datetime = fire_at
        return self._done(None)


def test_region_orchestrator_through_the_generator_wrapper() -> None:
    running, failed = {"state": "Running", "detail": ""}, {"state": "Failed", "detail": "OOM"}
    context = ScriptedContext(JOB, {orch.SUBMIT: ["job-9"], orch.STATUS: [running, failed]})
    steps = list(orchestrator_generator_wrapper(orch.region_orchestrator(context)))
    assert len(steps) == 6  # submit, timer, status, timer, status, and the result
    assert steps[-1] == {"region": "pnw", "state": "Failed", "polls": 2, "run_id": "job-9",
                         "error": "OOM"}  # fmt: skip
    assert context.custom_status["state"] == "Failed"


def test_submission_failure_through_the_generator_wrapper() -> None:
    context = ScriptedContext(JOB, {orch.SUBMIT: [RuntimeError("quota exceeded")]})
    result = list(orchestrator_generator_wrapper(orch.region_orchestrator(context)))[-1]
    assert result["state"] == "Failed" and result["error"].endswith("quota exceeded")
    assert context.custom_status == result


@pytest.mark.parametrize(
    ("regions", "pipeline", "as_of", "message"),
    [
        (["atlantis"], "weekly", None, "unknown region atlantis"),
        (None, "nightly", None, "unknown pipeline 'nightly'"),
        (None, "weekly", "2026-13-01", "as_of must be a date YYYY-MM-DD"),
        (None, "weekly", "2026-11-25", "as_of must be a Monday"),
    ],
)
def test_plan_rejects_bad_requests(
    settings: Settings, regions: list[str] | None, pipeline: str, as_of: str | None, message: str
) -> None:
    from demandops.core.errors import DemandOpsError

    with pytest.raises(DemandOpsError, match=message):
        plan_run(settings, regions, pipeline, as_of)


def test_plan_defaults_to_every_configured_region(settings: Settings) -> None:
    plan = plan_run(settings, None, "weekly", "2026-11-23")
    assert plan["regions"] == settings.region_ids() and len(plan["regions"]) == 14
    assert plan["timeout_seconds"] == settings.environment.orchestration.timeout_minutes * 60


def test_fifty_regions_complete_with_bounded_history_per_instance(tmp_path: Path) -> None:
    """The parent's history grows by 4 events per region and never with polls; a region's
    history depends only on its own polls (8 events each), whatever the number of regions."""
    from benchmarks.orchestration.experiment import synthetic_settings
    from demandops.pipeline.activities import Activities
    from demandops.sample.data import SampleSpec, generate

    settings = synthetic_settings(tmp_path, 50, workers=2)
    tiny = SampleSpec(products=2, weeks=60, store_scale=0.2)  # the history is what is measured
    generate(Lake(settings.environment.lake), settings.regions, tiny)
    plan = plan_run(settings, None, "condition")
    with LocalBackend(settings) as backend:
        runner = LocalRunner(Activities(settings, backend).table(), ORCHESTRATORS, 0.05)
        outcome = runner.run(orch.RUN_ORCHESTRATOR, plan, "big")
    assert outcome["states"] == {"Completed": 50} and outcome["failed"] == []
    parent = runner.instances["big"]
    assert len(parent.history) == 4 * 50 + 8
    for region, summary in outcome["regions"].items():
        assert len(runner.instances[f"big:{region}"].history) == 12 + 8 * summary["polls"]
    state = _replay(orch.run_orchestrator, parent.history, plan)
    assert state["isDone"] is True and state["output"] == outcome


def _native_threads() -> tuple[list[int], str]:
    import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP, as training does)
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info()], os.environ["OMP_NUM_THREADS"]


def test_pool_workers_run_native_libraries_on_one_thread(settings: Settings) -> None:
    """BLAS and OpenMP in a worker, loaded before or after it started, run one thread each."""
    backend = LocalBackend(settings, max_workers=2)
    with backend:
        threads, variable = backend._pool.submit(_native_threads).result(timeout=120)
    assert threads and set(threads) == {1} and variable == "1"


def test_replay_times_a_queued_run_from_its_start_not_its_submission() -> None:
    """Queued for 180 s (longer than the 150 s time-out), then running: cancelled 150 s after
    the last poll that found it queued, not at the first poll after submission + 150 s."""
    h = History().activity(T0, "job-1")
    at = [T0 + timedelta(seconds=s) for s in (0, 60, 120, 180, 240, 300, 330)]
    queued, running = {"state": "Queued", "detail": ""}, {"state": "Running", "detail": ""}
    for before, now, status in zip(at[:-1], at[1:], [queued] * 3 + [running] * 3, strict=True):
        h.timer(before, now).activity(now, status)
        state = _replay(orch.region_orchestrator, h.events, JOB)
        if now == at[3]:
            assert state["isDone"] is False and state["customStatus"]["state"] == "Queued"
    cancel = _actions(state)[-1]
    assert cancel["functionName"] == orch.CANCEL  # at 06:05:30 = last queued poll + 150 s
    assert any(a.get("fireAt", "").startswith("2026-11-23T06:05:30") for a in _actions(state))
    state = _replay(orch.region_orchestrator, h.activity(at[-1], None).events, JOB)
    assert state["output"]["state"] == "TimedOut" and state["output"]["polls"] == 6
    assert state["output"]["queued_seconds"] == 180.0


@pytest.mark.slow
def test_one_worker_three_regions_the_waiting_ones_are_queued_and_complete(
    tmp_path: Path,
) -> None:
    """One worker, three regions: the run's progress shows the waiting regions "Queued" (not
    "Running"), each reports how long it waited, and none times out while waiting."""
    from benchmarks.orchestration.experiment import SPEC, synthetic_settings
    from demandops.pipeline.activities import Activities
    from demandops.sample.data import generate

    settings = synthetic_settings(tmp_path, 3, workers=1)
    generate(Lake(settings.environment.lake), settings.regions, SPEC)
    plan = plan_run(settings, None, "condition") | {"timeout_seconds": 60.0, "poll_seconds": 0.05}
    seen: list[dict[str, str]] = []

    with LocalBackend(settings) as backend:

        def record(status: dict[str, Any] | None) -> None:
            own = {r: runner.instances[f"q:{r}"].context.custom_status for r in plan["regions"]
                   if f"q:{r}" in runner.instances}  # fmt: skip
            seen.append(orch.region_progress(status, own)["regions"] if status else {})

        runner = LocalRunner(Activities(settings, backend).table(), ORCHESTRATORS, 0.05, record)
        outcome = runner.run(orch.RUN_ORCHESTRATOR, plan, "q")
    first, second, third = (outcome["regions"][r] for r in plan["regions"])
    assert outcome["states"] == {"Completed": 3}, outcome
    assert "queued_seconds" not in first and 0 < second["queued_seconds"] < third["queued_seconds"]
    assert {"Running": 1, "Queued": 2} in [
        {s: list(states.values()).count(s) for s in set(states.values())} for states in seen
    ]
    # one worker: a region that just finished still shows Running until its next poll (0.05 s),
    # so two may show Running for a moment, never three
    assert all(list(states.values()).count("Running") <= 2 for states in seen)


def test_the_progress_shows_a_region_leaving_the_queue_before_another_one_ends() -> None:
    out = io.StringIO()
    bar = tqdm(total=3, file=out, mininterval=0, ascii=True)
    show_progress(bar, 0, {"Queued": 1, "Running": 2})
    show_progress(bar, 1, {"Completed": 1, "Queued": 1, "Running": 1})  # one ended
    show_progress(bar, 1, {"Completed": 1, "Running": 2})  # the queued one started
    assert out.getvalue().rstrip().endswith("Completed=1, Running=2]")
    drawn = out.getvalue().count("Running=")
    show_progress(bar, 1, {"Completed": 1, "Running": 2})  # nothing changed: no redraw
    assert out.getvalue().count("Running=") == drawn
    bar.close()
