"""The weekly batch's steps over the lake: each reads committed inputs, writes one dataset.

A step's output version is the hash of its inputs' versions, its parameters and the code
version. If a dataset of that version is already committed the step does nothing, so a
re-run on unchanged inputs skips all work and leaves every output as it was. Conditioning
steps are in `conditioning`, the feature, training and scoring steps in `modeling`.
"""

from demandops.pipeline.steps.conditioning import (
    REFERENCE_SOURCES,
    REGION_SOURCES,
    Reference,
    RegionInputs,
    condition_reference,
    condition_region,
    condition_source,
    quality_for_region,
    read_table,
)
from demandops.pipeline.steps.modeling import (
    features_for_region,
    score_for_region,
    train_for_region,
)
from ml.artifacts import load_model, read_features

__all__ = [
    "REFERENCE_SOURCES",
    "REGION_SOURCES",
    "Reference",
    "RegionInputs",
    "condition_reference",
    "condition_region",
    "condition_source",
    "features_for_region",
    "load_model",
    "quality_for_region",
    "read_features",
    "read_table",
    "score_for_region",
    "train_for_region",
]
