"""A clone of the repository is all the suite needs: nothing it runs refers to a path outside it.

A user who clones the project has no folder beside it; a test, a bench script, the Makefile or CI
that reaches for one (``../something``, ``Path(__file__).parents[N]`` past the root, a machine's
absolute path) passes here and fails for them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ["tests", "bench", "notebooks", "linking_toolkit", "Makefile", ".ci", "pyproject.toml"]
SUFFIXES = {".py", ".ipynb", ".cfg", ".toml", ".yml", ".yaml", ".sh", ""}

# Path(__file__)[.resolve()].parents[N] and Path(__file__)[.resolve()].parent.parent...
_PARENTS_INDEX = re.compile(r"__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")
_PARENT_CHAIN = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parent\b)+)")
# A relative path that climbs ("../x", "..\\x"), and absolute paths of a developer's machine.
_CLIMB = re.compile(r"""(?<![\w.])((?:\.\./|\.\.\\)+)([\w.-]*)""")
_MACHINE = re.compile(r"""["'\s=](/work/|/root/|/home/\w+/|/Users/\w+/)""")


def outside_references(path: Path, text: str) -> list[str]:
    """What in ``text`` (the contents of ``path``, a file of the repo) points outside ``ROOT``."""
    found = []
    here = path.parent
    for match in _PARENTS_INDEX.finditer(text):
        target = path.parents[int(match.group(1))]
        if not target.is_relative_to(ROOT):
            found.append(f"{match.group(0)} is {target}")
    for match in _PARENT_CHAIN.finditer(text):
        target = path.parents[match.group(1).count(".parent") - 1]
        if not target.is_relative_to(ROOT):
            found.append(f"{match.group(0)} is {target}")
    for match in _CLIMB.finditer(text):
        # Relative to the file and to the root (where make, pytest and CI run from): outside both is out.
        climbs = match.group(1).count("..")
        if not any((base.parents[climbs - 1] if climbs else base).is_relative_to(ROOT)
                   for base in (here, ROOT) if climbs <= len(base.parents)):
            found.append(f"{match.group(0)!r} climbs out of the repository")
    found += [f"{m.group(1)!r} is a path on a developer's machine" for m in _MACHINE.finditer(text)]
    if "auth0-reference" in text:
        found.append("names the team's auth0-reference folder (the copy in the repo is tests/reference)")
    return found


def _files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        top = ROOT / name
        candidates = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        files += [p for p in candidates if p.suffix in SUFFIXES and "__pycache__" not in p.parts]
    return files


def test_the_scan_reads_the_files_that_matter() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _files()}
    assert {"Makefile", ".ci/run", "tests/conftest.py", "bench/audit.py", "pyproject.toml"} <= names
    assert any(n.endswith(".ipynb") for n in names)


@pytest.mark.parametrize(("where", "planted"), [
    ("tests/test_planted.py", "where = Path(__file__).resolve().parents[2] / 'x'"),
    ("tests/test_planted.py", "where = Path(__file__).parent.parent.parent / 'x'"),
    ("tests/test_planted.py", "where = Path('../../x/reference')"),
    ("Makefile", "\tcp ../x/y.json tests/"),
    ("bench/planted.py", "open('/work/main/tests/x.json')"),
    ("tests/test_planted.py", "Path.home() / 'auth0-reference'"),
])
def test_the_scan_finds_a_planted_outside_path(where: str, planted: str) -> None:
    assert outside_references(ROOT / where, planted)


@pytest.mark.parametrize("inside", [
    "ROOT = Path(__file__).resolve().parent.parent",
    "REFERENCE = Path(__file__).resolve().parent / 'reference'",
    "x = '../notebooks/sanitize.cfg'",
    "version = '1.2..3'",
])
def test_the_scan_leaves_paths_inside_the_repo_alone(inside: str) -> None:
    assert outside_references(ROOT / "tests" / "test_planted.py", inside) == []


def test_nothing_in_the_repo_refers_to_a_path_outside_it() -> None:
    found = {p.relative_to(ROOT).as_posix(): refs for p in _files()
             if p != Path(__file__).resolve()
             and (refs := outside_references(p, p.read_text(errors="replace")))}
    assert found == {}
