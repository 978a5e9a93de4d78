"""Settings: the embedded defaults, environment overrides, and one clear error per bad config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from demandops.core.errors import ConfigError
from demandops.core.settings import DEFAULT_CONFIG_DIR, load_settings
from demandops.sample.data import SampleSpec, sample_files


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
            "pipeline.yaml",
            "ensemble_volume_gate: null ",
            "ensemble_volume_gate: 0 ",
            "ensemble_volume_gate",
            "greater than 0",
        ),
        (
            "pipeline.yaml",
            "  ensemble_validation_windows: 1 ",
            "  horizon_weeks: 2\n  ensemble_validation_windows: 1 ",
            "large_segment",
            "cannot set horizon_weeks",
        ),
        (
            "pipeline.yaml",
            "  ensemble_validation_windows: 1 ",
            "  ensemble_validation_windows: 0 ",
            "large_segment.ensemble_validation_windows",
            "greater than or equal to 1",
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


SUB = "5f1c2e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
WORKSPACE_URI = (
    f"azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/{SUB}/resourceGroups/rg-x"
    "/providers/Microsoft.MachineLearningServices/workspaces/ws-x"
)


def test_app_settings_make_dev_an_azure_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the Function App's settings (infra/main.bicep) do to dev.yaml."""
    for name, value in {
        "DEMANDOPS_LAKE": "abfs://lake@acct.dfs.core.windows.net",
        "DEMANDOPS_COMPUTE": "azureml",
        "DEMANDOPS_REGISTRY_URI": "azureml",
        "AZURE_ML_SUBSCRIPTION_ID": SUB,
        "AZURE_ML_RESOURCE_GROUP": "rg-x",
        "AZURE_ML_WORKSPACE": "ws-x",
        "AZURE_ML_LOCATION": "westeurope",
        "AZURE_ML_COMPUTE": "cpu-cluster",
        "AZURE_ML_ENVIRONMENT": "azureml:demandops:abc123",
    }.items():
        monkeypatch.setenv(name, value)
    env = load_settings(env="dev").environment
    assert env.compute == "azureml" and env.lake.startswith("abfs://")
    assert env.azureml is not None and env.azureml.environment == "azureml:demandops:abc123"
    assert env.tracking_uri() == WORKSPACE_URI


def test_prod_names_its_registry_by_its_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    prod = load_settings(env="prod").environment
    assert prod.registry_uri == "azureml"
    with pytest.raises(ValueError, match="set AZURE_ML_SUBSCRIPTION_ID"):
        prod.tracking_uri()  # the file's subscription is a placeholder
    monkeypatch.setenv("AZURE_ML_SUBSCRIPTION_ID", SUB)
    uri = load_settings(env="prod").environment.tracking_uri()
    assert uri.startswith(f"azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/{SUB}/")
    workspace = "Microsoft.MachineLearningServices/workspaces/demandops-prod-mlw"
    assert uri.endswith(f"/resourceGroups/demandops-prod-rg/providers/{workspace}")


def test_on_a_job_node_the_registry_is_the_one_azure_ml_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMANDOPS_REGISTRY_URI", "azureml")
    env = load_settings(env="dev").environment  # no `azureml:` section
    with pytest.raises(ValueError, match="needs the workspace"):
        env.tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", WORKSPACE_URI)
    assert env.tracking_uri() == WORKSPACE_URI


