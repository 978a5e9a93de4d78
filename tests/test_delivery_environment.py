"""The Azure ML environments pin the same library versions as the local install: the jobs'
(ml/environment/) and the online endpoint's (ml/endpoint/environment/, its server's own
dependencies apart)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
ENV = ROOT / "ml" / "environment"
SERVING_ENV = ROOT / "ml" / "endpoint" / "environment"
FUNCTION_APP_ONLY = {"azure-functions", "azure-durable-functions"}  # not a model's dependencies
# the serving server's own dependencies, at the versions it needs, not the jobs' (docs/serving.md)
SERVER_OWN = {"opentelemetry-api", "opentelemetry-sdk", "pydantic"}
# the code a champion carries (ml/pyfunc.py's code_paths) and the script that serves it
CARRIED = sorted([*(ROOT / "ml").rglob("*.py"), *(ROOT / "demandops" / "core").glob("*.py")])


def _pins(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines:
        req = Requirement(line)
        (spec,) = req.specifier  # exactly one `==` per line
        assert spec.operator == "==", line
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def _constraints(folder: Path = ENV) -> dict[str, str]:
    text = (folder / "constraints.txt").read_text()
    return _pins([ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")])


def serving_constraints() -> dict[str, str]:
    """The online endpoint's environment: its package names (canonical) and versions."""
    return _constraints(SERVING_ENV)


def _conda(folder: Path = ENV) -> dict[str, object]:
    conda = yaml.safe_load((folder / "conda.yml").read_text())
    assert isinstance(conda, dict)
    return conda


def _conda_pip(folder: Path = ENV) -> dict[str, str]:
    deps = _conda(folder)["dependencies"]
    assert isinstance(deps, list)
    (pip,) = [d["pip"] for d in deps if isinstance(d, dict)]
    return _pins(pip)


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in [*project["dependencies"], *extras["ml"], *extras["azure"]]]


@pytest.mark.parametrize("folder", [ENV, SERVING_ENV], ids=["jobs", "serving"])
def test_conda_file_pins_exactly_the_constraints(folder: Path) -> None:
    assert _conda_pip(folder) == _constraints(folder)


def test_serving_pins_the_jobs_versions_but_for_its_servers_own() -> None:
    jobs, serving = _constraints(), serving_constraints()
    differ = {name for name in jobs.keys() & serving.keys() if jobs[name] != serving[name]}
    assert differ == SERVER_OWN  # the models are pickled with the jobs' versions


def _module_imports(path: Path) -> set[str]:
    """The top-level packages a module imports when it is imported (not in a function, nor in
    a try block: an optional import, like score.py's of the server)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"__future__", "ml", "demandops"}


@pytest.mark.parametrize("path", CARRIED, ids=lambda p: str(p.relative_to(ROOT)))
def test_serving_pins_every_import_of_the_code_a_champion_carries(path: Path) -> None:
    pins, owners = serving_constraints(), packages_distributions()
    for module in _module_imports(path):
        names = {canonicalize_name(d) for d in owners.get(module, [])}
        assert names & pins.keys(), (
            f"{path.relative_to(ROOT)} imports {module} ({names or 'not installed'}), not pinned"
            " in ml/endpoint/environment/constraints.txt: a champion would not load there"
        )


def test_every_runtime_requirement_is_pinned_within_pyproject_bounds() -> None:
    pins = _constraints()
    for req in _pyproject_requirements():
        name = canonicalize_name(req.name)
        if name in FUNCTION_APP_ONLY:
            continue
        assert name in pins, (
            f"{req.name} is in pyproject.toml but not pinned for Azure ML: add the installed"
            " version to ml/environment/constraints.txt and conda.yml"
        )
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} violates {req}"


@pytest.mark.parametrize("name", sorted(_constraints()))
def test_installed_version_is_the_pinned_one(name: str) -> None:
    try:
        installed = Version(version(name))
    except PackageNotFoundError:
        pytest.fail(f"{name} is pinned but not installed: run `make test` to reinstall")
    # a local build label (torch's `+cpu`) is the same release
    assert installed.public == _constraints()[name], f"{name} {installed} installed"


@pytest.mark.parametrize("folder", [ENV, SERVING_ENV], ids=["jobs", "serving"])
def test_python_version_matches_the_environment(folder: Path) -> None:
    deps = _conda(folder)["dependencies"]
    assert isinstance(deps, list)
    (python,) = [d for d in deps if isinstance(d, str) and d.startswith("python=")]
    major_minor = python.removeprefix("python=")
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == major_minor
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert Version(major_minor) >= Version(re.sub(r"[^\d.]", "", requires))


def test_makefile_installs_with_the_constraints_and_the_same_torch() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "PIN    := -c ml/environment/constraints.txt" in makefile
    installs = [ln for ln in makefile.splitlines() if "pip install" in ln and "-e '." in ln]
    assert installs and all("$(PIN)" in ln for ln in installs)
    torch = re.search(r"TORCH\s*:=\s*torch==(\S+)", makefile)
    assert torch and torch.group(1) == _constraints()["torch"]


def test_makefile_builds_the_serving_environment_with_its_pins_for_the_tests() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "SERVING_PINS := ml/endpoint/environment/constraints.txt" in makefile
    rule = makefile.split("$(SERVING)/.installed: $(SERVING_PINS)\n", 1)[1].split("\n\n", 1)[0]
    assert "-c $(SERVING_PINS) $(TORCH)" in rule and "-r $(SERVING_PINS)" in rule
    assert re.search(r"^test: .*\$\(SERVING\)/\.installed", makefile, re.M)


@pytest.mark.parametrize("folder", [ENV, SERVING_ENV], ids=["jobs", "serving"])
def test_aml_environment_uses_the_conda_file(folder: Path) -> None:
    env = yaml.safe_load((folder / "environment.yml").read_text())
    assert env["conda_file"] == "conda.yml" and env["image"].startswith(
        "mcr.microsoft.com/azureml/"
    )
