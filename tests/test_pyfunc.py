"""Champions are MLflow pyfunc models: they load and predict in a fresh process without the
project, on the real sqlite MLflow store a batch registered them in."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from demandops.core.lake import Lake
from demandops.core.settings import load_settings
from demandops.lifecycle import champions
from demandops.lifecycle.registry import Registry, model_name
from ml import pyfunc
from ml.artifacts import load_model, read_features
from tests.conftest import SERVED_ON, local_config

CHILD = """
import json, sys
try:
    import ml
    sys.exit("the project is importable without the model's code")
except ImportError:
    pass
import mlflow, mlflow.pyfunc, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
rows = pd.read_parquet(sys.argv[3])
import ml
print(json.dumps({"forecast": [float(v) for v in model.predict(rows)], "ml": ml.__file__}))
"""


def _registry(folder: Path) -> Registry:
    return Registry(f"sqlite:///{folder / 'lake' / 'mlflow.db'}")


def _champion_segments(registry: Registry) -> list[str]:
    names = [n for n in registry.names() if registry.champion(n) is not None]
    assert names, "the batch promoted no champion"
    return [n.removeprefix(model_name("")) for n in names]


def _rows(folder: Path, registry: Registry, segment: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Every scoring row of `segment` and the forecasts the project's own loader gives them."""
    tags = registry.champion(model_name(segment)).tags  # type: ignore[union-attr]
    lake = Lake(str(folder / "lake"))
    features = read_features(lake, lake.dataset(tags["features_dataset"]))  # type: ignore[arg-type]
    trained = load_model(lake, lake.dataset(tags["model_dataset"]))  # type: ignore[arg-type]
    rows = pyfunc.example_rows(features, trained, segment, n=None)
    return rows, trained.models[segment].estimator.predict(rows)


def test_champion_predicts_in_a_fresh_process_without_the_project(
    served_lake: Path, tmp_path: Path
) -> None:
    registry = _registry(served_lake)
    segment = _champion_segments(registry)[0]
    rows, expected = _rows(served_lake, registry, segment)
    rows.to_parquet(tmp_path / "rows.parquet")
    site = sysconfig.get_paths()["purelib"]  # the packages, without the editable project (-S)
    out = subprocess.run(
        [sys.executable, "-S", "-c", CHILD, registry.uri,
         f"models:/{model_name(segment)}@champion", str(tmp_path / "rows.parquet")],
        cwd=tmp_path, env={"PYTHONPATH": site, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert not answer["ml"].startswith(str(Path(__file__).parents[1]))  # the model's own copy
    np.testing.assert_allclose(answer["forecast"], expected, rtol=1e-5)


def test_champion_model_has_signature_example_and_lineage(
    served_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(served_lake)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    for segment in _champion_segments(registry):
        uri = f"models:/{model_name(segment)}@champion"
        info = mlflow.models.get_model_info(uri)
        assert info.signature is not None and "week_start" in info.signature.inputs.input_names()
        assert info.saved_input_example_info is not None
        champion = registry.champion(model_name(segment))
        assert champion is not None
        assert json.loads(registry.artefact(champion.tags["run_id"], "lineage.json"))


def test_a_single_row_forecasts_as_it_does_in_its_batch(
    served_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(served_lake)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    for segment in _champion_segments(registry):
        rows, whole = _rows(served_lake, registry, segment)
        model = mlflow.pyfunc.load_model(f"models:/{model_name(segment)}@champion")
        alone = [model.predict(rows.iloc[[i]])[0] for i in range(0, len(rows), 7)]
        np.testing.assert_allclose(alone, whole[::7], rtol=1e-5)


def test_a_champion_pickled_before_pyfunc_still_scores(
    served_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version logged as plain artefacts (segment_model.pkl, no MLmodel) as the previous
    version of the code did: the batch's own loader still scores with it."""
    shutil.copytree(served_lake / "lake", tmp_path / "lake")
    settings = load_settings(local_config(tmp_path))
    registry = _registry(tmp_path)
    segment = _champion_segments(registry)[0]
    name = model_name(segment)
    tags = dict(registry.champion(name).tags)  # type: ignore[union-attr]
    lake = Lake(str(tmp_path / "lake"))
    trained = load_model(lake, lake.dataset(tags["model_dataset"]))  # type: ignore[arg-type]
    plain = {"segment_model.pkl": pickle.dumps(trained.models[segment]), "lineage.json": b"{}"}
    run_id = registry.log_run("legacy", {}, {}, tags, plain)
    legacy = str(registry.register(name, run_id, tags | {"run_id": run_id}).version)
    registry.set_champion(name, legacy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    with pytest.raises(MlflowException, match="MLmodel"):
        mlflow.pyfunc.load_model(f"models:/{name}/{legacy}")
    ctx = champions.context(settings.environment, settings.pipeline.lifecycle, SERVED_ON)
    scorers = champions.resolve_scorers(ctx, lake, trained, {})
    assert scorers[segment].version == legacy and scorers[segment].fallback == ""
    assert scorers[segment].estimator is not None
