"""Delivery scripts: model validation checks, reproducible packages, Azure ML jobs built offline."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
import yaml
from azure.ai.ml import MLClient, load_job
from azure.ai.ml.entities import PipelineJob
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter

from scripts import aml_jobs, package, validate_model

ROOT = Path(__file__).resolve().parent.parent
LAKE = "abfs://lake@demandopsdevst.dfs.core.windows.net"


def _report() -> dict[str, Any]:
    segment = {
        "region": "pnw", "store_format": "large", "velocity": "fast", "n_rows": 384,
        "model": "lasso", "mape": 0.25, "wape": 0.28, "rmse": 24.9, "rmse0": None, "bias": 0.01,
        "baseline_mape": 0.31, "baseline_wape": 0.33,
    }  # fmt: skip
    return {
        "regions": {"pnw": {"paths": {"forecasts": "forecasts/as_of=2026-01-05/region=pnw"}}},
        "segments": [segment],
        "overall": {"lasso": {"wape": 0.29}, "hist_avg": {"wape": 0.40}},
    }


def test_a_healthy_report_passes() -> None:
    assert validate_model.check_report(_report(), ["pnw"]) == []


@pytest.mark.parametrize(
    ("break_it", "problem"),
    [
        (lambda r: r["segments"][0].update(mape=float("nan")), "pnw.large.fast: mape is nan"),
        (lambda r: r["segments"][0].update(wape=None), "pnw.large.fast: wape is None"),
        (lambda r: r["segments"][0].update(rmse=float("inf")), "rmse is inf"),
        (lambda r: r["segments"][0].update(n_rows=0), "no holdout rows"),
        (lambda r: r["regions"]["pnw"]["paths"].clear(), "region pnw: no forecasts"),
        (lambda r: r["segments"].clear(), "region pnw: no segment"),
        (lambda r: r["overall"]["lasso"].update(wape=0.41), "WAPE 0.410 is not below"),
        (lambda r: r["overall"].pop("hist_avg"), "lack a model or the hist_avg baseline"),
    ],
)
def test_each_broken_report_is_named(break_it: Any, problem: str) -> None:
    report = copy.deepcopy(_report())
    break_it(report)
    problems = validate_model.check_report(report, ["pnw"])
    assert any(problem in p for p in problems), problems


def test_package_is_reproducible_and_complete(tmp_path: Path) -> None:
    assert package.main(["--out", str(tmp_path / "a")]) == 0
    assert package.main(["--out", str(tmp_path / "b")]) == 0
    for name in package.ARTEFACTS:
        first, second = (tmp_path / d / name for d in "ab")
        assert hashlib.sha256(first.read_bytes()).digest() == (
            hashlib.sha256(second.read_bytes()).digest()
        )
    with zipfile.ZipFile(tmp_path / "a" / "functionapp.zip") as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert {"function_app.py", "host.json", "requirements.txt"} <= set(names)
        for folder in ("functions/", "demandops/", "conditioners/", "ml/", "config/"):
            assert any(n.startswith(folder) for n in names), folder
        assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", ".venv"))]
        assert zf.read("host.json") == (ROOT / "host.json").read_bytes()
        assert {i.date_time for i in zf.infolist()} == {package.EPOCH}
    with zipfile.ZipFile(tmp_path / "a" / "aml.zip") as zf:
        assert {"ml/environment/conda.yml", "scripts/aml_jobs.py", "pyproject.toml"} <= set(
            zf.namelist()
        )


def test_function_app_zip_indexes_from_its_own_contents(tmp_path: Path) -> None:
    """Unpacked alone, the zip's function_app.py imports and registers its functions."""
    assert package.main(["--out", str(tmp_path)]) == 0
    app = tmp_path / "app"
    with zipfile.ZipFile(tmp_path / "functionapp.zip") as zf:
        zf.extractall(app)
    probe = (
        "import sys; sys.path.insert(0, '.'); import function_app, demandops;"
        "assert demandops.__file__.startswith(sys.path[0] or '.') or 'app' in demandops.__file__;"
        "print(len(function_app.app.get_functions()))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe], cwd=app, capture_output=True, text=True, check=True
    )
    assert int(done.stdout) >= 1


def test_package_names_a_missing_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "src").mkdir()
    assert package.main(["--root", str(tmp_path / "src"), "--out", str(tmp_path / "d")]) == 2
    assert "cannot package function_app.py" in capsys.readouterr().err


@pytest.mark.parametrize("kind", aml_jobs.KINDS)
def test_aml_job_builds_offline_one_node_per_region(kind: str, tmp_path: Path) -> None:
    job = aml_jobs.build_job(kind, "dev", LAKE, ["pnw", "tx"], git_sha="abc123")
    assert isinstance(job, PipelineJob)
    assert set(job.jobs) == {f"{kind}_pnw", f"{kind}_tx"}
    assert job.tags == {"env": "dev", "git_sha": "abc123", "kind": kind}
    assert job.compute == "cpu-cluster"
    node = job.jobs[f"{kind}_pnw"]
    command = node.component.command
    assert command.startswith(f"python -m demandops.cli {kind} ")
    declared = set(node.component.inputs) | {f"outputs.{o}" for o in node.component.outputs}
    for ref in {r.split("}}")[0] for r in command.split("${{")[1:]}:
        assert ref.removeprefix("inputs.") in declared or ref in declared, ref
    assert node.component.is_deterministic is False
    conda = node.component.environment.conda_file
    assert conda == yaml.safe_load((ROOT / "ml/environment/conda.yml").read_text())

    # the dumped YAML is a valid Azure ML job: azure-ai-ml's own schema loads it back
    dumped = tmp_path / "job.yml"
    dumped.write_text(yaml.safe_dump(job._to_dict()))
    again = load_job(dumped)
    assert isinstance(again, PipelineJob) and set(again.jobs) == set(job.jobs)


