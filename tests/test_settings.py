"""Settings: the embedded defaults, environment overrides, and one clear error per bad config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from demandops.core.errors import ConfigError
from demandops.core.settings import DEFAULT_CONFIG_DIR, load_settings


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copytree(DEFAULT_CONFIG_DIR, tmp_path / "config")
    return tmp_path / "config"


def test_defaults_have_fourteen_regions_and_a_local_dev_environment() -> None:
    settings = load_settings()
    assert len(settings.regions) == 14
    assert len(set(settings.region_ids())) == 14
    assert all(r.stores.large > 0 and r.stores.small > 0 for r in settings.regions)
    assert settings.environment.name == "dev"
    assert settings.environment.compute == "local"
    assert settings.pipeline.horizon_weeks == 4


def test_environment_variables_override_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMANDOPS_ENV", "prod")
    monkeypatch.setenv("DEMANDOPS_LAKE", "/data/lake")
    settings = load_settings()
    assert settings.environment.name == "prod"
    assert settings.environment.compute == "azureml"
    assert settings.environment.lake == "/data/lake"


def test_config_folder_from_environment(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (config / "regions.yaml").read_text().replace("Pacific Northwest", "Cascadia")
    (config / "regions.yaml").write_text(text)
    monkeypatch.setenv("DEMANDOPS_CONFIG", str(config))
    assert load_settings().regions[0].name == "Cascadia"


@pytest.mark.parametrize(
    ("file", "old", "new", "key", "problem"),
    [
        ("regions.yaml", '"98101"', '"981"', "regions[0].zip_codes", "5 digits"),
        ("regions.yaml", "{id: tx,", "{id: pnw,", "regions[5].id", "duplicate region id 'pnw'"),
        (
            "regions.yaml",
            "large: 4, small: 6",
            "large: -1, small: 6",
            "regions[0].stores.large",
            "greater than or equal to 0",
        ),
        (
            "regions.yaml",
            "{id: pnw,",
            "{id: pnw, colour: red,",
            "regions[0].colour",
            "not permitted",
        ),
        ("pipeline.yaml", "horizon_weeks: 4 ", "horizon_weeks: four ", "horizon_weeks", "integer"),
        (
            "pipeline.yaml",
            "ensemble_objective: wape ",
            "ensemble_objective: rmse ",
            "ensemble_objective",
            "'wape' or 'mape'",
        ),
        (
            "environments/dev.yaml",
            "compute: local ",
            "compute: cloud ",
            "compute",
            "'local' or 'azureml'",
        ),
        ("regions.yaml", "regions:", "regions: [", "line", "not valid YAML"),
    ],
)
def test_invalid_config_names_file_key_and_problem(
    config: Path, file: str, old: str, new: str, key: str, problem: str
) -> None:
    path = config / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    message = str(err.value)
    assert str(path) in message
    assert key in message
    assert problem in message
    assert "\n" not in message


def test_missing_file_and_unknown_environment(config: Path) -> None:
    (config / "pipeline.yaml").unlink()
    with pytest.raises(ConfigError, match=r"pipeline\.yaml: file not found"):
        load_settings(config)
    with pytest.raises(
        ConfigError, match=r"unknown environment 'staging'; known: \['dev', 'prod'\]"
    ):
        load_settings(config, env="staging")


def test_select_regions_keeps_order_and_rejects_unknown_ids() -> None:
    settings = load_settings()
    assert [r.id for r in settings.select_regions(["tx", "pnw", "tx"])] == ["tx", "pnw"]
    assert len(settings.select_regions(None)) == 14
    with pytest.raises(ConfigError, match="unknown region atlantis"):
        settings.select_regions(["pnw", "atlantis"])
