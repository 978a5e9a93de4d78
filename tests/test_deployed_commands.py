"""The deployed commands are the tested commands: each Azure ML component's command line, built
from its YAML with the inputs substituted, and the Function App's activities and blob trigger,
called through the app's registered functions with the app settings infra/ gives them, run here in
a fresh process against a lake on Azurite `abfs://`, with the registry at a separate MLflow
tracking URI (a sqlite store outside the lake, artefacts beside it), as a workspace gives one.

What differs from Azure, and cannot be checked here: the process signs in to storage with
Azurite's connection string instead of the managed identity (adlfs takes `DefaultAzureCredential`
when no connection string is set), the registry is sqlite rather than the workspace's `azureml://`
store (its MLflow plugin is installed and registered: tested below), and the environment is this
.venv rather than one built from ml/environment/conda.yml (tests/test_delivery_environment.py
checks that they pin the same versions, and below that they pin every library the code imports).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points, packages_distributions
from pathlib import Path
from typing import Any

import pytest
import yaml

from demandops.core.lake import Lake
from demandops.lifecycle.registry import Registry, model_name
from tests.conftest import ROOT

COMPONENTS = ROOT / "ml" / "components"
CONSTRAINTS = ROOT / "ml" / "environment" / "constraints.txt"
JOB_CODE = ("demandops", "ml", "conditioners")  # what the components' command imports
# the online endpoint's script: it runs in an environment of its own (ml/endpoint/environment/)
NOT_JOB_CODE = ROOT / "ml" / "endpoint"
TIMEOUT = 900  # seconds per command: a bound, never reached on the small sample
SEGMENTS = [f"pnw.{f}.{v}" for f in ("large", "small") for v in ("fast", "slow")]
PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.(\w+)\s*\}\}")


def _base_env(connection: str) -> dict[str, str]:
    """A bare process environment: the job's PATH and storage sign-in, nothing of this test's."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "AZURE_STORAGE_CONNECTION_STRING": connection,
        "OTEL_SDK_DISABLED": "true",
    }


def component_command(name: str, inputs: dict[str, str], outputs: dict[str, str]) -> list[str]:
    """The shell command Azure ML runs for component `name`, its `${{...}}` substituted."""
    spec = yaml.safe_load((COMPONENTS / f"{name}.yml").read_text())
    assert set(spec["inputs"]) == set(inputs), f"{name}.yml declares {sorted(spec['inputs'])}"
    assert set(spec["outputs"]) == set(outputs)

    def value(match: re.Match[str]) -> str:
        return (inputs if match[1] == "inputs" else outputs)[match[2]]

    return ["bash", "-c", PLACEHOLDER.sub(value, spec["command"])]


