"""pyproject.toml and environment.yml name the same packages with the same version specifiers."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PINS = {"torch": "==2.14.1", "torchvision": "==0.29.1"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def as_map(lines):
    out = {}
    for line in lines:
        req = Requirement(line)
        name = normalise(req.name)
        assert name not in out, f"{name} is listed twice"
        assert not req.marker and not req.url, f"{line}: keep requirements to name + specifier"
        out[name] = req.specifier
    return out


@pytest.fixture(scope="module")
def pyproject_reqs():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    return as_map(project["dependencies"] + project["optional-dependencies"]["test"])


@pytest.fixture(scope="module")
def conda_pip_reqs():
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "environment.yml should have one pip: section"
    assert "pip" in env["dependencies"], "environment.yml should install pip itself"
    return as_map(pip_lists[0])


def test_same_packages_and_specifiers(pyproject_reqs, conda_pip_reqs):
    assert set(pyproject_reqs) == set(conda_pip_reqs), (
        f"only in pyproject.toml: {sorted(set(pyproject_reqs) - set(conda_pip_reqs))}; "
        f"only in environment.yml: {sorted(set(conda_pip_reqs) - set(pyproject_reqs))}")
    differ = {n: (str(pyproject_reqs[n]), str(conda_pip_reqs[n]))
              for n in pyproject_reqs if pyproject_reqs[n] != conda_pip_reqs[n]}
    assert not differ, f"specifiers differ (pyproject, environment.yml): {differ}"


@pytest.mark.parametrize("name, spec", sorted(PINS.items()))
def test_torch_and_torchvision_are_pinned_in_both(pyproject_reqs, conda_pip_reqs, name, spec):
    assert pyproject_reqs[name] == SpecifierSet(spec)
    assert conda_pip_reqs[name] == SpecifierSet(spec)


def test_core_packages_are_listed(pyproject_reqs):
    for name in ("open-clip-torch", "numpy", "papermill", "pyyaml", "safetensors", "pytest"):
        assert name in pyproject_reqs, name
    assert str(pyproject_reqs["open-clip-torch"]).startswith("==")


def test_installed_versions_satisfy_the_pins(pyproject_reqs):
    """The environment the tests run in is the one the files describe (for the pinned packages)."""
    from importlib.metadata import PackageNotFoundError, version

    for name in ("torch", "torchvision", "open-clip-torch"):
        try:
            installed = version(name)
        except PackageNotFoundError:
            pytest.fail(f"{name} is a declared dependency but is not installed")
        local_free = installed.split("+")[0]                 # 2.14.1+cpu -> 2.14.1
        assert pyproject_reqs[name].contains(local_free, prereleases=True), (name, installed)
