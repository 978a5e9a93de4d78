"""Shared fixtures: small sample lakes, a real Azurite blob emulator, a clean environment."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from demandops.core.lake import Lake
from demandops.core.settings import AML_TRACKING_ENV, OVERRIDES, Settings, load_settings
from demandops.lifecycle.registry import Registry
from demandops.pipeline.batch import run_batch
from demandops.sample.data import SampleSpec, generate

ROOT = Path(__file__).resolve().parent.parent
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
SMALL = SampleSpec(products=6, weeks=80, store_scale=0.5)
SMALL_REGIONS = ["pnw", "tx"]
SERVED_ON = date(2026, 1, 5)
TEST_EPOCHS = (
    8  # the embedding net's epochs in test configurations (the default, 30, is validate-model's)
)


CONFIG_ENV = ("DEMANDOPS_ENV", "DEMANDOPS_CONFIG", "DEMANDOPS_TELEMETRY", AML_TRACKING_ENV,
              "APPLICATIONINSIGHTS_CONNECTION_STRING", *OVERRIDES)  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_env() -> Iterator[None]:
    """No configuration from the environment in a test, and none left behind by it (the CLI's
    --lake sets DEMANDOPS_LAKE for its worker processes, which later fixtures would read)."""
    saved = {name: os.environ.pop(name) for name in CONFIG_ENV if name in os.environ}
    yield
    for name in CONFIG_ENV:
        os.environ.pop(name, None)
    os.environ.update(saved)


def settings_in(folder: Path) -> Settings:
    """Default configuration in `folder`/config with the lake in `folder`/lake and one worker."""
    return load_settings(local_config(folder))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default configuration with the lake in a temporary folder and one worker process."""
    return settings_in(tmp_path)


def local_config(folder: Path) -> Path:
    """A copy of the project's config in `folder`, dev's lake at `folder/lake`, one worker, a
    net of TEST_EPOCHS epochs at most."""
    config = folder / "config"
    shutil.copytree(ROOT / "config", config)
    env = config / "environments" / "dev.yaml"
    text = env.read_text().replace("lake: .lake", f"lake: {folder / 'lake'}")
    env.write_text(text.replace("max_workers: 2", "max_workers: 1"))
    pipeline = config / "pipeline.yaml"  # a shorter net: the tests are about the system around it
    text = pipeline.read_text()
    assert "nn_max_epochs: 30 " in text
    pipeline.write_text(text.replace("nn_max_epochs: 30 ", f"nn_max_epochs: {TEST_EPOCHS} "))
    return config


@pytest.fixture(scope="session")
def small_lake_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw sample data for two small regions, generated once per session."""
    path = tmp_path_factory.mktemp("template") / "lake"
    regions = load_settings(ROOT / "config").select_regions(SMALL_REGIONS)
    generate(Lake(str(path)), regions, SMALL)
    init_registry(path / "mlflow.db")
    return path


@pytest.fixture(scope="session")
def tiny_raw_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw sample data of one region and two products (~0.2 MB), generated once per session:
    copy it before changing it."""
    path = tmp_path_factory.mktemp("tiny") / "lake"
    regions = load_settings(ROOT / "config").select_regions(["pnw"])
    generate(Lake(str(path)), regions, SampleSpec(products=2, weeks=60, store_scale=0.1))
    return path


@pytest.fixture(scope="session")
def batched_small_lake(
    small_lake_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, Lake, dict[str, Any]]:
    """The small sample's two regions after one batch, with its report: shared by the tests
    that only read the outputs (do not run anything else on it)."""
    settings = settings_in(tmp_path_factory.mktemp("batched"))
    shutil.copytree(small_lake_template, settings.environment.lake)
    report = run_batch(settings, SMALL_REGIONS, progress=False)
    return settings, Lake(settings.environment.lake), report


@pytest.fixture(scope="session")
def served_lake(tmp_path_factory: pytest.TempPathFactory, tiny_raw_lake: Path) -> Path:
    """A folder whose `config/` points at `lake/`, a tiny lake after a batch on SERVED_ON: its
    segments registered as MLflow models, made champions, the forecasts scored by them. Copy it
    before changing it."""
    folder = tmp_path_factory.mktemp("served")
    shutil.copytree(tiny_raw_lake, folder / "lake")
    settings = load_settings(local_config(folder))
    run_batch(settings, ["pnw"], progress=False, today=SERVED_ON)
    registry = Registry(f"sqlite:///{folder / 'lake' / 'mlflow.db'}")
    for name in registry.names():  # too little data to pass the gates: champions by hand
        if registry.champion(name) is None:
            registry.set_champion(name, str(registry.versions(name)[-1].version))
    run_batch(settings, ["pnw"], progress=False, today=SERVED_ON)  # scored by the champions
    return folder


def init_registry(db: Path) -> None:
    """Create an empty MLflow sqlite store, tables only (its ~70 schema migrations take seconds:
    do it once and copy the file; a copy's first batch creates its experiment where it is)."""
    uri = f"sqlite:///{db}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()


@pytest.fixture
def small_lake(settings: Settings, small_lake_template: Path) -> Lake:
    """A fresh copy of the small sample raw data in the settings' lake."""
    shutil.copytree(small_lake_template, settings.environment.lake)
    return Lake(settings.environment.lake)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Azurite blob service on loopback; yields its connection string."""
    assert AZURITE.exists(), "Azurite is missing: `make test` installs it with npm"
    port = _free_port()
    workspace = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost", "127.0.0.1",
            "--blobPort", str(port),
            "--location", str(workspace),
            "--silent",
            "--disableTelemetry",
            "--skipApiVersionCheck",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Azurite did not start") from None
                time.sleep(0.2)
        yield (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def azure_lake_url(azurite: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An `abfs://` lake in a new container of the Azurite account."""
    from azure.storage.blob import BlobServiceClient

    container = f"lake{os.getpid()}{time.monotonic_ns() % 10**9}"
    service: Any = BlobServiceClient.from_connection_string(azurite)  # its SDK types `self` as str
    service.create_container(container)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    return f"abfs://{container}"
