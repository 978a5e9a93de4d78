"""ml/endpoint/score.py under Azure ML's real HTTP server (azureml-inference-server-http: gunicorn
and Flask) run from the serving environment (.venv-serving, `make serving-env`) on loopback,
serving the champions of a real sqlite MLflow registry with no project code on its path: a
batch's (baselines, on the tiny lake) and a real ensemble (LASSO and the torch net)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from packaging.utils import canonicalize_name

from demandops.core.lake import Lake
from demandops.core.settings import load_settings
from demandops.lifecycle.registry import Registry, model_name
from ml import pyfunc
from ml.artifacts import read_features
from ml.boosting import LightGBMForecaster, LightGBMMedianForecaster
from ml.train import TrainParams, ensemble, model_features
from tests.conftest import ROOT, _free_port
from tests.test_delivery_environment import serving_constraints
from tests.test_endpoint import BAD_REQUESTS, ENDPOINT, _request

SERVING = ROOT / ".venv-serving"
APP = "azureml_inference_server_http.server.entry:app"  # what azmlinfsrv runs under gunicorn
# azmlinfsrv's other gunicorn options (amlserver_linux.py): one sync worker, 300 s worker timeout
AS_AZMLINFSRV = ["-w", "1", "--timeout", "300", "--access-logfile", "-", "--error-logfile", "-"]
START_SECONDS = 240.0  # torch and every champion load before the worker answers
REQUEST_SECONDS = 60.0
ENSEMBLE = "pnw.large.fast"  # the segment given an ensemble champion


@dataclass(frozen=True)
class Champion:
    version: str
    body: str  # a request of a few of its segment's scoring rows
    expected: np.ndarray  # their forecasts by the project's own model object


@dataclass(frozen=True)
class Served:
    db: Path  # the registry (an MLflow sqlite file)
    champions: dict[str, Champion]  # by segment


@dataclass(frozen=True)
class Server:
    url: str
    log: Path


def _serving_python() -> Path:
    """The serving environment's interpreter; fails (not skips) the test if it is not built."""
    if not (SERVING / ".installed").is_file():
        pytest.fail(f"{SERVING} is not built: run `make serving-env` (`make test` builds it)")
    return SERVING / "bin" / "python"


