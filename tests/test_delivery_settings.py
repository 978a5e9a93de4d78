"""Every binding and setting the code reads exists in infra/: the Function App's bindings (read
from the app's registered functions) have their connection settings and role assignments, every
environment variable the code reads is an app setting in the Bicep (or is optional, with a
default, and listed here with its reason), and every app setting is read by someone."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from demandops.cli import models as models_cli
from demandops.core import settings, telemetry
from tests.test_delivery_infra import INFRA, ROOT, _main, _module, parse
from tests.test_deployed_commands import app_settings
from tests.test_function_app import FUNCTIONS

CODE = ("demandops", "ml", "conditioners", "functions", "function_app.py")
# read, but never set by infra/: each has a default that is right in Azure
OPTIONAL = {
    "DEMANDOPS_CONFIG": "the config/ folder packaged with the app",
    telemetry.MODE_ENV: "azure when APPLICATIONINSIGHTS_CONNECTION_STRING is set",
    settings.AML_TRACKING_ENV: "set by Azure ML on a job's node, not by the Function App",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "the CLI turns MLflow's bars off unless it is set",
}
# read only to redact their values from messages (never set: identities, no keys)
REDACTED = set(telemetry.SECRET_ENV) - {telemetry.CONNECTION_ENV}
# the online endpoint's scoring script runs in its deployment, which sets its variables
ENDPOINT_SETTINGS = set(
    yaml.safe_load((ROOT / "ml" / "endpoint" / "deployment.yml").read_text())[
        "environment_variables"
    ]
)
# reads of a variable name that is not a literal: the names each such function reads
DYNAMIC = {
    ("demandops.core.settings", "_overridden"): set(settings.OVERRIDES),
    ("demandops.core.telemetry", "_secret_values"): set(telemetry.SECRET_ENV),
    ("demandops.cli.models", "_target"): set(models_cli.SOURCE_ONLY),
}
# settings read by the Functions host and its extensions rather than by our code
HOST = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "AzureFunctionsJobHost__extensions__durableTask__hubName",
}


def bicep_app_settings() -> dict[str, Any]:
    """The Function App's app settings: functionapp.bicep's base ones and main.bicep's."""
    module = parse(INFRA / "modules" / "functionapp.bicep")
    _, passed = _module(_main(), "functionApp")
    return {**module["variables"]["baseSettings"]["value"], **passed["appSettings"]}


def _python_files() -> Iterator[Path]:
    for entry in CODE:
        path = ROOT / entry
        yield from [path] if path.is_file() else sorted(path.rglob("*.py"))


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _env_reads(tree: ast.AST) -> Iterator[tuple[ast.expr, str]]:
    """(the name expression, the innermost enclosing function) of every environment read."""
    where: dict[int, str] = {}
    for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):  # outer first
        for node in ast.walk(func):
            where[id(node)] = func.name
    for node in ast.walk(tree):
        function = where.get(id(node), "<module>")
        if isinstance(node, ast.Call) and _is_read(node.func) and node.args:
            yield node.args[0], function
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and ast.unparse(node.value) == "os.environ"
        ):
            yield node.slice, function


def _is_read(func: ast.expr) -> bool:
    text = ast.unparse(func)
    return text in {"os.getenv", "os.environ.get", "os.environ.pop", "os.environ.setdefault"}


