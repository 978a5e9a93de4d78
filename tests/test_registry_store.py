"""The local MLflow store is created whole or not at all, even under kill -9."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demandops.lifecycle.registry import EXPERIMENT, Registry, RegistryError, create_store
from tests.conftest import ROOT

# every SQL statement 50 ms slower: the ~70 migrations take well over the test's 1 s wait
# (about 1.4 s in all without it), so the kill always lands midway, whatever the machine's speed
SLOW = (
    "import time; from sqlalchemy import event; from sqlalchemy.engine import Engine; "
    "event.listen(Engine, 'before_cursor_execute', lambda *a: time.sleep(0.05)); "
)
CREATE = (
    SLOW + "import sys; from demandops.lifecycle import registry as r; "
    "r.create_store(sys.argv[1], None)"
)
# what a batch does first (lifecycle.context): an MlflowClient alone would migrate in place
OPEN = SLOW + "import sys; from demandops.lifecycle import registry as r; r.Registry(sys.argv[1])"


def test_an_existing_store_is_kept_and_dead_creators_leftovers_removed(
    tmp_path: Path, small_lake_template: Path
) -> None:
    db = tmp_path / "mlflow.db"
    shutil.copy(small_lake_template / "mlflow.db", db)
    before = db.read_bytes()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"mlflow.db.creating-{dead.pid}-0000").write_bytes(b"half a migration")
    alive = tmp_path / f"mlflow.db.creating-{os.getpid()}-1111"  # a creator still at work
    alive.write_bytes(b"")
    create_store(f"sqlite:///{db}", None)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db", alive.name]


@pytest.mark.slow
@pytest.mark.parametrize("code", [CREATE, OPEN], ids=["create_store", "Registry"])
def test_a_store_creation_killed_midway_leaves_no_store_and_the_next_creates_it(
    tmp_path: Path, code: str
) -> None:
    db = tmp_path / "mlflow.db"
    env = os.environ | {"PYTHONPATH": str(ROOT)}  # this checkout's code, whatever the cwd
    proc = subprocess.Popen([sys.executable, "-c", code, f"sqlite:///{db}"], env=env)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("mlflow.db.creating-*")):  # migrating
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(1)
    assert proc.poll() is None  # still migrating: the kill lands midway
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not db.exists()  # never a half-migrated store under the real name
    registry = Registry(f"sqlite:///{db}")
    assert registry.experiment_id()  # created whole, with the training experiment
    experiment = registry.client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    assert experiment.artifact_location == (tmp_path / "mlflow-artifacts").as_uri()  # not ./mlruns
    assert [p.name for p in tmp_path.iterdir()] == ["mlflow.db"]


def test_opening_without_create_a_missing_store_is_an_error_and_creates_nothing(
    tmp_path: Path,
) -> None:
    with pytest.raises(RegistryError, match=r"no model registry at .*is --lake right"):
        Registry(f"sqlite:///{tmp_path / 'typo' / 'mlflow.db'}", create=False)
    assert list(tmp_path.iterdir()) == []
