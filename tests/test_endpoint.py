"""The Azure ML online endpoint under ml/endpoint: its YAML loads with azure-ai-ml's own loaders,
and its score.py serves the registered champions in-process from a real MLflow sqlite store."""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from azure.ai.ml import load_environment, load_online_deployment, load_online_endpoint

from demandops.core.lake import Lake
from demandops.lifecycle.registry import Registry, model_name
from ml import pyfunc
from ml.artifacts import load_model, read_features
from ml.models import ColumnBaseline
from ml.train import TrainedRegion
from tests.conftest import ROOT

ENDPOINT = ROOT / "ml" / "endpoint"


def test_endpoint_and_deployment_load_with_azure_ai_ml() -> None:
    endpoint = load_online_endpoint(source=ENDPOINT / "endpoint.yml")
    deployment = load_online_deployment(source=ENDPOINT / "deployment.yml")
    assert deployment.endpoint_name == endpoint.name and endpoint.auth_mode == "key"
    code = deployment.code_configuration
    assert code is not None and code.scoring_script == "score.py"
    assert (ENDPOINT / code.scoring_script).is_file()
    assert deployment.environment == "demandops-serving:1"  # its own, not the jobs' demandops:1
    environment = load_environment(source=ENDPOINT / "environment" / "environment.yml")
    assert environment.name == "demandops-serving" and environment.conda_file is not None
    settings = deployment.environment_variables
    assert {"MLFLOW_TRACKING_URI", "DEMANDOPS_SEGMENTS"} <= set(settings)
    assert float(settings["DEMANDOPS_RELOAD_SECONDS"]) == 60  # score.py's default, said there


def _score_module(db: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """score.py loaded as Azure ML loads it (a file, not a package module), serving the
    registry `db` (an MLflow sqlite file), after init()."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.delenv("DEMANDOPS_SEGMENTS", raising=False)
    spec = importlib.util.spec_from_file_location("score", ENDPOINT / "score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.init()
    return module


@pytest.fixture
def score(served_lake: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """score.py serving the served lake's registry."""
    return _score_module(served_lake / "lake" / "mlflow.db", monkeypatch)


def _request(lake: Lake, champion: Any, segment: str) -> tuple[str, pd.DataFrame, TrainedRegion]:
    """A scoring request of 5 of `segment`'s feature rows, as docs/serving.md documents it; the
    rows and the batch's models of `champion` (a registered version), to compare with."""
    model = lake.dataset(champion.tags["model_dataset"])
    feature_set = lake.dataset(champion.tags["features_dataset"])
    assert model is not None and feature_set is not None
    trained, features = load_model(lake, model), read_features(lake, feature_set)
    rows = pyfunc.example_rows(features, trained, segment, n=5)
    body = {
        "segment": segment,
        "rows": json.loads(rows.to_json(orient="records", date_format="iso")),
    }
    return json.dumps(body), rows, trained


def test_score_serves_every_champion_as_the_batch_scores_it(
    served_lake: Path, score: ModuleType
) -> None:
    registry = Registry(f"sqlite:///{served_lake / 'lake' / 'mlflow.db'}")
    served = [n.removeprefix(model_name("")) for n in registry.names()]
    assert sorted(score.MODELS) == served
    lake = Lake(str(served_lake / "lake"))
    for segment in served:
        champion = registry.champion(model_name(segment))
        assert champion is not None
        body, rows, trained = _request(lake, champion, segment)
        answer = score.run(body)
        assert answer["model_version"] == str(champion.version), answer
        expected = trained.models[segment].estimator.predict(rows)
        np.testing.assert_allclose(answer["forecast"], expected, rtol=1e-5)


def _register_other_model(
    registry: Registry, segment: str, rows: pd.DataFrame, trained: TrainedRegion, folder: Path
) -> tuple[str, np.ndarray]:
    """A new version of `segment`, an MLflow pyfunc written as the batch writes one (ml/pyfunc.py)
    whose baseline reads another column than the champion's; its version and forecasts."""
    champion = trained.models[segment]
    now = getattr(champion.estimator, "column", "")
    column = "same_woy_avg" if now == "hist_avg" else "hist_avg"
    other = replace(champion, kind="baseline", estimator=ColumnBaseline(column).fit(rows))
    pyfunc.save(folder / "model", other, rows.head(3))
    run_id = registry.log_run("other", {}, {}, {}, {}, model_dir=folder / "model")
    version = registry.register(model_name(segment), run_id, {}).version
    return str(version), other.estimator.predict(rows)


def test_score_serves_a_promotion_and_a_rollback_without_a_restart(
    served_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = Path(shutil.copytree(served_lake / "lake", tmp_path / "lake"))
    steady = _score_module(folder / "mlflow.db", monkeypatch)  # the default: every 60 s
    monkeypatch.setenv("DEMANDOPS_RELOAD_SECONDS", "0")  # re-read the aliases on every request
    score = _score_module(folder / "mlflow.db", monkeypatch)
    registry, segment = Registry(f"sqlite:///{folder / 'mlflow.db'}"), "pnw.large.fast"
    first = registry.champion(model_name(segment))
    assert first is not None
    body, rows, trained = _request(Lake(str(folder)), first, segment)
    first_forecast = trained.models[segment].estimator.predict(rows)
    second, second_forecast = _register_other_model(registry, segment, rows, trained, tmp_path)
    assert not np.allclose(first_forecast, second_forecast)  # else the test proves nothing
    assert score.run(body)["model_version"] == str(first.version)

    registry.set_champion(model_name(segment), second)
    promoted = score.run(body)
    assert promoted["model_version"] == second, promoted
    np.testing.assert_allclose(promoted["forecast"], second_forecast, rtol=1e-5)
    assert steady.run(body)["model_version"] == str(first.version)  # not yet due

    assert registry.rollback(model_name(segment)) == (second, str(first.version))
    rolled_back = score.run(body)
    assert rolled_back["model_version"] == str(first.version), rolled_back
    np.testing.assert_allclose(rolled_back["forecast"], first_forecast, rtol=1e-5)


BAD_REQUESTS = [  # a body, what its error says, its HTTP status
    ("not json", "the body must be JSON", 400),
    ('{"segment": "pnw.large.fast"}', "the body must be JSON", 400),
    ('{"segment": "' + "x" * 500 + '", "rows": [{}]}', "no champion served for segment", 404),
    ('{"segment": "pnw.large.fast", "rows": []}', "rows must be a list of 1 to", 400),
    ('{"segment": "pnw.large.fast", "rows": [{"store_id": "PNW-001"}]}', "cannot forecast", 400),
]


@pytest.mark.parametrize(("body", "says", "status"), BAD_REQUESTS)
def test_score_answers_a_bad_request_in_one_line(
    score: ModuleType, body: str, says: str, status: int
) -> None:
    answer, code = score.answer(body)
    assert score.run(body) == answer  # without the server, `run` answers the body alone
    assert code == status and says in answer["error"]
    assert len(answer["error"]) < 400 and "\n" not in answer["error"]


@pytest.mark.parametrize("seconds", ["soon", "-1", "inf"])
def test_score_refuses_a_bad_reload_interval_in_one_line(
    served_lake: Path, monkeypatch: pytest.MonkeyPatch, seconds: str
) -> None:
    monkeypatch.setenv("DEMANDOPS_RELOAD_SECONDS", seconds)
    with pytest.raises(ValueError, match=r"^DEMANDOPS_RELOAD_SECONDS must be a number of seconds"):
        _score_module(served_lake / "lake" / "mlflow.db", monkeypatch)
