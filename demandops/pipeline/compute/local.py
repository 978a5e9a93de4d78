"""The local compute backend: each region's steps run in a pool of worker processes.

With one worker the run happens in a thread of this process instead (no fork, same result).
Each run continues the submitter's trace (`demandops.core.telemetry.call`). The pool is handed
at most one run per worker; the others wait here, "Queued", so a run the pool holds is running
and its time-out (the orchestration's) counts from its start, not from its submission."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from conditioners.profile import load_profiles
from demandops.core import telemetry
from demandops.core.errors import DataError
from demandops.core.lake import Lake
from demandops.core.settings import Settings
from demandops.lifecycle.champions import LifecycleContext
from demandops.pipeline import steps
from demandops.pipeline.compute import RegionJob, RunStatus
from demandops.pipeline.region import run_region

NATIVE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """On Linux, the kernel kills this worker (SIGKILL) when the process that started it dies,
    however it dies: a killed batch leaves no orphan worker writing to the lake or holding its
    lock. If the parent is gone already, exit now."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent == 1 or not _alive(parent):
        os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def init_worker() -> None:
    """A pool worker's set-up: it dies with its parent and runs one native thread."""
    die_with_parent()
    one_native_thread()


def one_native_thread() -> None:
    """A pool worker's native libraries (BLAS, OpenMP) run one thread each, those loaded already
    and those loaded later: the workers fill the cores, and more threads per worker only contend
    (the default 14-region batch on 2 cores: 164 s with the libraries' default threads, 89 s
    with one, same forecasts)."""
    for name in NATIVE_THREAD_VARIABLES:
        os.environ[name] = "1"
    threadpool_limits(limits=1)


class LocalBackend:
    """Runs `demandops.pipeline.region.run_region` for each submitted region; runs live as
    long as it."""

    def __init__(
        self,
        settings: Settings,
        max_workers: int | None = None,
        life: LifecycleContext | None = None,
    ) -> None:
        """`life`: the model lifecycle's registry context, passed to every region's run."""
        self.settings = settings
        self.life = life
        workers = max_workers or settings.environment.max_workers
        self._pool: Executor = (
            ThreadPoolExecutor(1)
            if workers <= 1
            else ProcessPoolExecutor(
                workers,
                mp_context=telemetry.pool_context([run_region.__module__]),
                initializer=init_worker,
            )
        )
        self._workers = max(1, workers)
        self._runs: dict[str, Future[Any]] = {}  # handed to the pool: running or ended
        self._queued: dict[str, Callable[[], Future[Any]]] = {}  # in submission order
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._queued.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, job: RegionJob) -> str:
        run_id = f"{job.run}:{job.region}"
        if run_id in self._runs or run_id in self._queued:  # a retried submission
            return run_id
        lake = Lake(self.settings.environment.lake)
        ref = steps.Reference(
            **{k: self._dataset(lake, job.reference[k]) for k in steps.REFERENCE_SOURCES},
            profiles=load_profiles(Path(job.reference["profiles"])),
            as_of=job.reference["as_of"],
            limits=self.settings.pipeline.limits,
        )
        span, carrier = telemetry.current(), telemetry.carrier()
        args = (lake.url, job.region, ref, self.settings.pipeline, job.stage, self.life)
        with self._lock:
            self._queued[run_id] = lambda: self._pool.submit(
                telemetry.call, span, carrier, run_region, *args
            )
        self._start_queued()
        return run_id

    def _start_queued(self, _ended: Future[Any] | None = None) -> None:
        """Hand queued runs to the pool while it has an idle worker (and again as runs end)."""
        while True:
            with self._lock:
                busy = sum(not f.done() for f in self._runs.values())
                if self._closed or busy >= self._workers or not self._queued:
                    return
                run_id = next(iter(self._queued))
                future = self._queued.pop(run_id)()
                self._runs[run_id] = future
            future.add_done_callback(self._start_queued)

    @staticmethod
    def _dataset(lake: Lake, path: str) -> Any:
        dataset = lake.dataset(path)
        if dataset is None:
            raise DataError(f"reference dataset not committed: {lake.location(path)}")
        return dataset

    def _future(self, run_id: str) -> Future[Any] | None:
        """The run's future once handed to the pool, None while it is queued."""
        with self._lock:
            if run_id in self._queued:
                return None
            if run_id not in self._runs:
                raise KeyError(f"no local run {run_id!r} in this process")
            return self._runs[run_id]

    def _started(self, run_id: str) -> Future[Any]:
        future = self._future(run_id)
        if future is None:
            raise KeyError(f"local run {run_id!r} is still queued")
        return future

    def status(self, run_id: str) -> RunStatus:
        future = self._future(run_id)
        if future is None:
            return RunStatus("Queued")
        if future.cancelled():
            return RunStatus("Canceled")
        if not future.done():
            return RunStatus("Running")
        error = future.exception()
        if error is not None:
            return RunStatus("Failed", f"{type(error).__name__}: {error}")
        return RunStatus("Completed")

    def cancel(self, run_id: str) -> None:
        """Cancel a run that has not started; a started one runs to its end unobserved."""
        with self._lock:
            queued = self._queued.pop(run_id, None) is not None
            if queued:  # never started: a cancelled future stands for it
                self._runs[run_id] = Future()
                self._runs[run_id].cancel()
        if not queued:
            self._started(run_id).cancel()

    def outputs(self, run_id: str) -> dict[str, Any]:
        return asdict(self._started(run_id).result())

    def error(self, run_id: str) -> BaseException | None:
        """The exception a failed run raised, as raised (for callers on this machine)."""
        future = self._future(run_id)
        if future is None or future.cancelled() or not future.done():
            return None
        return future.exception()