def run_component(
    name: str, inputs: dict[str, str], outputs: dict[str, str], connection: str
) -> subprocess.CompletedProcess[str]:
    """Run component `name` as its node would: in the code snapshot, with its variables."""
    spec = yaml.safe_load((COMPONENTS / f"{name}.yml").read_text())
    code = (COMPONENTS / spec["code"]).resolve()
    assert code == ROOT, "the components' code is the repository (less .amlignore)"
    env = _base_env(connection) | {
        k: str(v) for k, v in spec.get("environment_variables", {}).items()
    }
    return subprocess.run(
        component_command(name, inputs, outputs),
        cwd=code, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip


@pytest.fixture
def cloud_lake(azure_lake_url: str, small_lake_template: Path) -> Lake:
    """An abfs:// lake on Azurite holding pnw's raw sample feeds (and the reference feeds)."""
    lake, local = Lake(azure_lake_url), Lake(str(small_lake_template))
    for f in local.list_files("raw"):
        if "region=tx" not in f:
            lake.write_bytes(f, local.read_bytes(f))
    return lake


@pytest.fixture
def workspace_registry(tmp_path: Path, small_lake_template: Path) -> str:
    """A separate MLflow tracking URI, outside the lake, as a workspace gives one."""
    store = tmp_path / "workspace" / "mlflow.db"
    store.parent.mkdir()
    shutil.copy(small_lake_template / "mlflow.db", store)  # an empty store, migrated once
    return f"sqlite:///{store}"


@pytest.mark.slow
def test_train_then_score_components_run_as_deployed(
    cloud_lake: Lake, workspace_registry: str, azurite: str, tmp_path: Path
) -> None:
    common = {"region": "pnw", "env": "dev", "lake": cloud_lake.url, "registry": workspace_registry}
    trained, scored = tmp_path / "train-out", tmp_path / "score-out"
    done = run_component("train", common, {"report": str(trained)}, azurite)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((trained / "report.json").read_text())
    assert (
        report["environment"] == "dev" and sorted(s["segment"] for s in _segs(report)) == SEGMENTS
    )

    inputs = common | {"trained": str(trained)}
    done = run_component("score", inputs, {"report": str(scored)}, azurite)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((scored / "report.json").read_text())
    forecasts = cloud_lake.read_csv(
        report["regions"]["pnw"]["paths"]["forecasts"] + "/forecasts.csv"
    )
    assert len(forecasts) > 0 and (forecasts["model"] == "ensemble").all()

    registry = Registry(workspace_registry)
    for segment in SEGMENTS:  # registered and promoted in the workspace's registry ...
        champion = registry.champion(model_name(segment))
        assert champion is not None and champion.tags["environment"] == "dev"
        assert registry.artefact(champion.tags["run_id"], "lineage.json")
    assert not [f for f in cloud_lake.list_files("") if "mlflow" in f]  # ... and not in the lake
    assert (
        Path(workspace_registry.removeprefix("sqlite:///")).parent / "mlflow-artifacts"
    ).is_dir()


def _segs(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s | {"segment": f"{s['region']}.{s['store_format']}.{s['velocity']}"}
        for s in report["segments"]
    ]


def test_score_waits_for_the_train_report(
    cloud_lake: Lake, workspace_registry: str, azurite: str, tmp_path: Path
) -> None:
    inputs = {"region": "pnw", "env": "dev", "lake": cloud_lake.url,
              "registry": workspace_registry, "trained": str(tmp_path / "missing")}  # fmt: skip
    done = run_component("score", inputs, {"report": str(tmp_path / "out")}, azurite)
    assert done.returncode != 0 and not (tmp_path / "out").exists()


def test_a_registry_in_an_abfs_lake_fails_in_one_line(
    cloud_lake: Lake, azurite: str, tmp_path: Path
) -> None:
    """What the components did before they passed the registry: a clear error, not a traceback."""
    inputs = {"region": "pnw", "env": "dev", "lake": cloud_lake.url,
              "registry": "sqlite:///{lake}/mlflow.db"}  # fmt: skip
    done = run_component("train", inputs, {"report": str(tmp_path / "out")}, azurite)
    assert done.returncode == 2
    assert done.stderr.startswith("demandops: error: invalid configuration")
    assert "needs a local lake" in done.stderr and "Traceback" not in done.stderr


# -- the Function App, called as the host calls it ---------------------------------------------
HOST_CALL = """
import json, sys
import azure.functions as func
import function_app
functions = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
plan, raw = json.loads(sys.argv[1]), sys.argv[2]
prepared = functions["prepare_run"](plan)
blob = func.blob.InputStream(name="lake/" + raw, data=b"", length=0, uri="")
functions["raw_arrived"](blob)
print(json.dumps(prepared))
"""


def app_settings(lake: str) -> dict[str, str]:
    """The Function App's settings as infra/main.bicep sets them, for a dev deployment with its
    lake at `lake` (tests/test_delivery_infra.py checks that the names are Bicep's)."""
    return {
        "DEMANDOPS_ENV": "dev",
        "DEMANDOPS_LAKE": lake,
        "DEMANDOPS_COMPUTE": "azureml",
        "DEMANDOPS_REGISTRY_URI": "azureml",
        "AZURE_ML_SUBSCRIPTION_ID": "5f1c2e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
        "AZURE_ML_RESOURCE_GROUP": "demandops-dev-rg",
        "AZURE_ML_WORKSPACE": "demandops-dev-mlw",
        "AZURE_ML_LOCATION": "westeurope",
        "AZURE_ML_COMPUTE": "cpu-cluster",
        "AZURE_ML_ENVIRONMENT": "azureml:demandops:3kq2wz7rjyfpa",
        "LakeStorage__blobServiceUri": "https://demandopsdevlake.blob.core.windows.net/",
        "LakeStorage__queueServiceUri": "https://demandopsdevlake.queue.core.windows.net/",
        "LakeStorage__credential": "managedidentity",
    }


def test_function_app_activities_run_with_the_deployed_settings(
    cloud_lake: Lake, azurite: str
) -> None:
    raw = next(f for f in cloud_lake.list_files("raw/shipments") if "region=pnw" in f)
    plan = {"regions": ["pnw"], "pipeline": "weekly", "as_of": None}
    env = _base_env(azurite) | app_settings(cloud_lake.url)
    done = subprocess.run(
        [sys.executable, "-c", HOST_CALL, json.dumps(plan), raw],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    prepared = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("stores", "products", "shoppers", "weather", "events"):
        assert cloud_lake.dataset(prepared[name]) is not None, name
    shipments = cloud_lake.list_files("conditioned/shipments/region=pnw")
    assert any(f.endswith("manifest.json") for f in shipments)  # the blob trigger conditioned it


# -- the environment the jobs run in -------------------------------------------------------------
def _imports(folder: Path) -> set[str]:
    """Top-level modules imported anywhere under `folder`, but in NOT_JOB_CODE."""
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        if path.is_relative_to(NOT_JOB_CODE):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def _pinned() -> set[str]:
    lines = CONSTRAINTS.read_text().splitlines()
    return {
        re.split(r"[=<>!~\[ ]", line)[0].lower().replace("_", "-")
        for line in lines
        if line.strip() and not line.startswith("#")
    }


def test_constraints_pin_every_library_the_jobs_import() -> None:
    """Building an environment from conda.yml takes too long for CI here (and needs Azure):
    instead every third-party import of the code the components run must be pinned."""
    stdlib = set(sys.stdlib_module_names)
    ours = {*JOB_CODE, "tests"}
    distributions = packages_distributions()
    modules = set().union(*(_imports(ROOT / d) for d in JOB_CODE)) - stdlib - ours
    assert modules, "no imports found"
    missing = {}
    for module in sorted(modules):
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        assert dists, f"{module} is imported but not installed"
        if not dists & _pinned():
            missing[module] = sorted(dists)
    assert not missing, f"imported by the jobs but not pinned in {CONSTRAINTS.name}: {missing}"


def test_the_workspace_registry_scheme_is_installed() -> None:
    """`registry_uri: azureml` resolves to an `azureml://` tracking URI: MLflow needs the
    azureml-mlflow plugin for it (pinned for the jobs), registered without any network call."""
    for group in ("mlflow.tracking_store", "mlflow.model_registry_store"):
        assert "azureml" in {e.name for e in entry_points(group=group)}, group
    assert "azureml-mlflow" in _pinned()