def _env(db: Path, home: Path) -> dict[str, str]:
    """The server's whole environment: a deployment's variables, the entry script, no project."""
    return {
        "PATH": f"{SERVING / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "AML_APP_ROOT": str(home),  # the server appends it to sys.path: no code there
        "AZUREML_ENTRY_SCRIPT": str(ENDPOINT / "score.py"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{db}",
        "DEMANDOPS_SEGMENTS": "",
        "DEMANDOPS_RELOAD_SECONDS": "60",
    }


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def _wait_live(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Until the liveness route answers 200: at most START_SECONDS and 1,000 tries."""
    deadline = time.monotonic() + START_SECONDS
    for _ in range(1000):
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet, or the worker still loading
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    pytest.fail(f"the server did not answer on {url} in {START_SECONDS:.0f} s:\n{_log_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn (master and worker, its own process group), at most 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _register_ensemble(
    registry: Registry, lake: Lake, params: TrainParams, folder: Path
) -> Champion:
    """A real ensemble (the configured members: the LASSO and the torch net) fit on the region's
    history, registered as ml/pyfunc.py saves a champion and made ENSEMBLE's champion."""
    champion = registry.champion(model_name(ENSEMBLE))
    assert champion is not None
    body, rows, trained = _request(lake, champion, ENSEMBLE)
    dataset = lake.dataset(champion.tags["features_dataset"])
    assert dataset is not None
    features = read_features(lake, dataset)
    history = features[~features["is_future"] & features["units"].notna()]
    blend = ensemble(params, model_features(history)).fit(history, history["units"])
    weights = dict(zip(blend.named_estimators_, blend.weights_, strict=True))
    assert weights.get("nn", 0) > 0, f"the torch net has no weight in {weights}: it would not run"
    model = replace(trained.models[ENSEMBLE], kind="ensemble", estimator=blend)
    pyfunc.save(folder / "model", model, rows.head(3))
    run_id = registry.log_run("ensemble", {}, {}, {}, {}, model_dir=folder / "model")
    version = str(registry.register(model_name(ENSEMBLE), run_id, {}).version)
    registry.set_champion(model_name(ENSEMBLE), version)
    return Champion(version, body, blend.predict(rows))


@pytest.fixture(scope="module")
def served(served_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Served:
    """A copy of the served lake's registry, ENSEMBLE's champion made a real ensemble: every
    segment's champion with a request and the forecasts the project's own models give it."""
    folder = tmp_path_factory.mktemp("served") / "lake"
    shutil.copytree(served_lake / "lake", folder)
    registry, lake = Registry(f"sqlite:///{folder / 'mlflow.db'}"), Lake(str(folder))
    champions = {}
    for name in registry.names():  # the batch's, read with the project's own loader
        champion, segment = registry.champion(name), name.removeprefix(model_name(""))
        assert champion is not None, name
        body, rows, trained = _request(lake, champion, segment)
        expected = trained.models[segment].estimator.predict(rows)
        champions[segment] = Champion(str(champion.version), body, expected)
    params = TrainParams.from_config(load_settings(served_lake / "config").pipeline)
    champions[ENSEMBLE] = _register_ensemble(registry, lake, params, folder.parent / "ensemble")
    return Served(folder / "mlflow.db", champions)


@pytest.fixture(scope="module")
def server(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gunicorn as azmlinfsrv starts it, but bound to 127.0.0.1 only, serving `served`'s
    registry; stopped after the module's tests."""
    python, home = _serving_python(), tmp_path_factory.mktemp("serving")
    env, port, log = _env(served.db, home), _free_port(), home / "log"
    command = [str(python.parent / "gunicorn"), "-b", f"127.0.0.1:{port}", *AS_AZMLINFSRV, APP]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_live(proc, url, log)
        yield Server(url, log)
    finally:
        _stop(proc)


def _post(server: Server, body: str) -> tuple[int, str, dict[str, Any]]:
    """POST `body` to /score: the status, the raw answer and the answer as JSON."""
    request = urllib.request.Request(
        server.url + "/score", data=body.encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:
            status, raw = response.status, response.read().decode()
    except urllib.error.HTTPError as error:  # a 4xx or 5xx answer
        status, raw = error.code, error.read().decode()
    return status, raw, json.loads(raw)


def test_serving_environment_holds_exactly_the_pins_and_no_project(tmp_path: Path) -> None:
    python = _serving_python()
    site = next((SERVING / "lib").glob("python3.*/site-packages"))
    found = distributions(path=[str(site)])
    installed: dict[str, str] = {canonicalize_name(d.metadata["Name"]): d.version for d in found}
    for name, pinned in serving_constraints().items():  # a local build label (+cpu) aside
        assert installed.get(name, "").split("+")[0] == pinned, f"{name} {installed.get(name)}"
    assert "demandops" not in installed
    for module in ("ml", "demandops"):  # in the server's environment and working folder
        out = subprocess.run(
            [str(python), "-c", f"import {module}"], cwd=tmp_path,
            env=_env(tmp_path / "mlflow.db", tmp_path), capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert out.returncode == 1 and "ModuleNotFoundError" in out.stderr, out.stderr


def test_server_serves_every_champion_as_the_project_forecasts(
    served: Served, server: Server
) -> None:
    assert len(served.champions) == 4  # the tiny lake's segments, one of them the ensemble
    for segment, champion in served.champions.items():
        status, raw, answer = _post(server, champion.body)
        assert status == 200, raw
        assert answer["segment"] == segment and answer["model_version"] == champion.version
        np.testing.assert_allclose(answer["forecast"], champion.expected, rtol=1e-5)
    assert "ready for serving traffic" in server.log.read_text()  # azmlinfsrv's own log


@pytest.mark.parametrize(("body", "says", "status"), BAD_REQUESTS)
def test_server_answers_a_bad_request_in_one_line_with_its_status(
    server: Server, body: str, says: str, status: int
) -> None:
    code, raw, answer = _post(server, body)
    assert code == status, raw
    assert list(answer) == ["error"] and says in str(answer["error"]) and "\n" not in raw


def test_lightgbm_members_load_and_forecast_in_the_serving_environment(tmp_path: Path) -> None:
    """A MAPE user's champion carries LightGBM's trees (ml.boosting); their pickles import
    lightgbm on loading, which no module-level import of the carried code shows."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"promo": rng.random(400).round(), "store_id": rng.choice(["a", "b"], 400)})
    y = np.round(np.exp(2.0 + X["promo"] + (X["store_id"] == "a")) * rng.lognormal(0, 0.2, 400))
    settings: dict[str, Any] = {
        "features": ("promo",),
        "categorical": ("store_id",),
        "n_estimators": 20,
    }
    members = [
        LightGBMForecaster(objective="mape", **settings).fit(X, y),
        LightGBMMedianForecaster(**settings).fit(X, y),
    ]
    (tmp_path / "members.pkl").write_bytes(pickle.dumps((members, X)))
    script = (
        f"import json, pickle, sys; sys.path.insert(0, {str(ROOT)!r}); "
        "members, X = pickle.load(open('members.pkl', 'rb')); "
        "print(json.dumps([m.predict(X).tolist() for m in members]))"
    )
    out = subprocess.run(
        [str(_serving_python()), "-c", script], cwd=tmp_path,
        env=_env(tmp_path / "mlflow.db", tmp_path), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    for served_forecast, member in zip(json.loads(out.stdout), members, strict=True):
        np.testing.assert_allclose(served_forecast, member.predict(X), rtol=1e-9)
