"""How the pipeline stores a region's features and trained models in the lake's datasets."""

from __future__ import annotations

import io
import pickle

import pandas as pd

from demandops.core.errors import DataError
from demandops.core.lake import Dataset, Lake
from ml.train import TrainedRegion

FEATURES_FILE = "features.parquet"
MODEL_FILE = "model.pkl"


def read_features(lake: Lake, features: Dataset) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(lake.read_bytes(features.file(FEATURES_FILE))))


def load_model(lake: Lake, model: Dataset) -> TrainedRegion:
    """Unpickle a region's models. Only load model datasets from a lake you trust."""
    trained = pickle.loads(lake.read_bytes(model.file(MODEL_FILE)))
    if not isinstance(trained, TrainedRegion):
        raise DataError(f"{model.path}/{MODEL_FILE} is not a trained region model")
    return trained
