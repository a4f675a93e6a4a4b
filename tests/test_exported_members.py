"""The public surface, at both levels, as in httpx's own test of the same name.

The top level holds the ~20 names a learner or an analyst types; every module lists its own public
names in ``__all__``; no function hides a module of the same name; no private name crosses from one
module to another.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import linking_toolkit

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "linking_toolkit"

# What a learner or an analyst types, and the errors a notebook catches; the rest is in submodules.
TOP_LEVEL = {
    "connect", "Tenant", "login", "start_login", "Session", "Identity", "identities_frame",
    "link", "unlink", "ManagementClient",
    "audit_tenant", "audit_export_file", "Audit", "link_candidates", "plan_links", "apply_plan", "undo",
    "IdentityTable", "LoginPrompt", "AuditTable", "doctor",
    "Auth0Error", "LoginError", "TokenVerificationError", "LinkRefused",
}


def _modules() -> list[str]:
    names = [linking_toolkit.__name__]
    names += [m.name for m in pkgutil.walk_packages(linking_toolkit.__path__, "linking_toolkit.")
              if not m.name.endswith("__main__")]
    return sorted(names)


MODULES = _modules()


def test_the_top_level_is_the_small_public_face() -> None:
    assert set(linking_toolkit.__all__) == TOP_LEVEL
    assert len(set(linking_toolkit.__all__)) == len(linking_toolkit.__all__)


def test_all_imports_are_exported() -> None:
    public = sorted(
        name for name, value in vars(linking_toolkit).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    )
    assert sorted(linking_toolkit.__all__) == public


def test_every_exported_name_says_why() -> None:
    for name in linking_toolkit.__all__:
        value = getattr(linking_toolkit, name)
        if callable(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_exported_members_belong_to_the_package() -> None:
    for name in linking_toolkit.__all__:
        value = getattr(linking_toolkit, name)
        module = getattr(value, "__module__", "linking_toolkit")
        assert module.startswith("linking_toolkit"), f"{name} comes from {module}"


@pytest.fixture(scope="module")
def flask_registered() -> set[object]:
    """The sandbox's views, hooks and error handlers: Flask calls them, nobody imports them."""
    from linking_toolkit.sandbox import Sandbox
    from linking_toolkit.sandbox.app import create_app

    with Sandbox(seed=7) as sandbox:
        assert sandbox.context is not None
        app = create_app(sandbox.context)
    found: set[object] = set(app.view_functions.values())
    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        found |= {f for funcs in hooks.values() for f in funcs}
    found |= {f for by_code in app.error_handler_spec.values() for handlers in by_code.values()
              for f in handlers.values()}
    return found


@pytest.mark.parametrize("name", MODULES)
def test_every_module_says_what_it_exports(name: str, flask_registered: set[object]) -> None:
    """``__all__`` names exactly the public functions and classes the module defines (a package's
    ``__init__`` re-exports its rooms' names, and lists those); the sandbox's Flask views and
    hooks are registered with the app instead."""
    module = importlib.import_module(name)
    assert inspect.getdoc(module), f"{name} has no docstring"
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert all(hasattr(module, n) for n in exported), f"{name}.__all__ names what it lacks"
    defined = {n for n, v in vars(module).items()
               if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
               and v.__module__ == name and v not in flask_registered}
    assert defined <= set(exported), f"{name} defines public names missing from __all__"
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("name", [m for m in MODULES if "." in m])
def test_no_function_hides_a_module(name: str) -> None:
    parent, _, child = name.rpartition(".")
    importlib.import_module(name)
    assert inspect.ismodule(getattr(importlib.import_module(parent), child)), \
        f"{parent}.{child} is not the module {name}"


def _private_imports(path: Path, text: str | None = None) -> list[str]:
    """``from x import _y`` of another module, and a private module imported from outside its package.

    ``path`` is where the code is (or would be) in the repository; ``text`` its code, else the file's.
    """
    tree = ast.parse(path.read_text() if text is None else text, str(path))
    relative = path.relative_to(ROOT).with_suffix("")
    here = ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
            continue
        base = package
        for _ in range(max(node.level - 1, 0)):
            base = base.rpartition(".")[0]
        if node.level:
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        found += [f"{source}.{a.name}" for a in node.names if a.name.startswith("_")]
        private = [p for p in source.split(".") if p.startswith("_") and p != "__init__"]
        if private and not (here + ".").startswith(source.rsplit(".", 1)[0] + "."):
            found.append(f"{source} (a private module of another package)")
    return found


def test_no_private_name_crosses_a_module_boundary() -> None:
    files = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "tests").glob("*.py")) + \
        sorted((ROOT / "bench").glob("*.py"))
    found = {str(p.relative_to(ROOT)): names for p in files if (names := _private_imports(p))}
    assert found == {}


def test_the_private_import_check_can_fail() -> None:
    assert _private_imports(PACKAGE / "audit" / "plan.py", "from ..management import _decode\n") == \
        ["linking_toolkit.management._decode"]
    assert _private_imports(ROOT / "tests" / "test_x.py", "from linking_toolkit.widgets._worker import W\n")
    assert _private_imports(PACKAGE / "widgets" / "identity_table.py", "from ._worker import W\n") == []
    assert _private_imports(PACKAGE / "widgets" / "__init__.py", "from .identity_table import T\n") == []


def _foreign_private_attributes(text: str) -> list[str]:
    """``x._name`` read or set where ``x`` is not ``self`` or ``cls``: another object's private part."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})):
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_no_module_reads_or_sets_another_objects_private_fields() -> None:
    found = {str(p.relative_to(ROOT)): names for p in sorted(PACKAGE.rglob("*.py"))
             if (names := _foreign_private_attributes(p.read_text()))}
    assert found == {}


def test_the_private_field_check_can_fail() -> None:
    assert _foreign_private_attributes("session._management = client\n") == ["line 1: ._management"]
    assert _foreign_private_attributes("self._lock = lock\nx = cls._cache\ny = obj.__class__\n") == []
