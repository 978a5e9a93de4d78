"""Infrastructure as code, checked offline: no Bicep compiler installs on this machine (it is a
.NET binary fetched from GitHub), so every infra/*.bicep file is parsed with pycep-parser, a Bicep
grammar in Python, and the parsed templates are checked for what a deployment relies on."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycep import BicepParser

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
BICEP = sorted(INFRA.rglob("*.bicep"))
PARAMETER_FILES = sorted((INFRA / "parameters").glob("*.json"))
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DASHED = re.compile(r"^\$\{prefix\}-\$\{env\}-[a-z]+$")  # '${prefix}-${env}-<kind>'
PLAIN = re.compile(r"^\$\{prefix\}\$\{env\}[a-z]+$")  # storage accounts: no dashes allowed
ROLE = {
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
}


@cache
def parse(path: Path) -> dict[str, Any]:
    tree: Mapping[str, Any] = BicepParser().parse(file_path=path)  # read as plain JSON
    assert isinstance(tree, dict)
    return tree


def _tokens(node: Any) -> set[str]:
    """Identifiers in every value (never a property name) of a parsed template fragment."""
    if isinstance(node, str):
        return set(IDENTIFIER.findall(node))
    if isinstance(node, dict):
        return set().union(*(_tokens(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_tokens(v) for v in node))
    return set()


def _module(main: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    module = main["modules"][name]
    return parse(INFRA / module["detail"]["path"]), module["config"]["params"]


def _resources(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each resource's own config (a loop's body for a `for` resource)."""
    out = {}
    for name, res in tree.get("resources", {}).items():
        config = res["config"]
        out[name] = {**res, "body": config["config"] if "loop_type" in config else config}
    return out


def _main() -> dict[str, Any]:
    return parse(INFRA / "main.bicep")


def test_every_bicep_file_parses() -> None:
    assert {p.name for p in BICEP} >= {
        "main.bicep", "storage.bicep", "functionapp.bicep", "aml.bicep", "datafactory.bicep",
        "keyvault.bicep", "monitoring.bicep", "roles.bicep",
    }  # fmt: skip
    for path in BICEP:
        assert parse(path)["globals"]["scope"]["value"] == "resourceGroup", path


