"""Replace the sandbox's loopback ports in the tutorials' saved outputs by ``PORT``.

`make notebooks` runs this after executing them: a port from the run that saved a notebook means
nothing to the next reader, and beside the live ports of their own run it misleads. The rule is
notebooks/sanitize.cfg's, the one nbval compares outputs with.
"""

from __future__ import annotations

import configparser
import json
import re
import sys
from pathlib import Path

RULES = configparser.ConfigParser()
RULES.read(Path(__file__).resolve().parent.parent / "notebooks" / "sanitize.cfg")
PORT = re.compile(RULES["port"]["regex"])
REPLACE = RULES["port"]["replace"]


def scrub(value: object) -> object:
    if isinstance(value, str):
        return PORT.sub(REPLACE, value)
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items()}
    return value


def main(paths: list[str]) -> None:
    for name in paths:
        path = Path(name)
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"] = scrub(cell["outputs"])
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
