"""CI/CD pipelines as code (GitHub Actions and Azure DevOps): every file parses, every step runs
a make target, script or file that exists here, and together they cover the release flow."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / ".github" / "workflows"
AZURE = ROOT / ".azure-pipelines"
PIPELINE_FILES = sorted([*GITHUB.glob("*.yml"), *AZURE.rglob("*.yml")])
ACTIONS = {  # external actions allowed, by major version
    "actions/checkout@v4", "actions/setup-python@v5", "actions/setup-node@v4",
    "actions/upload-artifact@v4", "azure/login@v2",
}  # fmt: skip
ADO_TASKS = {"UsePythonVersion@0", "NodeTool@0", "AzureCLI@2"}
REPO_PATH = re.compile(r"(?<![\w/.])((?:\.ci|scripts|infra|ml|adf|config|docs)/[\w./*-]+)")
PRODUCED = {"dist"}  # made by `make package` before anything reads it


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), path
    return doc


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m for m in re.findall(r"^([\w.-]+):", text, re.M)}


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every mapping anywhere in a document."""
    if isinstance(node, dict):
        return [node, *[m for v in node.values() for m in _walk(v)]]
    if isinstance(node, list):
        return [m for v in node for m in _walk(v)]
    return []


def _commands(doc: dict[str, Any]) -> list[str]:
    """Shell text of every step: GitHub `run`, Azure DevOps `script`/`bash`/`inlineScript`."""
    found = []
    for m in _walk(doc):
        for key in ("run", "script", "bash"):
            if isinstance(m.get(key), str):
                found.append(m[key])
        if isinstance(m.get("inputs"), dict) and "inlineScript" in m["inputs"]:
            found.append(m["inputs"]["inlineScript"])
    return found


def _make_calls(command: str) -> list[str]:
    """The targets of every `make` call (variables like `ENV=...` and options left out)."""
    targets = []
    command = re.sub(r"\$\{\{.*?\}\}", "EXPR", command)  # `${{ inputs.env }}` is one word
    for line in command.splitlines():
        words = shlex.split(line)
        for i in (i for i, w in enumerate(words) if w == "make"):
            rest = words[i + 1 :]
            end = next((j for j, w in enumerate(rest) if w in {"&&", "||", ";", "|"}), len(rest))
            targets += [w for w in rest[:end] if "=" not in w and not w.startswith("-")]
    return targets


