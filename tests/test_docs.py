"""The documentation site builds with warnings as errors, and says what the code says.

The build is Sphinx's own (``make docs``'s command, into a temporary folder): a renamed function
that a page or a docstring names, a reference to nothing, or a page in no toctree fails it. Small
side builds show that those mistakes do fail, and the finished site is checked for what a reader
looks for: every public name's page, every notebook, the command line's help.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import linking_toolkit

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BUILD_TIMEOUT = 900  # seconds: an upper bound for a slow shared machine, not a timing under test


def sphinx_build(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (this interpreter's Sphinx on the repository's own pages)
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(source), str(out)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False, cwd=ROOT)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = sphinx_build(DOCS, out)
    assert done.returncode == 0, done.stderr[-6000:]
    assert "WARNING" not in done.stderr and "ERROR" not in done.stderr, done.stderr[-6000:]
    return out


def test_the_site_builds_with_warnings_as_errors(site) -> None:
    assert (site / "index.html").is_file()
    pages = list(site.rglob("*.html"))
    assert len(pages) > 100  # every public name has a page


def test_every_top_level_name_has_its_reference_page(site) -> None:
    for name in linking_toolkit.__all__:
        page = site / "reference" / "api" / f"linking_toolkit.{name}.html"
        assert page.is_file(), name
        assert f"linking_toolkit.{name}" in page.read_text(encoding="utf-8")


def test_every_public_module_has_a_page_listing_its_names(site) -> None:
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from api_pages import public_modules
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    assert "linking_toolkit.audit" in public_modules() and "linking_toolkit.sandbox" in public_modules()
    for module_name in public_modules():
        page = (site / "reference" / "api" / f"{module_name}.html").read_text(encoding="utf-8")
        for name in getattr(importlib.import_module(module_name), "__all__", ()):
            assert name in page, f"{module_name}.{name}"


def test_every_notebook_is_a_tutorial_page_with_its_outputs(site) -> None:
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    assert len(notebooks) >= 5
    index = (site / "tutorials" / "index.html").read_text(encoding="utf-8")
    for notebook in notebooks:
        page = site / "tutorials" / f"{notebook.stem}.html"
        assert page.is_file(), notebook.name
        assert f"{notebook.stem}.html" in index
        title = json.loads(notebook.read_text(encoding="utf-8"))["cells"][0]["source"][0].lstrip("# ").strip()
        assert title.split("·")[-1].strip() in page.read_text(encoding="utf-8")
    linking = (site / "tutorials" / "02-link-and-unlink.html").read_text(encoding="utf-8")
    assert "<table" in linking and "google-oauth2" in linking  # identities_frame's HTML, committed
    assert "Identity table of ada@example.com: run this cell" in linking  # a widget as its text


def test_the_command_line_pages_hold_each_commands_help(site) -> None:
    cli = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    assert "python -m linking_toolkit audit --help" in cli and "--out" in cli
    sandbox = (site / "reference" / "sandbox.html").read_text(encoding="utf-8")
    for option in ("--seed", "--users", "--rate-limit", "--tls", "--db"):
        assert option in sandbox


def test_the_frames_page_lists_the_audits_columns_and_dtypes(site) -> None:
    frames = (site / "reference" / "frames.html").read_text(encoding="utf-8")
    for column in ("owner", "is_primary", "email_verified", "primary_id", "secondary_id", "allow_unsafe"):
        assert f"<span class=\"pre\">{column}</span>" in frames
    assert "string[pyarrow]</span>" in frames and "datetime64[ms,</span>" in frames


def test_the_security_page_is_security_md(site) -> None:
    page = (site / "explanations" / "security.html").read_text(encoding="utf-8")
    assert "tests/test_security_md.py" in page


def _side_project(tmp_path: Path, page: str, *, in_toctree: bool = True) -> subprocess.CompletedProcess[str]:
    """A small Sphinx project with the site's settings for references, and one page of ``page``."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['myst_parser', 'sphinx.ext.autodoc', 'sphinx.ext.napoleon', 'linking_docs']\n"
        "nitpicky = True\nautodoc_typehints = 'none'\n", encoding="utf-8")
    toctree = "```{toctree}\npage\n```\n" if in_toctree else ""
    (source / "index.md").write_text(f"# Index\n\n{toctree}", encoding="utf-8")
    (source / "page.md").write_text(page, encoding="utf-8")
    return sphinx_build(source, tmp_path / "out")


