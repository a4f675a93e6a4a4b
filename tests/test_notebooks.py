"""The committed tutorials hold no token, secret or password: not in an output, not in metadata,
not in saved widget state. (Their outputs themselves are checked by ``pytest --nbval``.)"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
# A secret written as a value: "password": "hunter22", client_secret='...', m2m_client_secret=...
SECRET_VALUE = re.compile(
    r"""(password|secret|access_token|id_token|refresh_token|device_code|code_verifier)['"]?\s*[:=]\s*"""
    r"""['"](?!<)[^'"\s]{6,}""", re.IGNORECASE)
BEARER = re.compile(r"Bearer\s+(?!<)[A-Za-z0-9_.~+/-]{16,}")


def leaks(text: str) -> list[str]:
    """Every token-, secret- or password-looking string in ``text``."""
    return [m.group(0) for pattern in (JWT, SECRET_VALUE, BEARER) for m in pattern.finditer(text)]


def strings(value: Any) -> list[str]:
    """Every string inside a JSON-like value (keys too), unescaped, so a scan sees what a reader sees."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings(k), *strings(v))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings(item)]
    return []


def scan(value: Any) -> list[str]:
    return [leak for text in strings(value) for leak in leaks(text)]


def saved_parts(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """What a notebook stores besides its sources: outputs, metadata, widget state."""
    return {
        "metadata": notebook.metadata,
        "cells": [{"metadata": cell.metadata, "outputs": cell.get("outputs", []),
                   "attachments": cell.get("attachments", {})} for cell in notebook.cells],
    }


def test_the_tutorials_are_there():
    names = [path.name for path in NOTEBOOKS]
    assert {"01-log-in.ipynb", "02-link-and-unlink.ipynb", "03-safe-linking.ipynb"} <= set(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_token_secret_or_password_in_outputs_metadata_or_widget_state(path: Path):
    notebook = nbformat.read(path, as_version=4)
    assert scan(saved_parts(notebook)) == []
    # Sources too: nobody pastes a real token into a tutorial.
    assert leaks("\n".join(cell.source for cell in notebook.cells)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_run_without_widget_state(path: Path):
    notebook = nbformat.read(path, as_version=4)
    # Saved widget state would hold whatever a widget showed; the outputs alone must tell the story.
    assert "widgets" not in notebook.metadata
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), "run the notebook before committing"
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    # A warning, a log record or a background thread's traceback would land on stderr.
    assert not [o.text for cell in code for o in cell.outputs if o.get("name") == "stderr"]
    assert not [cell.metadata["execution"] for cell in code if "execution" in cell.metadata]


LEAKS = [
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHwxIn0.c2ln",
    '{"password": "hunter2-is-long"}',
    "m2m_client_secret='AbCdEf123456'",
    "Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123",
]


def plant(where: str, leak: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    notebook.cells.append(cell)
    if where == "output":
        cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": leak})]
    elif where == "cell metadata":
        cell.metadata["tags"] = [leak]
    else:
        notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
            "state": {"m": {"state": {"value": leak}}}}}
    return notebook


@pytest.mark.parametrize("where", ["output", "cell metadata", "widget state"])
@pytest.mark.parametrize("leak", LEAKS)
def test_the_scan_finds_what_it_looks_for(leak: str, where: str):
    assert scan(saved_parts(plant(where, leak)))


@pytest.mark.parametrize("placeholder", [
    "Authorization: Bearer <the primary's access token>",
    '{"link_with":"<the secondary\'s ID token>"}',
    'password = tenant.sandbox.demo_user(EMAIL)["password"]',
])
def test_the_scan_lets_placeholders_and_code_through(placeholder: str):
    assert leaks(placeholder) == []


def masked(path: Path) -> dict[str, list[str]]:
    """Per section of the sanitize file, the output lines of ``path`` that its regex rewrites."""
    config = configparser.ConfigParser()
    config.read(Path(__file__).parent.parent / "notebooks" / "sanitize.cfg")
    notebook = nbformat.read(path, as_version=4)
    texts = [line for cell in notebook.cells for text in strings(cell.get("outputs", []))
             for line in text.splitlines()]
    return {section: [t for t in texts if re.search(config[section]["regex"], t)]
            for section in config.sections()}


def test_the_sanitize_file_masks_only_the_port_and_the_sessions_expiry():
    hits = {section: [line for path in NOTEBOOKS for line in masked(path)[section]]
            for section in masked(NOTEBOOKS[0])}
    assert set(hits) == {"port", "expiry"}
    # Each mask is used, and only where the value varies between runs: the sandbox's free port,
    # and a session's expiry (login time + lifetime). A fixed date in an output stays compared.
    assert hits["port"] and all("127.0.0.1:" in line for line in hits["port"])
    assert hits["expiry"] and all("expires" in line for line in hits["expiry"]), hits["expiry"]