def env_vars_read() -> dict[str, str]:
    """Every environment variable the code reads → where (module.function)."""
    found: dict[str, str] = {}
    for path in _python_files():
        module = _module_name(path)
        for arg, function in _env_reads(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{module}.{function}"
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.setdefault(arg.value, where)
                continue
            value = getattr(importlib.import_module(module), ast.unparse(arg), None)
            if isinstance(value, str):  # a module-level constant
                found.setdefault(value, where)
            elif (module, function) in DYNAMIC:
                for name in DYNAMIC[module, function]:
                    found.setdefault(name, where)
            elif function != "_configure_azure":  # it only sets defaults (AZURE_ENV_DEFAULTS)
                pytest.fail(f"{where} reads the environment variable {ast.unparse(arg)}: list it")
    return found


def test_every_environment_variable_the_code_reads_is_an_app_setting() -> None:
    read = env_vars_read()
    assert {"DEMANDOPS_LAKE", "DEMANDOPS_ENV", telemetry.CONNECTION_ENV} <= set(read)  # the scan
    app = bicep_app_settings()
    missing = {
        name: where
        for name, where in read.items()
        if name not in app
        and name not in OPTIONAL
        and name not in REDACTED
        and not (where.startswith("ml.endpoint.") and name in ENDPOINT_SETTINGS)
    }
    assert not missing, f"read by the code but set nowhere in infra/: {missing}"


def test_every_app_setting_is_read_by_the_code_or_the_host() -> None:
    read = set(env_vars_read())
    bindings = {f"{c}__" for c in _connections()}
    unread = [
        name
        for name in bicep_app_settings()
        if name not in read and name not in HOST and not name.startswith(tuple(bindings))
    ]
    assert not unread, f"app settings nothing reads: {unread}"


def test_the_tested_app_settings_are_the_deployed_ones() -> None:
    """tests/test_deployed_commands.py runs the app with exactly the settings Bicep gives it."""
    deployed = set(bicep_app_settings()) - HOST - {telemetry.CONNECTION_ENV}
    assert set(app_settings("abfs://lake")) == deployed


def _connections() -> dict[str, dict[str, Any]]:
    """Each binding connection the app's functions name → the binding."""
    found = {}
    for function in FUNCTIONS:
        for binding in function.get_bindings():
            spec = binding.get_dict_repr()
            if spec.get("connection"):
                found[spec["connection"]] = spec
    return found


def test_every_binding_connection_is_set_with_an_identity() -> None:
    connections = _connections()
    assert set(connections) == {"LakeStorage"}  # functions/blob_arrival.py
    app = bicep_app_settings()
    for name, binding in connections.items():
        assert f"{name}__credential" in app and app[f"{name}__credential"] == "managedidentity"
        assert name not in app, f"{name}: a connection string (a key); use the identity"
        assert f"{name}__blobServiceUri" in app
        if binding["type"] == "blobTrigger":  # blob receipts and poison messages use queues
            assert f"{name}__queueServiceUri" in app


def test_the_blob_trigger_identity_has_its_documented_roles() -> None:
    """Blob trigger on an identity: Storage Blob Data Owner and Storage Queue Data Contributor
    on the account (learn.microsoft.com/azure/azure-functions/functions-bindings-storage-blob-
    trigger#grant-permission-to-the-identity)."""
    roles = parse(INFRA / "modules" / "roles.bicep")
    lake = {
        (g["principalId"], g["role"]["operator"]["operands"]["operand_2"])
        for g in roles["variables"]["lakeGrants"]["value"]
    }
    assert ("functionAppPrincipalId", "storageBlobDataOwner") in lake
    assert ("functionAppPrincipalId", "storageQueueDataContributor") in lake


def test_every_durable_binding_has_its_task_hub() -> None:
    kinds = {b.get_dict_repr()["type"] for f in FUNCTIONS for b in f.get_bindings()}
    assert {"orchestrationTrigger", "activityTrigger", "durableClient"} <= kinds
    assert "AzureFunctionsJobHost__extensions__durableTask__hubName" in bicep_app_settings()


def test_the_jobs_identity_can_reach_the_lake_and_the_registry() -> None:
    """The components run as the compute cluster's identity: it writes the lake and, through the
    workspace's MLflow endpoint, the registry."""
    roles = parse(INFRA / "modules" / "roles.bicep")

    def grants(var: str) -> set[tuple[str, str]]:
        value = roles["variables"][var]["value"]
        return {(g["principalId"], g["role"]["operator"]["operands"]["operand_2"]) for g in value}

    assert ("amlComputePrincipalId", "storageBlobDataContributor") in grants("lakeGrants")
    assert ("amlComputePrincipalId", "azureMLDataScientist") in grants("workspaceGrants")
    aml = parse(INFRA / "modules" / "aml.bicep")
    assert {"environmentName", "environmentVersion", "computeName"} <= set(aml["outputs"])


def test_the_data_factory_trigger_watches_this_deployments_lake() -> None:
    factory = parse(INFRA / "modules" / "datafactory.bicep")
    loaded = {
        name: var["value"]["function"]["parameters"]["file_path"]
        for name, var in factory["variables"].items()
        if isinstance(var["value"], dict) and "function" in var["value"]
    }
    adf = {(INFRA / "modules" / p).resolve() for p in loaded.values()}
    assert adf == set((ROOT / "adf").glob("pipeline/*.json")) | set(
        (ROOT / "adf").glob("trigger/*.json")
    )
    arrival = factory["resources"]["arrival"]["config"]["properties"]["function"]["parameters"]
    assert arrival["arg_2"]["typeProperties"]["function"]["parameters"]["arg_2"] == {
        "scope": "lakeId"
    }
