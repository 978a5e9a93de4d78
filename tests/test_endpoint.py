"""The Azure ML online endpoint under ml/endpoint: its YAML loads with azure-ai-ml's own loaders,
and its score.py serves the registered champions in-process from a real MLflow sqlite store."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from azure.ai.ml import load_online_deployment, load_online_endpoint

from demandops.core.lake import Lake
from demandops.lifecycle.registry import Registry, model_name
from ml import pyfunc
from ml.artifacts import load_model, read_features
from tests.conftest import ROOT

ENDPOINT = ROOT / "ml" / "endpoint"


def test_endpoint_and_deployment_load_with_azure_ai_ml() -> None:
    endpoint = load_online_endpoint(source=ENDPOINT / "endpoint.yml")
    deployment = load_online_deployment(source=ENDPOINT / "deployment.yml")
    assert deployment.endpoint_name == endpoint.name and endpoint.auth_mode == "key"
    assert deployment.code_configuration.scoring_script == "score.py"
    assert (ENDPOINT / deployment.code_configuration.scoring_script).is_file()
    assert deployment.environment == "demandops:1"  # the jobs' environment (components/*.yml)
    assert "azureml:demandops:1" in (ROOT / "ml" / "components" / "score.yml").read_text()
    assert {"MLFLOW_TRACKING_URI", "DEMANDOPS_SEGMENTS"} <= set(deployment.environment_variables)


@pytest.fixture
def score(served_lake: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """score.py loaded as Azure ML loads it (a file, not a package module), after init()."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{served_lake / 'lake' / 'mlflow.db'}")
    monkeypatch.delenv("DEMANDOPS_SEGMENTS", raising=False)
    spec = importlib.util.spec_from_file_location("score", ENDPOINT / "score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.init()
    return module


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
        trained = load_model(lake, lake.dataset(champion.tags["model_dataset"]))  # type: ignore[arg-type]
        features = read_features(lake, lake.dataset(champion.tags["features_dataset"]))  # type: ignore[arg-type]
        rows = pyfunc.example_rows(features, trained, segment, n=5)
        body = {
            "segment": segment,
            "rows": json.loads(rows.to_json(orient="records", date_format="iso")),
        }
        answer = score.run(json.dumps(body))
        assert answer["model_version"] == str(champion.version), answer
        expected = trained.models[segment].estimator.predict(rows)
        np.testing.assert_allclose(answer["forecast"], expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "the body must be JSON"),
        ('{"segment": "pnw.large.fast"}', "the body must be JSON"),
        ('{"segment": "' + "x" * 500 + '", "rows": [{}]}', "no champion served for segment"),
        ('{"segment": "pnw.large.fast", "rows": []}', "rows must be a list of 1 to"),
        ('{"segment": "pnw.large.fast", "rows": [{"store_id": "PNW-001"}]}', "cannot forecast"),
    ],
)
def test_score_answers_a_bad_request_in_one_line(score: ModuleType, body: str, says: str) -> None:
    answer = score.run(body)
    assert says in answer["error"] and len(answer["error"]) < 400 and "\n" not in answer["error"]
