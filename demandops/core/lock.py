"""One batch at a time per lake and environment: a lock file locally, a blob lease in Azure.

On a local lake the lock is `fcntl.flock` on `<lake>/_locks/<env>.lock`; the kernel releases it
when its process dies, however it dies, so a lock of a dead process is simply taken. On an
`abfs://` lake it is a lease on the blob `_locks/<env>.lock` (azure-storage-file-datalake's
DataLakeLeaseClient), renewed while the batch runs: a killed batch stops renewing and its lease
expires after LEASE_SECONDS. Either way the holder (run id, pid, host, start time) is written
with the lock, and a second batch waits up to `wait` seconds, then refuses with one line
naming the holder (docs/crash-safety.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from demandops.core.errors import DemandOpsError
from demandops.core.lake import Lake
from demandops.core.settings import Environment

LOCKS = "_locks"
LEASE_SECONDS = 30  # a lease's duration (Azure allows 15-60); renewed every third of it
POLL_SECONDS = 0.2

log = logging.getLogger(__name__)


class LockBusy(DemandOpsError):
    """Another batch holds the lake's lock for this environment."""


def holder(run_id: str) -> dict[str, str]:
    """What a lock records of its holder."""
    return {
        "run_id": run_id,
        "pid": str(os.getpid()),
        "host": socket.gethostname(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def describe(info: dict[str, Any] | None) -> str:
    if not info:
        return "another batch (its details are not readable yet)"
    return (
        f"run {info.get('run_id', '?')} (pid {info.get('pid', '?')} on {info.get('host', '?')}, "
        f"since {info.get('started', '?')})"
    )


def _refusal(lake: Lake, environment: str, wait: float, info: dict[str, Any] | None) -> LockBusy:
    return LockBusy(
        f"the lake {lake.location()} is busy: {describe(info)} holds its {environment} batch "
        f"lock; waited {wait:g} s (--lock-wait or lock_wait_seconds)"
    )


@contextlib.contextmanager
def batch_lock(lake: Lake, environment: str, run_id: str, wait: float) -> Iterator[None]:
    """Hold the lake's batch lock for `environment` in the block; LockBusy after `wait` s.
    (`environment` may name a part of it: `<env>.region=<r>`, one Azure ML step of a batch.)"""
    name = f"{LOCKS}/{environment}.lock"
    if lake.is_local and not os.path.isdir(lake.full_path("")):
        yield  # no lake: nothing to guard, and a mistyped --lake must not be created
    elif lake.is_local:
        with _file_lock(lake, name, environment, holder(run_id), wait):
            yield
    else:
        with _lease(lake, name, environment, holder(run_id), wait):
            yield


@contextlib.contextmanager
def command_lock(env: Environment, command: str, wait: float | None) -> Iterator[None]:
    """The environment's batch lock for a command that writes the lake or the registry outside
    a batch (`condition`, `models promote`...); `wait` defaults to lock_wait_seconds."""
    run_id = f"{command}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    wait = env.lock_wait_seconds if wait is None else wait
    with batch_lock(Lake(env.lake), env.name, run_id, wait):
        yield


@contextlib.contextmanager
def _file_lock(
    lake: Lake, name: str, environment: str, info: dict[str, str], wait: float
) -> Iterator[None]:
    path = lake.full_path(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _refusal(lake, environment, wait, _read_info(fd)) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        os.fsync(fd)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


def _read_info(fd: int) -> dict[str, Any] | None:
    try:
        data = os.pread(fd, 4096, 0)
        found = json.loads(data) if data.strip() else None
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _lease_target(lake: Lake, name: str) -> tuple[Any, str, str]:
    """The DataLake service client of an `abfs://` lake, its container and the lock's path."""
    from azure.storage.filedatalake import DataLakeServiceClient

    container, _, base = lake.full_path(name).partition("/")
    connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if connection:
        return DataLakeServiceClient.from_connection_string(connection), container, base
    account = lake.url.removeprefix("abfs://").split("/", 1)[0].partition("@")[2].split(".")[0]
    if not account:
        raise DemandOpsError(
            f"cannot lock the lake {lake.url}: name the storage account "
            "(abfs://<container>@<account>.dfs.core.windows.net) or set "
            "AZURE_STORAGE_CONNECTION_STRING"
        )
    from azure.identity import DefaultAzureCredential

    url = f"https://{account}.dfs.core.windows.net"
    return DataLakeServiceClient(url, credential=DefaultAzureCredential()), container, base


@contextlib.contextmanager
def _lease(
    lake: Lake, name: str, environment: str, info: dict[str, str], wait: float
) -> Iterator[None]:
    from azure.core.exceptions import HttpResponseError
    from azure.storage.filedatalake import DataLakeLeaseClient

    service, container, path = _lease_target(lake, name)
    file = service.get_file_client(container, path)
    if not lake.fs.exists(lake.full_path(name)):  # the blob API creates it (Azurite has no dfs)
        with contextlib.suppress(Exception):  # created (and leased) by another batch meanwhile
            lake.fs.pipe_file(lake.full_path(name), b"")
    lease: Any = DataLakeLeaseClient(file)  # its stubs type `self` as int
    deadline = time.monotonic() + wait
    while True:
        try:
            lease.acquire(lease_duration=LEASE_SECONDS)
            break
        except HttpResponseError as exc:
            if exc.status_code != 409 or time.monotonic() >= deadline:
                if exc.status_code != 409:
                    raise
                meta = file.get_file_properties().metadata
                raise _refusal(lake, environment, wait, dict(meta or {})) from None
            time.sleep(min(1.0, max(POLL_SECONDS, wait / 20)))
    file.set_metadata(info, lease=lease)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lease, stop), daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with contextlib.suppress(HttpResponseError):
            lease.release()


def _renew(lease: Any, stop: threading.Event) -> None:
    """Renew the lease every third of its duration until `stop`."""
    while not stop.wait(LEASE_SECONDS / 3):
        try:
            lease.renew()
        except Exception as exc:  # the next renewal may succeed; say so meanwhile
            log.warning("could not renew the batch lease: %s", exc)
