"""pyproject.toml and environment.yml list the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"python": None, "pip": None, "python-duckdb": "duckdb"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _spec(spec: str) -> tuple[str, str]:
    """``("name", "version constraint")``, so that a floor raised in one file shows in the other."""
    name = _name(spec)
    return name, spec.strip()[len(name):].replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = dict(_spec(d) for d in project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs.update(_spec(d) for d in extra)
    return specs


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            specs.update(_spec(d) for d in dep["pip"] if not d.startswith("-"))
        else:
            name, constraint = _spec(dep)
            mapped = CONDA_TO_PYPI.get(name, name)
            if mapped:
                specs[mapped] = constraint
    return specs


def test_environment_yml_lists_exactly_the_pyproject_dependencies() -> None:
    assert set(_environment()) == set(_pyproject())


def test_both_files_ask_for_the_same_versions() -> None:
    assert _environment() == _pyproject()


def test_pytest_turns_every_warning_into_an_error() -> None:
    """Only "error" first; any exception after it must name a module or a message (narrow)."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    filters = options["filterwarnings"]
    assert filters[0] == "error"
    for entry in filters[1:]:
        action, message, _category, module = ([*entry.split(":"), "", "", ""])[:4]
        assert action == "ignore" and (message or module), entry


def test_python_floor_agrees() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert project["requires-python"] == ">=3.11"
    assert "python>=3.11" in env["dependencies"]
