"""Shipping a model is configuration: a class named in `ensemble:` flows through the batch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from demandops.core.errors import ConfigError
from demandops.core.lake import Lake
from demandops.core.settings import load_settings
from demandops.pipeline.batch import run_batch
from ml.members import load_member
from scripts.validate_model import DATASET, DATASET_REGIONS, check_report, copy_dataset

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("ml.models.LassoForecaster", "write a member as module:Class"),
        ("ml.nowhere:Model", "cannot import it"),
        ("ml.models:Nothing", "cannot import it"),
        ("ml.models:ColumnBaseline", "needs for_segment and forecaster_name"),
    ],
)
def test_a_bad_member_name_says_what_is_wrong(path: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        load_member(path)


def test_a_member_name_must_look_like_module_class(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    pipeline = config / "pipeline.yaml"
    pipeline.write_text(
        pipeline.read_text().replace("- ml.models:LassoForecaster", "- lasso please")
    )
    with pytest.raises(ConfigError, match=r"pipeline\.yaml: ensemble\[0\]"):
        load_settings(config, env="dev")


def test_a_new_member_named_in_config_is_trained_backtested_and_registered(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    pipeline = config / "pipeline.yaml"
    text = pipeline.read_text().replace(
        "  - ml.embedding_net:EmbeddingNetForecaster\n",
        "  - ml.embedding_net:EmbeddingNetForecaster\n"
        "  - tests.members_example:CycleMeanForecaster\n",
    )
    pipeline.write_text(text)
    env = config / "environments" / "dev.yaml"
    lake_dir = tmp_path / "lake"
    env.write_text(
        env.read_text()
        .replace("lake: .lake", f"lake: {lake_dir}")
        .replace("max_workers: 2", "max_workers: 1")
    )
    settings = load_settings(config, env="dev")
    copy_dataset(DATASET, Lake(str(lake_dir)))
    report = run_batch(settings, DATASET_REGIONS[:1], progress=False)
    assert check_report(report, DATASET_REGIONS[:1]) == []
    assert "cycle_mean" in report["overall"]  # backtested beside the other members
    for segment in report["segments"]:
        assert "cycle_mean" in segment["by_model"]
        assert segment["champion_version"]  # registered and through the gates