def test_a_reference_to_a_name_that_is_gone_fails_the_build(tmp_path) -> None:
    done = _side_project(tmp_path, "# Page\n\n```{eval-rst}\n.. autofunction:: linking_toolkit.link\n```\n\n"
                                   "{func}`linking_toolkit.link` and {func}`linking_toolkit.renamed_link`\n")
    assert done.returncode != 0
    assert "linking_toolkit.renamed_link" in done.stderr
    assert "reference target not found: linking_toolkit.link " not in done.stderr


def test_a_reference_by_another_public_path_resolves(tmp_path) -> None:
    # linking_toolkit.linking.link is documented once, as linking_toolkit.link.
    done = _side_project(tmp_path, "# Page\n\n```{eval-rst}\n.. autofunction:: linking_toolkit.link\n```\n\n"
                                   "{func}`linking_toolkit.linking.link`\n")
    assert done.returncode == 0, done.stderr


def test_a_page_in_no_toctree_fails_the_build(tmp_path) -> None:
    done = _side_project(tmp_path, "# Page\n\nA page no reader can reach.\n", in_toctree=False)
    assert done.returncode != 0
    assert "isn't included in any toctree" in done.stderr


def _is_public(module_name: str) -> bool:
    # ``__main__`` is public: ``python -m linking_toolkit`` is its interface.
    return not any(part.startswith("_") and part != "__main__" for part in module_name.split(".")[1:])


def _public_modules() -> list[str]:
    found = pkgutil.walk_packages(linking_toolkit.__path__, "linking_toolkit.")
    return ["linking_toolkit", *(module.name for module in found if _is_public(module.name))]


def _own_objects(module_name: str) -> dict[str, object]:
    """The classes and functions of a module's ``__all__`` that it defines, by their public path.

    A re-export is checked where it is defined; one defined in a private module (``management/_http``)
    is checked in the public modules that export it, since it has no public home of its own.
    Constants and type aliases are neither classes nor functions, and are left out.
    """
    module = importlib.import_module(module_name)
    own = {}
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.isfunction(inspect.unwrap(obj))):
            continue
        home = getattr(inspect.unwrap(obj), "__module__", None) or ""
        if home == module_name or (home.startswith("linking_toolkit.") and not _is_public(home)):
            own[f"{module_name}.{name}"] = obj
    return own


def _examples(doc: str) -> str:
    """The numpydoc Examples section of ``doc`` (up to the next section's underlined title), or ''."""
    lines = doc.splitlines()
    for at, (title, rule) in enumerate(itertools.pairwise(lines)):
        if title.strip() == "Examples" and rule.strip() and set(rule.strip()) == {"-"}:
            section = []
            for line, following in zip(lines[at + 2:], [*lines[at + 3:], ""], strict=False):
                if line.strip() and following.strip() and set(following.strip()) == {"-"}:
                    break
                section.append(line)
            return "\n".join(section)
    return ""


def _has_an_example(obj: object) -> bool:
    # The object's own docstring: inspect.getdoc would give a class with none its base class's.
    doc = inspect.cleandoc(getattr(obj, "__doc__", None) or "")
    return any(line.lstrip().startswith(">>>") for line in _examples(doc).splitlines())


def test_the_examples_check_reads_numpydoc_sections() -> None:
    assert ">>> f()" in _examples("Do.\n\nExamples\n--------\n>>> f()\n1\n")
    assert _examples("Do.\n\nExamples\n--------\nJust words.\n\nNotes\n-----\n>>> f()\n") == "Just words.\n"
    assert _examples("Do.\n\n>>> f()\n") == ""

    class Documented:
        """A class.

        Examples
        --------
        >>> Documented()
        """

    class Undocumented(Documented):
        pass

    assert _has_an_example(Documented)
    assert not _has_an_example(Undocumented)  # a base class's example is not this class's


def test_every_public_name_has_a_docstring_with_an_example() -> None:
    modules = _public_modules()
    assert "linking_toolkit.management" in modules and "linking_toolkit.sandbox.store.users" in modules
    assert "linking_toolkit.__main__" in modules and "linking_toolkit.management._http" not in modules
    checked: dict[str, object] = {}
    for module_name in modules:
        for path, obj in _own_objects(module_name).items():
            if all(obj is not seen for seen in checked.values()):  # one path per object
                checked[path] = obj
    assert "linking_toolkit.management.ManagementStats" in checked  # defined in a private module
    assert "linking_toolkit.errors.JobFailed" in checked  # re-exported by management, checked once here
    assert "linking_toolkit.management.JobFailed" not in checked
    missing = [path for path, obj in checked.items() if not _has_an_example(obj)]
    assert missing == [], (f"{len(missing)} of {len(checked)} public classes and functions have no "
                           f"numpydoc Examples section holding a >>> line:\n" + "\n".join(missing))