def test_a_syntax_error_is_caught_by_the_parser(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bicep"
    bad.write_text("param prefix string\nresource x 'Microsoft.Storage/storageAccounts' = {\n")
    with pytest.raises(Exception):  # noqa: B017  # the parser's own error type varies by version
        BicepParser().parse(file_path=bad)


@pytest.mark.parametrize("path", BICEP, ids=lambda p: p.name)
def test_every_param_is_used(path: Path) -> None:
    tree = parse(path)
    for name in tree.get("parameters", {}):
        rest = {k: v for k, v in tree.items() if k != "parameters"}
        others = {k: v for k, v in tree["parameters"].items() if k != name}
        assert name in _tokens(rest) | _tokens(others), f"{path.name}: param {name} is never used"


def test_modules_get_exactly_their_params() -> None:
    main = _main()
    assert set(main["modules"]) == {
        "monitoring", "storage", "keyVault", "aml", "functionApp", "dataFactory", "roles",
    }  # fmt: skip
    for name in main["modules"]:
        module, passed = _module(main, name)
        declared = module["parameters"]
        assert set(passed) <= set(declared), f"{name}: unknown params {set(passed) - set(declared)}"
        required = {p for p, d in declared.items() if d["default"] is None}
        assert required <= set(passed), f"{name}: missing params {required - set(passed)}"


def test_every_resource_name_follows_the_convention() -> None:
    main = _main()
    names = main["variables"]["names"]["value"]
    for key, pattern in names.items():
        rule = PLAIN if key.endswith("Storage") else DASHED
        assert rule.match(pattern), f"names.{key} = {pattern!r} breaks the naming convention"
    assert len(set(names.values())) == len(names)
    named = 0
    for module_name in main["modules"]:
        module, passed = _module(main, module_name)
        for res_name, res in _resources(module).items():
            body = res["body"]
            if res["existing"] or "parent" in body or res["type"].endswith("roleAssignments"):
                continue
            param = body["name"]
            assert param in module["parameters"] and param.endswith("Name"), (module_name, res_name)
            value = passed[param]
            assert value["operator"]["operands"]["operand_1"] == "names", (module_name, param)
            named += 1
    assert named == len(names)  # every named resource is created once, by one module


def test_parameter_files_set_only_declared_params() -> None:
    declared = _main()["parameters"]
    required = {p for p, d in declared.items() if d["default"] is None}
    assert {p.stem for p in PARAMETER_FILES} == {"dev", "prod"}
    for path in PARAMETER_FILES:
        values = {k: v["value"] for k, v in json.loads(path.read_text())["parameters"].items()}
        assert set(values) <= set(declared), f"{path.name}: {set(values) - set(declared)}"
        assert required <= set(values), f"{path.name} lacks {required - set(values)}"
        assert values["env"] == path.stem
        for name, value in values.items():
            for deco in declared[name]["decorators"]:
                if deco["type"] == "allowed":
                    assert value in deco["argument"], f"{path.name}: {name}={value!r}"
        prefix = values["prefix"]
        assert re.fullmatch(r"[a-z0-9]{3,11}", prefix), prefix
        assert len(f"{prefix}{path.stem}lake") <= 24  # storage account names: 3..24 characters


def test_prod_config_points_at_the_lake_the_infra_creates() -> None:
    values = json.loads((INFRA / "parameters" / "prod.json").read_text())["parameters"]
    account = f"{values['prefix']['value']}prodlake"
    prod = yaml.safe_load((ROOT / "config" / "environments" / "prod.yaml").read_text())
    assert prod["lake"] == f"abfs://lake@{account}.dfs.core.windows.net"


def test_no_keys_anywhere() -> None:
    for path in BICEP:
        text = path.read_text()
        for banned in ("listKeys", "listkeys", "AccountKey", "primaryKey", "connectionString("):
            assert banned not in text, f"{path.name} uses {banned}"
    for res in _resources(parse(INFRA / "modules" / "storage.bicep")).values():
        if res["type"] == "Microsoft.Storage/storageAccounts":
            assert res["body"]["properties"]["allowSharedKeyAccess"] is False


def test_function_app_settings_use_identities() -> None:
    module = parse(INFRA / "modules" / "functionapp.bicep")
    settings = module["variables"]["baseSettings"]["value"]
    assert settings["AzureWebJobsStorage__accountName"] == "runtimeStorageName"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert "AzureWebJobsStorage" not in settings
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"
    assert "AzureFunctionsJobHost__extensions__durableTask__hubName" in settings
    _, passed = _module(_main(), "functionApp")
    assert {"DEMANDOPS_ENV", "DEMANDOPS_LAKE", "AZURE_ML_WORKSPACE"} <= set(passed["appSettings"])
    site = _resources(module)["site"]["body"]
    assert site["identity"]["type"] == "SystemAssigned"
    deployment = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"]["type"] == "SystemAssignedIdentity"
    assert site["properties"]["functionAppConfig"]["runtime"] == {
        "name": "python",
        "version": "3.11",
    }


def test_lake_is_adls_gen2_with_its_containers() -> None:
    storage = _resources(parse(INFRA / "modules" / "storage.bicep"))
    assert storage["lake"]["body"]["properties"]["isHnsEnabled"] is True
    assert storage["containers"]["config"]["loop_type"]["detail"]["array_name"] == "lakeContainers"
    default = _main()["parameters"]["lakeContainers"]["default"]
    assert default == ["lake"]


def test_monitoring_key_vault_and_aml() -> None:
    monitoring = _resources(parse(INFRA / "modules" / "monitoring.bicep"))
    assert monitoring["appInsights"]["body"]["properties"]["WorkspaceResourceId"] == {
        "operator": {
            "type": "property_accessor",
            "operands": {"operand_1": "logs", "operand_2": "id"},
        }
    }
    vault = _resources(parse(INFRA / "modules" / "keyvault.bicep"))["vault"]["body"]
    assert vault["properties"]["enableRbacAuthorization"] is True
    aml = parse(INFRA / "modules" / "aml.bicep")
    loaded = aml["variables"]["condaFile"]["value"]["function"]["parameters"]["file_path"]
    assert (INFRA / "modules" / loaded).resolve() == ROOT / "ml" / "environment" / "conda.yml"
    resources = _resources(aml)
    assert resources["compute"]["body"]["name"] == "cpu-cluster"  # scripts/aml_jobs.py's default
    assert resources["compute"]["body"]["identity"]["type"] == "SystemAssigned"
    assert resources["workspace"]["body"]["properties"]["systemDatastoresAuthMode"] == "identity"


def test_data_factory_links_authenticate_as_its_identity() -> None:
    factory = _resources(parse(INFRA / "modules" / "datafactory.bicep"))
    assert factory["factory"]["body"]["identity"]["type"] == "SystemAssigned"
    links = {n: r["body"] for n, r in factory.items() if r["type"].endswith("/linkedservices")}
    types = {b["properties"]["type"] for b in links.values()}
    assert types == {"AzureKeyVault", "AzureBlobFS", "AzureMLService", "AzureFunction"}
    for body in links.values():
        props = body["properties"]["typeProperties"]
        assert not {"accountKey", "servicePrincipalKey", "connectionString"} & set(props)
    key = links["functionLink"]["properties"]["typeProperties"]["functionKey"]
    assert key["type"] == "AzureKeyVaultSecret"


def test_least_privilege_role_assignments() -> None:
    roles = parse(INFRA / "modules" / "roles.bicep")
    ids = roles["variables"]["role"]["value"]
    for name, guid in ROLE.items():
        assert ids[name] == guid
    assert "owner" not in {k.lower() for k in ids} and "contributor" not in {k.lower() for k in ids}

    def grants(var: str) -> set[tuple[str, str]]:
        value = roles["variables"][var]["value"]
        return {(g["principalId"], g["role"]["operator"]["operands"]["operand_2"]) for g in value}

    lake = grants("lakeGrants")
    for principal in ("amlComputePrincipalId", "dataFactoryPrincipalId"):
        assert (principal, "storageBlobDataContributor") in lake
    assert ("functionAppPrincipalId", "storageBlobDataOwner") in lake  # its blob trigger
    assert grants("runtimeGrants") == {
        ("functionAppPrincipalId", "storageBlobDataOwner"),
        ("functionAppPrincipalId", "storageQueueDataContributor"),
        ("functionAppPrincipalId", "storageTableDataContributor"),
    }
    assert ("dataFactoryPrincipalId", "keyVaultSecretsUser") in grants("vaultGrants")
    for res in _resources(roles).values():
        if res["type"] == "Microsoft.Authorization/roleAssignments":
            assert res["body"]["properties"]["principalType"] == "ServicePrincipal"
            assert res["body"]["scope"] in {"lake", "runtime", "vault", "appInsights", "workspace"}
