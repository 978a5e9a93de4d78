"""The Azure ML backend: job specs built from ml/components/*.yml and validated offline; submission,
status polling and cancellation through the real `MLClient`, with a fake credential and Azure's
control plane served at the HTTP layer (azure-core RequestsTransport, a mounted adapter)."""

from __future__ import annotations

import copy
import io
import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import urllib3
from azure.ai.ml import MLClient, load_component
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import BaseAdapter

from demandops.cli import build_parser
from demandops.core.errors import ConfigError
from demandops.core.settings import Settings, load_settings
from demandops.pipeline.compute import RegionJob
from demandops.pipeline.compute.azureml import COMPONENTS, AzureMLBackend, build_pipeline, job_name

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION = "5f1c2e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
WS = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/demandops-prod-rg"
    "/providers/Microsoft.MachineLearningServices/workspaces/demandops-prod-mlw"
)


@pytest.fixture
def prod(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The project's prod environment, its subscription given as the Function App gives it."""
    monkeypatch.setenv("AZURE_ML_SUBSCRIPTION_ID", SUBSCRIPTION)
    return load_settings(ROOT / "config", "prod")


class FakeCredential:
    """Returns an unsigned token with the audience asked for (the SDK reads its claims)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        expires = int(time.time()) + 3600
        claims = {"aud": scopes[0].removesuffix("/.default"), "tid": "tenant", "exp": expires}
        return AccessToken(jwt.encode(claims, "k" * 32, algorithm="HS256"), expires)


class Workspace(BaseAdapter):
    """Azure ML's REST API for one workspace: components, jobs and their status."""

    def __init__(self, statuses: list[str], by_region: dict[str, list[str]] | None = None) -> None:
        super().__init__()
        self.statuses = statuses
        self.by_region = by_region or {}
        self.calls: list[tuple[str, str]] = []
        self.jobs: dict[str, dict[str, Any]] = {}

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        path = request.url.split("management.azure.com", 1)[1].split("?")[0]
        self.calls.append((request.method, path.replace(WS, "")))
        status, body = self._answer(request.method, path, request.body)
        data = json.dumps(body).encode()
        response = requests.Response()
        response.status_code = status
        response.headers["Content-Type"] = "application/json"
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(data), preload_content=False, status=status,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        response.request, response.url = request, request.url
        return response

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == WS:
            return 200, {"id": WS, "name": "demandops-prod-mlw", "location": "westeurope"}
        name = path.rsplit("/", 1)[-1]
        if method == "GET" and "/codes/" in path:  # the code snapshot, uploaded before
            return 200, self._code(path)
        if method == "PUT":  # create or update: echo the resource with its id
            resource = json.loads(body) | {"id": path, "name": name}
            if "/jobs/" in path:
                resource["properties"]["status"] = "NotStarted"
                resource["properties"]["services"] = {
                    "Studio": {"endpoint": f"https://ml.azure.com/runs/{name}"}
                }
                self.jobs[name] = resource
            return 201, resource
        if method == "GET" and "/jobs/" in path and name in self.jobs:
            job = self.jobs[name]
            region = job["properties"]["tags"]["region"]
            queue = self.by_region.get(region, self.statuses)
            job["properties"]["status"] = queue.pop(0) if queue else "Completed"
            return 200, job
        if method == "POST" and path.endswith("/cancel"):
            return 200, {}
        return 404, {"error": {"code": "NotFound", "message": f"{method} {path}"}}

    def _code(self, path: str) -> dict[str, Any]:
        """The components' code (the repository) as a snapshot the workspace already holds,
        found by its content hash: the SDK then uploads nothing."""
        asset = path.split("/codes/", 1)[1].split("/")[0]
        version = {
            "id": f"{WS}/codes/{asset}/versions/1",
            "name": "1",
            "properties": {
                "codeUri": f"https://demandopsprodaml.blob.core.windows.net/code/{asset}",
                "isAnonymous": True,
            },
        }
        return version if path.endswith("/versions/1") else {"value": [version]}

    def close(self) -> None:
        pass


def _backend(prod: Settings, workspace: Workspace) -> AzureMLBackend:
    """The backend on a real MLClient whose HTTP requests `workspace` answers."""
    session = requests.Session()
    session.mount("https://", workspace)
    ws = prod.environment.azureml
    assert ws is not None
    client = MLClient(
        FakeCredential(), ws.subscription_id, ws.resource_group, ws.workspace,
        transport=RequestsTransport(session=session),
    )  # fmt: skip
    return AzureMLBackend(client, prod)


JOB = RegionJob(run="20261123T060000Z-ab12cd34", region="pnw", pipeline="weekly")


@pytest.fixture(scope="module")
def submitted() -> dict[str, Any]:
    """JOB as the workspace holds it once submitted (submitting hashes the code snapshot, which
    walks the whole working tree: seconds, so once per module)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AZURE_ML_SUBSCRIPTION_ID", SUBSCRIPTION)
        workspace = Workspace(statuses=[])
        _backend(load_settings(ROOT / "config", "prod"), workspace).submit(JOB)
    return workspace.jobs[job_name(JOB)]


def test_submit_creates_the_components_and_one_pipeline_job(prod: Settings) -> None:
    workspace = Workspace(statuses=["Running", "Completed"])
    backend = _backend(prod, workspace)
    run_id = backend.submit(JOB)
    assert run_id == job_name(JOB) == "demandops-20261123t060000z-ab12cd34-pnw"
    puts = [p for m, p in workspace.calls if m == "PUT"]
    assert sum("/components/" in p for p in puts) == 2 and puts[-1] == f"/jobs/{run_id}"

    spec = workspace.jobs[run_id]["properties"]
    assert spec["jobType"] == "Pipeline"
    assert spec["settings"]["default_compute"].endswith("/computes/cpu-cluster")
    assert spec["tags"] == {"region": "pnw", "run": JOB.run, "pipeline": "weekly"}
    assert set(spec["jobs"]) == {"trained", "scored"}
    scored = spec["jobs"]["scored"]
    assert scored["inputs"]["trained"]["value"] == "${{parent.jobs.trained.outputs.report}}"
    assert scored["inputs"]["region"]["value"] == "${{parent.inputs.region}}"
    assert spec["inputs"]["region"]["value"] == "pnw"
    assert spec["inputs"]["lake"]["value"] == prod.environment.lake

    assert backend.status(run_id).state == "Running"
    assert backend.status(run_id).state == "Completed"
    assert backend.outputs(run_id)["studio_url"].startswith(f"https://ml.azure.com/runs/{run_id}")
    backend.cancel(run_id)
    assert ("POST", f"/jobs/{run_id}/cancel") in workspace.calls


@pytest.mark.parametrize(
    ("status", "state"),
    [("Queued", "Queued"), ("Preparing", "Queued"), ("Finalizing", "Running"),
     ("Failed", "Failed"), ("Canceled", "Canceled")],
)  # fmt: skip
def test_azure_ml_statuses_map_to_run_states(
    prod: Settings, submitted: dict[str, Any], status: str, state: str
) -> None:
    workspace = Workspace(statuses=[status])
    run_id = job_name(JOB)
    workspace.jobs[run_id] = copy.deepcopy(submitted)
    result = _backend(prod, workspace).status(run_id)
    assert result.state == state
    assert (status in result.detail) == (state not in ("Queued", "Running"))


def test_unknown_job_is_an_error(prod: Settings) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError):
        _backend(prod, Workspace([])).status("demandops-nope")


@pytest.mark.parametrize(
    ("pipeline", "nodes"), [("train", {"trained"}), ("score", {"trained", "scored"})]
)
def test_job_specs_validate_offline(prod: Settings, pipeline: str, nodes: set[str]) -> None:
    ws = prod.environment.azureml
    assert ws is not None
    env = prod.environment
    job = build_pipeline(RegionJob(run="r", region="tx", pipeline=pipeline), env, ws)
    assert job._validate().passed
    assert set(job.jobs) == nodes
    assert job.settings is not None and job.settings.default_compute == "cpu-cluster"
    assert all(node.component.environment == ws.environment for node in job.jobs.values())
    assert job.identity is not None and job.identity.type == "managed_identity"
    registry = f"azureml://westeurope.api.azureml.ms/mlflow/v1.0{WS}"
    wanted = {"region": "tx", "env": "prod", "lake": env.lake, "registry": registry}
    assert {k: v for k, v in job._to_dict()["inputs"].items()} == wanted


def test_a_registry_in_the_lake_cannot_be_given_to_a_job(prod: Settings) -> None:
    env = prod.environment.model_copy(update={"registry_uri": "sqlite:///{lake}/mlflow.db"})
    assert env.azureml is not None
    with pytest.raises(ConfigError, match="an Azure ML job cannot share"):
        build_pipeline(RegionJob(run="r", region="tx", pipeline="train"), env, env.azureml)


def test_conditioning_is_not_an_azure_ml_job(prod: Settings) -> None:
    assert prod.environment.azureml is not None
    with pytest.raises(ValueError, match="conditioning runs in the Function App"):
        build_pipeline(
            RegionJob(run="r", region="tx", pipeline="condition"),
            prod.environment,
            prod.environment.azureml,
        )


@pytest.mark.parametrize("name", ["train", "score"])
def test_component_commands_are_valid_demandops_commands(name: str) -> None:
    component: Any = load_component(source=COMPONENTS / f"{name}.yml")
    assert component._validate().passed
    command = re.sub(r"\$\{\{[^}]+\}\}", "X", component.command)
    argv = shlex.split(command.split("&&")[-1])
    assert argv[:3] == ["python", "-m", "demandops.cli"]
    args = build_parser().parse_args(argv[3:])
    assert args.command == name and args.local and args.region == ["X"] and args.lake == "X"
    assert args.env == "X" and args.registry_uri == "X"


def test_the_orchestration_drives_azure_ml_jobs(
    settings: Settings, small_lake: Any, prod: Settings
) -> None:
    """The same orchestration as `demandops run`, with every region an Azure ML pipeline job."""
    from demandops.pipeline.activities import plan_run
    from demandops.pipeline.batch import orchestrate

    cloud = settings.model_copy(
        update={"environment": settings.environment.model_copy(
            update={"compute": "azureml", "azureml": prod.environment.azureml,
                    "registry_uri": "azureml"}
        )}
    )  # fmt: skip
    workspace = Workspace([], {"pnw": ["Queued", "Running", "Completed"], "tx": ["Failed"]})
    backend = _backend(cloud, workspace)
    outcome = orchestrate(cloud, plan_run(cloud, ["pnw", "tx"], "weekly"), backend, "az1")
    pnw, tx = outcome["regions"]["pnw"], outcome["regions"]["tx"]
    assert pnw["state"] == "Completed" and pnw["polls"] == 3
    assert pnw["outputs"]["job"] == pnw["run_id"] == "demandops-az1-pnw"
    assert tx["state"] == "Failed" and tx["error"] == "Azure ML job demandops-az1-tx: Failed"
    assert outcome["failed"] == ["tx"]
    submitted = [p for m, p in workspace.calls if m == "PUT" and "/jobs/" in p]
    first_poll = next(i for i, (m, p) in enumerate(workspace.calls) if m == "GET" and "/jobs/" in p)
    assert len(submitted) == 2 and all(  # both regions were submitted before any was polled
        workspace.calls.index(("PUT", p)) < first_poll for p in submitted
    )
