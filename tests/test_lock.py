"""The batch lock: flock on a local lake (real processes), a blob lease on Azurite's blob API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demandops.cli.main import main
from demandops.core import lock
from demandops.core.lake import Lake
from demandops.core.lock import LockBusy, batch_lock
from tests.conftest import ROOT

HOLD = """
import sys, time
from demandops.core.lake import Lake
from demandops.core.lock import batch_lock
with batch_lock(Lake(sys.argv[1]), "dev", "run-a", 0):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the batch lock of the lake `tmp_path` for `dev`; killed after."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}  # this checkout's code, whatever the cwd
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_second_batch_waits_then_refuses_naming_the_holder(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    started = time.monotonic()
    with pytest.raises(LockBusy) as caught, batch_lock(Lake(str(tmp_path)), "dev", "b", 0.6):
        pass
    assert time.monotonic() - started >= 0.6
    message = str(caught.value)
    assert "\n" not in message
    assert f"run run-a (pid {holder.pid} on " in message and "waited 0.6 s" in message
    info = json.loads((tmp_path / "_locks" / "dev.lock").read_text())
    assert info["run_id"] == "run-a" and info["pid"] == str(holder.pid)
    with batch_lock(Lake(str(tmp_path)), "prod", "c", 0):  # another environment: free
        pass


def test_the_lock_of_a_killed_batch_is_taken_over(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with batch_lock(Lake(str(tmp_path)), "dev", "run-b", 5):
        info = json.loads((tmp_path / "_locks" / "dev.lock").read_text())
        assert info["run_id"] == "run-b" and info["pid"] == str(os.getpid())
    assert (tmp_path / "_locks" / "dev.lock").read_text() == ""  # released: no stale holder


def test_a_waiting_batch_gets_the_lock_when_the_holder_ends(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    subprocess.Popen(["sh", "-c", f"sleep 0.5; kill {holder.pid}"])
    with batch_lock(Lake(str(tmp_path)), "dev", "run-b", 10):
        pass


def test_lease_on_azurite_refuses_a_second_batch_and_is_released(azure_lake_url: str) -> None:
    lake = Lake(azure_lake_url)
    busy = r"busy: run run-a \(pid \d+ on .*waited 0.5 s"
    with (
        batch_lock(lake, "dev", "run-a", 0),
        pytest.raises(LockBusy, match=busy),
        batch_lock(Lake(azure_lake_url), "dev", "run-b", 0.5),
    ):
        pass
    with batch_lock(Lake(azure_lake_url), "dev", "run-b", 0):  # released at the end
        pass


@pytest.mark.slow
def test_an_abandoned_lease_expires_and_is_taken_over(
    azure_lake_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch killed while holding the lease stops renewing it: it expires, the next takes it."""
    from azure.storage.filedatalake import DataLakeLeaseClient

    monkeypatch.setattr(lock, "LEASE_SECONDS", 15)
    lake = Lake(azure_lake_url)
    service, container, path = lock._lease_target(lake, "_locks/dev.lock")
    lake.fs.pipe_file(lake.full_path("_locks/dev.lock"), b"")
    file = service.get_file_client(container, path)
    holder: Any = DataLakeLeaseClient(file)  # its SDK types `self` as int
    holder.acquire(lease_duration=15)  # a holder that never renews
    with pytest.raises(LockBusy), batch_lock(lake, "dev", "run-b", 1):
        pass
    started = time.monotonic()
    with batch_lock(lake, "dev", "run-b", 30):
        assert 10 < time.monotonic() - started < 25
        assert file.get_file_properties().metadata["run_id"] == "run-b"


@pytest.mark.parametrize(
    "command",
    [["models", "rollback", "demand.pnw.large.fast"], ["models", "promote"],
     ["models", "challenger", "pnw.large.fast", "1"], ["condition", "--source", "shipments"]],
)  # fmt: skip
def test_commands_that_write_outside_a_batch_take_its_lock(
    tmp_path: Path,
    small_lake_template: Path,
    holder: subprocess.Popen[str],
    command: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    shutil.copy(small_lake_template / "mlflow.db", tmp_path / "mlflow.db")
    assert main([*command, "--lake", str(tmp_path), "--lock-wait", "0.2"]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and f"is busy: run run-a (pid {holder.pid} on " in line
