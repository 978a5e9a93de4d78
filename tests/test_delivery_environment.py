"""The Azure ML environment pins the same library versions as the local install."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
ENV = ROOT / "ml" / "environment"
FUNCTION_APP_ONLY = {"azure-functions", "azure-durable-functions"}  # not a model's dependencies


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        req = Requirement(line)
        (spec,) = req.specifier  # exactly one `==` per line
        assert spec.operator == "==", line
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def _constraints() -> dict[str, str]:
    text = (ENV / "constraints.txt").read_text()
    return _pins([ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")])


def _conda() -> dict[str, object]:
    conda = yaml.safe_load((ENV / "conda.yml").read_text())
    assert isinstance(conda, dict)
    return conda


def _conda_pip() -> dict[str, str]:
    deps = _conda()["dependencies"]
    assert isinstance(deps, list)
    (pip,) = [d["pip"] for d in deps if isinstance(d, dict)]
    return _pins(pip)


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in [*project["dependencies"], *extras["ml"], *extras["azure"]]]


def test_conda_file_pins_exactly_the_constraints() -> None:
    assert _conda_pip() == _constraints()


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


def test_python_version_matches_the_environment() -> None:
    deps = _conda()["dependencies"]
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


def test_aml_environment_uses_the_conda_file() -> None:
    env = yaml.safe_load((ENV / "environment.yml").read_text())
    assert env["conda_file"] == "conda.yml" and env["image"].startswith(
        "mcr.microsoft.com/azureml/"
    )
