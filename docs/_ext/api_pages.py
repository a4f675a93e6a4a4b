"""The API pages: every public module of linking_toolkit, each public object documented once.

A module is public when no part of its dotted name starts with ``_`` (``__main__``, the command
line, is public: ``python -m linking_toolkit`` is its interface); its public names are its
``__all__``. An object exported by several modules (``linking_toolkit.connect`` is
``linking_toolkit.tenant.connect``) gets one page, at its shortest path (the top level's, then its
package's); the other modules' pages link to it, and a cross-reference to any of its paths resolves
to that page (``resolve_alias``, on Sphinx's missing-reference event).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from functools import cache
from pathlib import Path
from typing import Any

import linking_toolkit

HEADER = """\
Python API
==========

Every public name, generated from the code at each build. The package's top level holds the names
a learner or an analyst types (:mod:`linking_toolkit`); everything else lives in its module, whose
public names are exactly its ``__all__``. A name exported by several modules has one page, at its
shortest path; the other modules link to it. The sandbox (:mod:`linking_toolkit.sandbox`) is a room
of its own: its modules are listed last.

.. autosummary::
   :toctree: api

"""


@cache
def public_modules() -> tuple[str, ...]:
    names = ["linking_toolkit"]
    for module in pkgutil.walk_packages(linking_toolkit.__path__, "linking_toolkit."):
        parts = module.name.split(".")[1:]
        if not any(part.startswith("_") and part != "__main__" for part in parts):
            names.append(module.name)
    # The client's modules first, the sandbox's after: the order a reader looks for them in.
    return tuple(sorted(names, key=lambda name: (name.startswith("linking_toolkit.sandbox"), name)))


def _identity(name: str, obj: Any) -> tuple[Any, ...]:
    # Classes and functions are one object wherever exported; a constant is the same constant only
    # under the same name (two modules' 0 or "" are not one thing).
    return ("object", id(obj)) if inspect.isclass(obj) or inspect.isroutine(obj) else ("data", name, id(obj))


@cache
def canonical_paths() -> dict[str, str]:
    """Every public path (``module.name``) -> the path its object is documented at."""
    paths: dict[tuple[Any, ...], list[str]] = {}
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            paths.setdefault(_identity(name, getattr(module, name)), []).append(f"{module_name}.{name}")
    canonical = {}
    for key, found in paths.items():
        # A constant's page is the module that assigns it (where its comment is); an object's, its
        # shortest path.
        defining = [path for path in found if key[0] == "data" and _assigns(*path.rsplit(".", 1))]
        home = min(defining or found, key=lambda path: (path.count("."), path))
        canonical.update(dict.fromkeys(found, home))
    return canonical


def _assigns(module_name: str, name: str) -> bool:
    source = inspect.getsource(importlib.import_module(module_name))
    return re.search(rf"^{re.escape(name)}\b\s*(:[^=]+)?=", source, re.M) is not None


@cache
def _by_short_name() -> dict[str, set[str]]:
    short: dict[str, set[str]] = {}
    for home in set(canonical_paths().values()):
        short.setdefault(home.rsplit(".", 1)[1], set()).add(home)
    return short


def canonical_target(target: str, module: str | None) -> str | None:
    """Where ``target`` (as written in a docstring or a type hint, in ``module``) is documented."""
    canonical = canonical_paths()
    target = target.lstrip(".")
    # In a module, a name may be the module's own or (``:func:`~.engine.x```) a sibling's: try the
    # module, then each package above it, then the name as written.
    scopes = module.split(".") if module else []
    candidates = [".".join([*scopes[:cut], target]) for cut in range(len(scopes), 0, -1)] + [target]
    for candidate in candidates:
        parts = candidate.split(".")
        for cut in range(len(parts), 1, -1):  # a member: Audit.save is documented with Audit
            head = ".".join(parts[:cut])
            if head in canonical:
                return ".".join([canonical[head], *parts[cut:]])
    # Written relative to the module that defines it (``~.report.plot_evidence``) but shown on the
    # page of its shortest path: any public path ending so, if they all name one object.
    homes = {home for path, home in canonical.items() if path.endswith(f".{target}")}
    if not homes and "." not in target:  # a type hint's bare name (``Session``)
        homes = _by_short_name().get(target, set())
    return next(iter(homes)) if len(homes) == 1 else None


def resolve_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    target = canonical_target(node["reftarget"], node.get("py:module"))
    if target is None or target == node["reftarget"]:
        return None
    domain = env.get_domain("py")
    found = domain.resolve_any_xref(env, node["refdoc"], app.builder, target, node, contnode)
    return found[0][1] if found else None


def write_api_page(path: Path) -> None:
    text = HEADER + "".join(f"   {name}\n" for name in public_modules())
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
