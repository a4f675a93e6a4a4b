"""Two directives that keep reference pages true by building them from the code at each build.

``command-help``
    runs ``python -m MODULE --help`` (and ``--help`` of each subcommand it lists) in the build's own
    interpreter and shows the text: an option added, renamed or removed shows up in the next build.
``frame-columns``
    audits two hand-written users through the real engine (no tenant, no network) and lists the
    columns and dtypes of the frame named: ``users``, ``identities``, ``candidates`` or ``plan``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

_CHOICES = re.compile(r"^\s+\{([\w,-]+)\}", re.M)


@cache
def _help(module: str, *args: str) -> str:
    env = {**os.environ, "COLUMNS": "100", "PYTHONWARNINGS": "ignore"}
    env = {k: v for k, v in env.items() if not k.startswith(("AUTH0_", "LINKING_TOOLKIT_"))}
    done = subprocess.run([sys.executable, "-m", module, *args, "--help"], capture_output=True,  # noqa: S603
                          text=True, env=env, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"python -m {module} {' '.join(args)} --help failed: {done.stderr[-2000:]}")
    return done.stdout


class CommandHelp(SphinxDirective):
    """The ``--help`` of ``python -m MODULE`` and of each of its subcommands."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"no-subcommands": directives.flag}

    def run(self) -> list[nodes.Node]:
        module = self.arguments[0]
        text = _help(module)
        out: list[nodes.Node] = [self._block(f"python -m {module} --help", text)]
        if "no-subcommands" not in self.options:
            match = _CHOICES.search(text)
            for command in match.group(1).split(",") if match else []:
                section = nodes.section(ids=[nodes.make_id(f"{module}-{command}")])
                section += nodes.title(text=f"python -m {module} {command}")
                section += self._block(f"python -m {module} {command} --help", _help(module, command))
                out.append(section)
        return out

    @staticmethod
    def _block(command: str, text: str) -> nodes.literal_block:
        block = nodes.literal_block(text=f"$ {command}\n{text}")
        block["language"] = "text"
        return block


def _record(user_id: str, email: str, connection: str, *, verified: bool = True,
            linked: list[dict[str, Any]] = ()) -> dict[str, Any]:
    provider, own_id = user_id.split("|", 1)
    return {"user_id": user_id, "email": email, "email_verified": verified, "name": email.split("@")[0],
            "given_name": "Ada", "family_name": "Lovelace", "created_at": "2024-01-02T03:04:05.000Z",
            "last_login": "2024-02-03T04:05:06.000Z", "logins_count": 3, "blocked": False,
            "identities": [{"connection": connection, "provider": provider, "user_id": own_id,
                            "isSocial": provider != "auth0"}, *linked]}


@cache
def _frames() -> dict[str, Any]:
    from linking_toolkit.audit import audit_records, link_candidates, plan_links

    records = [
        _record("auth0|ada", "ada@example.com", "Username-Password-Authentication",
                linked=[{"connection": "github", "provider": "github", "user_id": "7", "isSocial": True}]),
        _record("google-oauth2|101", "Ada@Example.com", "google-oauth2"),
    ]
    result = audit_records(records)
    candidates = link_candidates(result)
    return {"users": result.users, "identities": result.identities, "candidates": candidates,
            "plan": plan_links(candidates, result)}


def _dtype(values: Any, dtype: Any) -> str:
    """``string[pyarrow]`` rather than ``string``; a category's values when they are a fixed set."""
    storage = getattr(dtype, "storage", None)
    text = f"``{dtype}[{storage}]``" if str(dtype) == "string" and storage else f"``{dtype}``"
    if str(dtype) == "category" and len(dtype.categories) > values.nunique():
        text += ": " + ", ".join(f"``{c}``" for c in dtype.categories)
    return text


class FrameColumns(SphinxDirective):
    """A table of one audit frame's columns and their pandas dtypes, from a real audit."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        frames = _frames()
        name = self.arguments[0]
        if name not in frames:
            raise self.error(f"frame-columns: {name!r} is none of {sorted(frames)}")
        frame = frames[name]
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 70", "",
                 "   * - column", "     - dtype"]
        for column, dtype in frame.dtypes.items():
            lines += [f"   * - ``{column}``", f"     - {_dtype(frame[column], dtype)}"]
        container = nodes.container(classes=["frame-columns"])
        self.state.nested_parse(StringList(lines, source=f"frame-columns {name}"), self.content_offset,
                                container)
        return [container]


def _attribute_docstring_as_written(self: Any) -> list[str]:
    """A property's or constant's docstring, unparsed: napoleon would read the words before a colon
    ("The verified ID token (sensitive: ...)") as a type. The type comes from the annotation."""
    return self._consume_to_end()


def _no_type_docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """A constant without a comment of its own shows nothing, not its type's docstring (a dict's)."""
    own = " ".join(lines).split()
    if what in ("data", "attribute") and own and own == (type(obj).__doc__ or "").split():
        lines.clear()


def setup(app: Any) -> dict[str, Any]:
    from api_pages import resolve_alias
    from sphinx.ext.napoleon.docstring import GoogleDocstring

    GoogleDocstring._parse_attribute_docstring = _attribute_docstring_as_written
    app.connect("missing-reference", resolve_alias)
    app.connect("autodoc-process-docstring", _no_type_docstring, priority=400)
    app.add_directive("command-help", CommandHelp)
    app.add_directive("frame-columns", FrameColumns)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
