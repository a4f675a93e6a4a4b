"""What a reader sees in a tutorial before running a cell: its committed outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("0*.ipynb"))


def _outputs(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return json.dumps([cell.get("outputs", []) for cell in cells if cell["cell_type"] == "code"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_outputs_name_no_port_of_a_run_long_gone(path: Path) -> None:
    """`make notebooks` replaces the sandbox's ports by PORT (tools/scrub_ports.py): a reader's own
    run shows live ports, and an old one beside them would mislead."""
    assert re.findall(r"127\.0\.0\.1:\d+", _outputs(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_widget_saved_as_text_says_what_to_do(path: Path) -> None:
    """Before its cell runs, a widget shows as its plain text: a sentence, never ``<LoginPrompt ...>``."""
    assert re.findall(r"<(?:LoginPrompt|IdentityTable|AuditTable)\b", _outputs(path)) == []


def test_the_scrub_replaces_a_port_everywhere_in_an_output() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "scrub_ports", Path(__file__).resolve().parent.parent / "tools" / "scrub_ports.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scrubbed = module.scrub([{"text": ["at http://127.0.0.1:38757/\n"], "data": {"x": "127.0.0.1:1/a"}}])
    assert scrubbed == [{"text": ["at http://127.0.0.1:PORT/\n"], "data": {"x": "127.0.0.1:PORT/a"}}]