def test_aml_build_command_prints_the_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert aml_jobs.main(["build", "--kind", "score", "--lake", LAKE, "--region", "mtn"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["type"] == "pipeline" and list(printed["jobs"]) == ["score_mtn"]
    assert printed["inputs"] == {"lake": LAKE, "env": "dev", "registry": "azureml"}


def test_aml_unknown_region_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert aml_jobs.main(["build", "--kind", "train", "--lake", LAKE, "--region", "atlantis"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aml_jobs: error: ") and "atlantis" in err and err.count("\n") == 1


def test_aml_job_comes_from_ml_components_when_present(tmp_path: Path) -> None:
    components = tmp_path / "ml" / "components"
    components.mkdir(parents=True)
    (components / "pipeline_train.yml").write_text(
        yaml.safe_dump(
            {
                "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json",
                "type": "pipeline",
                "inputs": {"lake": "placeholder", "env": "placeholder"},
                "jobs": {
                    "train": {
                        "type": "command",
                        "command": "echo ${{inputs.lake}} ${{inputs.env}}",
                        "environment": "azureml:demandops@latest",
                        "inputs": {
                            "lake": "${{parent.inputs.lake}}",
                            "env": "${{parent.inputs.env}}",
                        },
                    }
                },
            }
        )
    )
    job = aml_jobs.build_job("train", "prod", LAKE, ["pnw"], root=tmp_path)
    assert list(job.jobs) == ["train"]
    assert job._to_dict()["inputs"] == {"lake": LAKE, "env": "prod"}
    assert job.tags is not None and job.tags["env"] == "prod"


def test_candidates_await_promotion() -> None:
    models = aml_jobs.candidates("job-1", ["pnw", "tx"], {"env": "dev", "git_sha": "abc"})
    assert [m.name for m in models] == ["demandops-pnw", "demandops-tx"]
    assert models[0].path == "azureml://jobs/job-1/outputs/report_pnw"
    assert models[0].tags == {
        "env": "dev", "git_sha": "abc", "region": "pnw", "job": "job-1",
        "stage": "awaiting-promotion",
    }  # fmt: skip


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown job kind 'deploy'"):
        aml_jobs.build_job("deploy", "dev", LAKE, ["pnw"])


def test_validate_model_end_to_end_is_wired_into_make_test() -> None:
    """`make test` runs the end-to-end check once, after pytest (not twice)."""
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:")[1].split("\n\n")[0]
    assert "validate-model" in test_recipe
    assert "scripts.validate_model" in makefile.split("\nvalidate-model:")[1].split("\n\n")[0]


class _Credential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 4102444800)


class _ArmModels(HTTPAdapter):
    """Azure Resource Manager's model registry, canned: no model exists yet, PUT echoes."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[tuple[str, dict[str, Any]]] = []

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        url = str(request.url).split("?")[0]
        if request.method == "PUT":
            sent = request.body or b"{}"
            assert isinstance(sent, bytes | str)  # JSON, as the SDK sends it
            body = json.loads(sent)
            self.puts.append((url, body))
            body |= {"id": url.split("management.azure.com")[1], "name": url.rsplit("/", 1)[1]}
            body["properties"].setdefault("flavors", {})
            status, content = 200, body
        else:
            status, content = 404, {"error": {"code": "NotFound", "message": "no such model"}}
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(json.dumps(content).encode()),
            status=status,
            headers={"Content-Type": "application/json"},
            preload_content=False,
        )
        return self.build_response(request, raw)


def test_register_puts_candidates_awaiting_promotion_through_the_sdk() -> None:
    """The real azure-ai-ml client registers the models; only ARM's HTTP answers are canned."""
    arm = _ArmModels()
    session = requests.Session()
    session.mount("https://", arm)
    client = MLClient(
        _Credential(), "sub-1", "demandops-dev-rg", "demandops-dev-mlw",
        transport=RequestsTransport(session=session),
    )  # fmt: skip
    models = aml_jobs.register(client, "job-7", ["pnw", "tx"], {"env": "dev", "git_sha": "abc"})

    assert [(m.name, m.version) for m in models] == [("demandops-pnw", "1"), ("demandops-tx", "1")]
    assert models[0].tags is not None and models[0].tags["stage"] == "awaiting-promotion"
    url, body = arm.puts[0]
    assert url.endswith(
        "/resourceGroups/demandops-dev-rg/providers/Microsoft.MachineLearningServices"
        "/workspaces/demandops-dev-mlw/models/demandops-pnw/versions/1"
    )
    props = body["properties"]
    assert props["modelUri"] == "azureml://jobs/job-7/outputs/report_pnw"
    assert props["tags"] == {
        "env": "dev", "git_sha": "abc", "region": "pnw", "job": "job-7",
        "stage": "awaiting-promotion",
    }  # fmt: skip
