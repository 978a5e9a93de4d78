"""A segment's model as an MLflow pyfunc, so any MLflow or Azure ML tool can load and serve it.

`save` writes an MLflow model folder: the pickled `SegmentModel` as the artefact
`segment_model`, the code its unpickling imports (the `ml` package and `demandops.core`, nothing
else of the project) as `code_paths`, the pinned environment of ml/environment/conda.yml, a
signature and an input example (a few rows of the segment's scoring features).
`mlflow.pyfunc.load_model` then predicts in a process that has those packages but not this
project.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

import demandops.core
from ml.segments import assign_segments
from ml.train import SegmentModel, TrainedRegion

ARTEFACT = "segment_model"
EXAMPLE_ROWS = 3
PACKAGES = (Path(__file__).resolve().parent, Path(demandops.core.__file__).resolve().parent)
# the Azure ML environment's pins, not MLflow's inference (a subprocess of ~15 s per model that
# also names the project itself, which no package index has)
CONDA_ENV = PACKAGES[0] / "environment" / "conda.yml"
# What saving says on every model, which a batch would print 56 times: that the environment is
# pickled (it is code, by design), that it checks the input example, and that this process lacks
# the Azure packages of CONDA_ENV (the Azure ML jobs' environment, not the local batch's).
QUIET = ("mlflow.pyfunc", "mlflow.utils.requirements_utils", "mlflow.models.model")


class SegmentPyfunc(PythonModel):
    """Forecast units for feature rows with the pickled segment model of the artefacts."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts[ARTEFACT], "rb") as f:
            model = pickle.load(f)  # an MLflow model is code: load only models you trust
        if not isinstance(model, SegmentModel):
            raise TypeError(f"{context.artifacts[ARTEFACT]} is not a segment model")
        self.model = model

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return np.asarray(self.model.estimator.predict(model_input), dtype=float)


def example_rows(
    features: pd.DataFrame, trained: TrainedRegion, segment: str, n: int | None = EXAMPLE_ROWS
) -> pd.DataFrame:
    """The first `n` (None: all) scoring rows of `segment`, as the scoring step gives them."""
    future = assign_segments(features[features["is_future"]], trained.velocity)
    name = future["region"] + "." + future["store_format"] + "." + future["velocity"]
    rows = future[name == segment].sort_values(["store_id", "product_id", "week_start"])
    if rows.empty:
        raise ValueError(f"no scoring rows for segment {segment}")
    return (rows if n is None else rows.head(n)).reset_index(drop=True)


def save(path: Path, model: SegmentModel, example: pd.DataFrame) -> None:
    """Write `model` as an MLflow pyfunc model folder at `path` (which must not exist)."""
    with tempfile.TemporaryDirectory() as tmp:
        pickled = Path(tmp, "segment_model.pkl")
        pickled.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        with _quiet():
            mlflow.pyfunc.save_model(
                str(path),
                python_model=SegmentPyfunc(),
                artifacts={ARTEFACT: str(pickled)},
                code_paths=_code(Path(tmp, "code")),
                conda_env=str(CONDA_ENV),
                signature=infer_signature(example, model.estimator.predict(example)),
                input_example=example,
            )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's per-model notes (the QUIET loggers, its integer-columns hint) off in the block."""
    levels = {name: logging.getLogger(name).level for name in QUIET}
    try:
        for name in QUIET:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _code(folder: Path) -> list[str]:
    """Copies of `ml/` and `demandops/core` (under a `demandops/` of its own), sources only."""
    only_sources = shutil.ignore_patterns("__pycache__", "*.pyc", "*.yml", "*.yaml")
    ml_copy = shutil.copytree(PACKAGES[0], folder / "ml", ignore=only_sources)
    top = folder / "demandops"
    shutil.copytree(PACKAGES[1], top / "core", ignore=only_sources)
    (top / "__init__.py").write_text('"""demandops.core, packaged with a model."""\n')
    return [str(ml_copy), str(top)]
