"""A local runner for the durable orchestrators of `demandops.pipeline.orchestration`, no Azure.

It implements the part of the Durable Functions orchestration context those generators use and
drives them in one process: an activity runs for real as soon as it is scheduled, a durable timer
waits in real time but at most `max_wait` seconds, and every orchestration and sub-orchestration
keeps a history in the Durable Task event vocabulary (OrchestratorStarted, TaskScheduled,
TaskCompleted, TimerCreated, TimerFired, SubOrchestrationInstanceCreated, ...), one episode per
delivered completion (the Durable Task Framework may batch several completions into one episode,
so its histories can only be shorter). The tests replay these histories through the real
`azure-functions-durable` replay engine; the benchmark counts their events.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Orchestrator = Callable[[Any], Generator[Any, Any, Any]]


class Task:
    """A durable task: completes once, with a `result` (an Exception when it failed)."""

    def __init__(self) -> None:
        self.done = False
        self.failed = False
        self.result: Any = None
        self.parent: Task | None = None

    def settle(self, value: Any, failed: bool) -> None:
        self.done, self.failed, self.result = True, failed, value
        if self.parent is not None:
            self.parent.child_done(self)

    def child_done(self, child: Task) -> None:  # pragma: no cover - atomic tasks have no children
        raise NotImplementedError

    def children(self) -> list[Task]:
        return []


class Atomic(Task):
    """An activity, a timer or a sub-orchestration: one scheduled action with an event id."""

    def __init__(self, kind: str, name: str = "", payload: Any = None, **extra: Any) -> None:
        super().__init__()
        self.kind, self.name, self.payload, self.extra = kind, name, payload, extra
        self.id: int | None = None


class WhenAll(Task):
    def __init__(self, tasks: list[Task]) -> None:
        super().__init__()
        self.tasks = list(tasks)
        for t in self.tasks:
            t.parent = self
        for t in [t for t in self.tasks if t.done]:
            self.child_done(t)

    def children(self) -> list[Task]:
        return self.tasks

    def child_done(self, child: Task) -> None:
        if self.done:
            return
        if child.failed:
            self.settle(child.result, True)
        elif all(t.done for t in self.tasks):
            self.settle([t.result for t in self.tasks], False)


class WhenAny(WhenAll):
    def child_done(self, child: Task) -> None:
        if not self.done:
            self.settle(child, False)


class WithRetry(Task):
    """An activity retried on failure after a durable timer, as DTFx does it."""

    def __init__(self, name: str, payload: Any, first_retry_ms: int, max_attempts: int) -> None:
        super().__init__()
        self.name, self.payload = name, payload
        self.interval = first_retry_ms / 1000
        self.max_attempts = max_attempts
        self.attempts = 0
        self.pending: Atomic | None = None
        self.last_error: BaseException | None = None

    def next_attempt(self) -> Atomic:
        self.attempts += 1
        self.pending = Atomic("activity", self.name, self.payload)
        self.pending.parent = self
        return self.pending

    def children(self) -> list[Task]:
        return [self.pending] if self.pending is not None else []

    def child_done(self, child: Task) -> None:  # the runner decides what follows a child
        self.pending = None


class LocalContext:
    """The subset of `DurableOrchestrationContext` the orchestrators use."""

    def __init__(self, instance_id: str, input_json: str) -> None:
        self.instance_id = instance_id
        self._input = input_json
        self.current_utc_datetime = datetime.now(UTC)
        self.custom_status: Any = None

    def get_input(self) -> Any:
        return json.loads(self._input)

    def set_custom_status(self, status: Any) -> None:
        self.custom_status = json.loads(json.dumps(status))

    def call_activity(self, name: str, input_: Any = None) -> Task:
        return Atomic("activity", name, input_)

    def call_activity_with_retry(self, name: str, retry_options: Any, input_: Any = None) -> Task:
        return WithRetry(
            name,
            input_,
            retry_options.first_retry_interval_in_milliseconds,
            retry_options.max_number_of_attempts,
        )

    def call_sub_orchestrator(
        self, name: str, input_: Any = None, instance_id: str | None = None
    ) -> Task:
        return Atomic("sub", name, input_, instance_id=instance_id)

    def create_timer(self, fire_at: datetime) -> Task:
        return Atomic("timer", payload=fire_at)

    def task_all(self, tasks: list[Task]) -> Task:
        return WhenAll(tasks)

    def task_any(self, tasks: list[Task]) -> Task:
        return WhenAny(tasks)


@dataclass
class Instance:
    """One orchestration instance: its generator, context and history."""

    id: str
    name: str
    context: LocalContext
    generator: Generator[Any, Any, Any]
    parent_task: Atomic | None
    history: list[dict[str, Any]] = field(default_factory=list)
    sequence: itertools.count[int] = field(default_factory=itertools.count)
    waiting: Task | None = None
    finished: bool = False
    output: Any = None
    error: BaseException | None = None

    def record(self, event_type: str, event_id: int = -1, **attrs: Any) -> None:
        self.history.append(
            {
                "EventType": EVENT_TYPES[event_type],
                "EventId": event_id,
                "IsPlayed": False,
                "Timestamp": self.context.current_utc_datetime.isoformat(),
                **attrs,
            }
        )


EVENT_TYPES = {
    name: number
    for number, name in enumerate(
        [
            "ExecutionStarted",
            "ExecutionCompleted",
            "ExecutionFailed",
            "ExecutionTerminated",
            "TaskScheduled",
            "TaskCompleted",
            "TaskFailed",
            "SubOrchestrationInstanceCreated",
            "SubOrchestrationInstanceCompleted",
            "SubOrchestrationInstanceFailed",
            "TimerCreated",
            "TimerFired",
            "OrchestratorStarted",
            "OrchestratorCompleted",
        ]
    )
}  # the numbering of azure.durable_functions.models.history.HistoryEventType


def _json(value: Any) -> str:
    return json.dumps(value)


class LocalRunner:
    """Drive orchestrator generators to completion on this machine.

    `activities` maps activity names to functions of one JSON-able argument; `orchestrators` maps
    orchestrator names (for sub-orchestrations) to generator functions; `on_status` is called
    with the top-level instance's custom status whenever any instance advances (a
    sub-orchestration's status is in `instances`).
    """

    def __init__(
        self,
        activities: dict[str, Callable[[Any], Any]],
        orchestrators: dict[str, Orchestrator],
        max_wait: float = 0.5,
        on_status: Callable[[Any], None] | None = None,
    ) -> None:
        self.activities = activities
        self.orchestrators = orchestrators
        self.max_wait = max_wait
        self.on_status = on_status
        self.instances: dict[str, Instance] = {}
        self._inbox: deque[tuple[Instance, Atomic, Any, bool]] = deque()
        self._timers: list[tuple[float, int, Instance, Atomic]] = []
        self._tiebreak = itertools.count()
        self._root = ""

    def run(self, name: str, input_: Any, instance_id: str) -> Any:
        """Run orchestrator `name` to its end; return its output or raise what it raised."""
        self._root = instance_id
        root = self._start(name, input_, instance_id, None)
        while not root.finished:
            if self._inbox:
                self._episode(*self._inbox.popleft())
            elif self._timers:
                due, _, inst, timer = heapq.heappop(self._timers)
                time.sleep(max(0.0, due - time.monotonic()))
                self._inbox.append((inst, timer, None, False))
            else:  # pragma: no cover - would be a bug in an orchestrator or here
                raise RuntimeError(f"orchestration {instance_id} waits on nothing")
        if root.error is not None:
            raise root.error
        return root.output

    # -- instances ----------------------------------------------------------------------
    def _start(self, name: str, input_: Any, instance_id: str, parent: Atomic | None) -> Instance:
        if instance_id in self.instances:
            raise ValueError(f"orchestration instance {instance_id!r} already exists")
        context = LocalContext(instance_id, _json(input_))
        inst = Instance(instance_id, name, context, self.orchestrators[name](context), parent)
        self.instances[instance_id] = inst
        inst.record("OrchestratorStarted")
        inst.record("ExecutionStarted", Name=name, Input=context._input, Version=None)
        self._advance(inst, None, False)
        return inst

    def _episode(self, inst: Instance, task: Atomic, value: Any, failed: bool) -> None:
        """Deliver one completion to its instance: a new episode of its history."""
        inst.context.current_utc_datetime = datetime.now(UTC)
        inst.record("OrchestratorStarted")
        self._record_completion(inst, task, value, failed)
        parent = task.parent
        task.settle(value, failed)
        if isinstance(parent, WithRetry) and not parent.done:
            self._after_attempt(inst, parent, task)
        waiting = inst.waiting
        if waiting is not None and waiting.done:
            self._advance(inst, waiting.result, waiting.failed)
        else:
            inst.record("OrchestratorCompleted")

    def _after_attempt(self, inst: Instance, retry: WithRetry, child: Atomic) -> None:
        if child.kind == "activity":
            if not child.failed:
                retry.settle(child.result, False)
                return
            retry.last_error = child.result
            fire_at = inst.context.current_utc_datetime.timestamp() + retry.interval
            timer = Atomic("timer", payload=datetime.fromtimestamp(fire_at, UTC))
            timer.parent = retry
            retry.pending = timer
            self._schedule(inst, timer)
        elif retry.attempts >= retry.max_attempts:  # the timer after the last attempt fired
            retry.settle(retry.last_error, True)
        else:
            self._schedule(inst, retry.next_attempt())

    def _advance(self, inst: Instance, value: Any, failed: bool) -> None:
        """Resume the generator until it waits on a task that is not done, or ends."""
        try:
            while True:
                task = inst.generator.throw(value) if failed else inst.generator.send(value)
                self._schedule(inst, task)
                if not task.done:
                    inst.waiting = task
                    break
                value, failed = task.result, task.failed
        except StopIteration as stop:
            self._finish(inst, stop.value, None)
        except Exception as exc:
            self._finish(inst, None, exc)
        else:
            inst.record("OrchestratorCompleted")
        if self.on_status is not None and self._root in self.instances:
            self.on_status(self.instances[self._root].context.custom_status)

    def _finish(self, inst: Instance, output: Any, error: BaseException | None) -> None:
        inst.finished, inst.output, inst.error, inst.waiting = True, output, error, None
        if error is None:
            output = json.loads(_json(output))
            inst.output = output
            inst.record("ExecutionCompleted", Result=_json(output), OrchestrationStatus=0)
        else:
            inst.record("ExecutionFailed", Reason=str(error), Details=type(error).__name__)
        inst.record("OrchestratorCompleted")
        if inst.parent_task is not None:
            parent = self.instances[inst.parent_task.extra["owner"]]
            self._inbox.append((parent, inst.parent_task, error or output, error is not None))

    # -- tasks --------------------------------------------------------------------------
    def _schedule(self, inst: Instance, task: Task) -> None:
        """Give new atomic tasks their ids (in the order the SDK does) and start them."""
        if isinstance(task, WithRetry):
            if task.attempts == 0:
                self._schedule(inst, task.next_attempt())
            return
        if not isinstance(task, Atomic):
            for child in task.children():
                self._schedule(inst, child)
            return
        if task.id is not None:
            return
        task.id = next(inst.sequence)
        if task.kind == "activity":
            inst.record("TaskScheduled", task.id, Name=task.name, Input=_json(task.payload))
            self._run_activity(inst, task)
        elif task.kind == "timer":
            fire_at: datetime = task.payload
            inst.record("TimerCreated", task.id, FireAt=fire_at.isoformat())
            wait = min(self.max_wait, (fire_at - inst.context.current_utc_datetime).total_seconds())
            due = time.monotonic() + max(0.0, wait)
            heapq.heappush(self._timers, (due, next(self._tiebreak), inst, task))
        else:
            child_id = task.extra["instance_id"]
            task.extra["owner"] = inst.id
            inst.record(
                "SubOrchestrationInstanceCreated",
                task.id,
                Name=task.name,
                InstanceId=child_id,
                Input=_json(task.payload),
            )
            self._start(task.name, task.payload, child_id, task)

    def _run_activity(self, inst: Instance, task: Atomic) -> None:
        try:
            result = json.loads(_json(self.activities[task.name](json.loads(_json(task.payload)))))
        except Exception as exc:
            self._inbox.append((inst, task, exc, True))
        else:
            self._inbox.append((inst, task, result, False))

    @staticmethod
    def _record_completion(inst: Instance, task: Atomic, value: Any, failed: bool) -> None:
        if task.kind == "timer":
            inst.record("TimerFired", TimerId=task.id, FireAt=task.payload.isoformat())
            return
        prefix = "Task" if task.kind == "activity" else "SubOrchestrationInstance"
        if failed:
            inst.record(
                f"{prefix}Failed",
                TaskScheduledId=task.id,
                Reason=str(value),
                Details=type(value).__name__,
            )
        else:
            inst.record(f"{prefix}Completed", TaskScheduledId=task.id, Result=_json(value))