def test_a_workspace_without_its_region_says_so(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = config / "environments" / "prod.yaml"
    prod.write_text(prod.read_text().replace("  location: westeurope", ""))
    monkeypatch.setenv("AZURE_ML_SUBSCRIPTION_ID", SUB)
    env = load_settings(config, "prod").environment
    with pytest.raises(ValueError, match=r"set AZURE_ML_LOCATION or azureml\.location"):
        env.tracking_uri()


def test_a_partial_workspace_from_settings_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_ML_WORKSPACE", "ws-x")  # and nothing else of the section
    with pytest.raises(
        ConfigError, match=r"azureml\.subscription_id.*set AZURE_ML_SUBSCRIPTION_ID"
    ):
        load_settings(env="dev")


def _discovering(config: Path, lake: Path, text: str) -> Path:
    env = config / "environments" / "dev.yaml"
    env.write_text(env.read_text().replace("lake: .lake", f"lake: {lake}"))
    (config / "regions.yaml").write_text(text)
    return config


def test_regions_can_come_from_the_lakes_folders(config: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for folder in ("region=east", "region=web", "notes"):
        (lake / "raw" / "shipments" / folder).mkdir(parents=True)
        (lake / "raw" / "shipments" / folder / "sales.csv").write_text("week,units\n")
    (lake / "raw" / "shipments" / "region=empty").mkdir()  # no file: not a region
    (lake / "raw" / "shipments" / "region=empty" / ".keep").write_text("")
    listed = "  - {id: web, name: Web shop, holidays: {country: DE}}\n"
    text = f"discover:\n  holidays: {{country: DE, subdivision: NW}}\nregions:\n{listed}"
    settings = load_settings(_discovering(config, lake, text))
    assert settings.region_ids() == ["web", "east"]  # the listed first, as listed
    east, web = settings.select_regions(["east", "web"])
    assert east.name == "east" and east.zip_codes == [] and east.stores.large == 0
    assert east.holidays is not None and east.holidays.subdivision == "NW"
    assert web.name == "Web shop" and web.holidays is not None and web.holidays.subdivision is None
    assert settings.pipeline.holidays["east"].country == "DE"

    (lake / "raw" / "shipments" / "region=Bad Name").mkdir()
    (lake / "raw" / "shipments" / "region=Bad Name" / "sales.csv").write_text("week,units\n")
    with pytest.raises(ConfigError, match=r"region=Bad Name.*id"):
        load_settings(_discovering(config, lake, "discover: {}\n"))


def test_discovery_without_region_folders_is_a_clear_error(config: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"discover: no region=<id> folders below raw/shipments/"):
        load_settings(_discovering(config, tmp_path / "empty", "discover:\n"))


def test_sample_data_needs_sized_regions(config: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    (lake / "raw" / "shipments" / "region=east").mkdir(parents=True)
    (lake / "raw" / "shipments" / "region=east" / "sales.csv").write_text("week,units\n")
    settings = load_settings(_discovering(config, lake, "discover:\n"))
    with pytest.raises(ValueError, match="region east has no zip_codes or stores"):
        next(sample_files(settings.regions, SampleSpec()))


def test_a_large_segment_trains_with_its_own_settings() -> None:
    """`large_segment` replaces the keys it sets, above `large_segment_rows` training rows,
    with the run's overrides applied to both."""
    from ml.train import TrainParams

    configured = load_settings().pipeline
    large = configured.for_large_segment()
    assert large.ensemble == ["ml.models:LassoForecaster"]
    assert large.ensemble_validation_windows == 1
    assert large.nn_seeds == configured.nn_seeds and large.large_segment_rows is None
    params = TrainParams.from_config(configured, horizon_weeks=2)
    limit = configured.large_segment_rows
    assert limit is not None
    assert params.for_segment(limit) is params
    above = params.for_segment(limit + 1)
    assert above.ensemble_members == ("ml.models:LassoForecaster",)
    assert above.ensemble_validation_windows == 1 and above.horizon_weeks == 2
    assert above.for_segment(10**9) is above
    never = TrainParams.from_config(configured.model_copy(update={"large_segment_rows": None}))
    assert never.for_segment(10**9) is never


def test_the_volume_gate_reaches_the_ensemble_from_the_configuration() -> None:
    """`ensemble_volume_gate:` (null by default) is the blend's `volume_gate`."""
    from ml.train import TrainParams, ensemble

    configured = load_settings().pipeline
    assert configured.ensemble_volume_gate is None
    assert ensemble(TrainParams.from_config(configured)).volume_gate is None
    mape_user = configured.model_copy(
        update={"ensemble_objective": "mape", "ensemble_volume_gate": 0.25}
    )
    blend = ensemble(TrainParams.from_config(mape_user))
    assert (blend.objective, blend.volume_gate) == ("mape", 0.25)