@pytest.mark.parametrize("path", PIPELINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_step_references_what_exists(path: Path) -> None:
    doc = _load(path)
    commands = _commands(doc)
    targets = _make_targets()
    for command in commands:
        for target in _make_calls(command):
            assert target in targets, f"{path.name}: `make {target}` is not a Makefile target"
        for ref in REPO_PATH.findall(command):
            assert (ROOT / ref).exists(), f"{path.name}: {ref} does not exist"
    for m in _walk(doc):
        uses = m.get("uses")
        if isinstance(uses, str):
            if uses.startswith("./"):
                assert (ROOT / uses).is_file(), f"{path.name}: {uses} does not exist"
            else:
                assert uses in ACTIONS, f"{path.name}: unexpected action {uses}"
        if isinstance(m.get("template"), str):
            assert (path.parent / m["template"]).is_file(), f"{path.name}: {m['template']}"
        if isinstance(m.get("task"), str):
            assert m["task"] in ADO_TASKS, f"{path.name}: unexpected task {m['task']}"
        publish = m.get("publish") or m.get("path")
        if isinstance(publish, str) and ("publish" in m or "uses" not in m):
            for line in filter(None, (p.strip() for p in publish.splitlines())):
                top = line.rstrip("/").split("/")[0]
                assert top in PRODUCED or (ROOT / line).exists(), f"{path.name}: {line}"


def _on(doc: dict[Any, Any]) -> dict[str, Any]:
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert isinstance(triggers, dict)
    return triggers


def _jobs_text(path: Path) -> str:
    return "\n".join(_commands(_load(path)))


def test_github_flow() -> None:
    assert _on(_load(GITHUB / "pr.yml"))["pull_request"]["branches"] == ["main", "release/**"]
    assert "bash .ci/run" in _jobs_text(GITHUB / "pr.yml")
    ci = _jobs_text(GITHUB / "ci.yml")
    assert "bash .ci/run" in ci and "make package" in ci
    assert _make_calls(ci) == ["validate-model", "package"]  # `.ci/run` is `make test`
    cd = _load(GITHUB / "cd.yml")
    steps = {name: _commands(job) for name, job in cd["jobs"].items()}
    assert steps["deploy"] == [
        "make deploy-infra ENV=${{ inputs.env }}",
        "make deploy-app ENV=${{ inputs.env }}",
        "make deploy-adf ENV=${{ inputs.env }}",
    ]
    assert steps["model-validation"] == ["make aml-train ENV=${{ inputs.env }}"]
    assert steps["scoring"] == ["make aml-score ENV=${{ inputs.env }}"]
    assert cd["jobs"]["scoring"]["needs"] == "model-validation"
    for name, env in (("main", "dev"), ("release", "prod")):
        jobs = _load(GITHUB / f"{name}.yml")["jobs"]
        assert jobs["ci"]["with"] == {"env": env}
        assert jobs[env] == {
            "needs": "ci",
            "uses": "./.github/workflows/cd.yml",
            "with": {"env": env},
        }
    assert _on(_load(GITHUB / "main.yml"))["push"]["branches"] == ["main"]
    assert _on(_load(GITHUB / "release.yml"))["push"]["branches"] == ["release/**"]
    batch = _load(GITHUB / "batch.yml")
    assert {"schedule", "repository_dispatch", "workflow_dispatch"} <= set(_on(batch))
    assert batch["jobs"]["batch"]["with"]["deploy"] is False


def test_azure_devops_flow() -> None:
    pr = _load(AZURE / "pr.yml")
    assert pr["trigger"] == "none" and pr["pr"]["branches"]["include"] == ["main", "release/*"]
    assert pr["stages"] == [
        {"template": "templates/ci.yml", "parameters": {"env": "dev", "package": False}}
    ]
    for name, env in (("main", "dev"), ("release", "prod")):
        doc = _load(AZURE / f"{name}.yml")
        assert [s["template"] for s in doc["stages"]] == ["templates/ci.yml", "templates/cd.yml"]
        assert all(s["parameters"]["env"] == env for s in doc["stages"])
    assert _load(AZURE / "release.yml")["trigger"]["branches"]["include"] == ["release/*"]
    cd = _jobs_text(AZURE / "templates" / "cd.yml")
    for step in ("deploy-infra", "deploy-app", "deploy-adf", "aml-train", "aml-score"):
        assert f"make {step} ENV=${{{{ parameters.env }}}}" in cd
    batch = _load(AZURE / "batch.yml")
    assert batch["schedules"][0]["cron"] == "0 6 * * 1"
    assert batch["stages"][0]["parameters"]["deploy"] is False


@pytest.mark.parametrize("target", ["deploy-infra", "deploy-app", "deploy-adf", "aml-train"])
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_deploy_targets_expand_to_real_files(target: str, env: str) -> None:
    """`make -n` prints what a pipeline step would run; every repo file it names exists."""
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", target, f"ENV={env}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for ref in REPO_PATH.findall(done.stdout):
        if "*" not in ref:
            assert (ROOT / ref).exists(), ref
    if target == "deploy-infra":
        assert f"--parameters infra/parameters/{env}.json" in done.stdout
        assert f"--resource-group demandops-{env}-rg" in done.stdout
    if target == "aml-train":
        assert f"--lake abfs://lake@demandops{env}lake.dfs.core.windows.net" in done.stdout
        assert f"--workspace demandops-{env}-mlw --wait --register" in done.stdout
