"""`make lab` opens the learner's own copy of the tutorials, so the committed ones stay as they are."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make") or "make"


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.ipynb"))}


def _lab_copy(copy: Path) -> None:
    subprocess.run([MAKE, "-s", "lab-copy", f"LAB_COPY={copy}"], cwd=ROOT,  # noqa: S603 - the repo's Makefile
                   check=True, capture_output=True, timeout=60)


def test_the_copy_is_made_once_and_never_overwritten(tmp_path: Path) -> None:
    committed = _digests(ROOT / "notebooks")
    copy = tmp_path / "my-notebooks"
    _lab_copy(copy)
    assert _digests(copy) == committed  # every tutorial, as committed

    edited = copy / "01-log-in.ipynb"
    edited.write_text(edited.read_text().replace("Ada", "Ada (my note)", 1))
    (copy / "02-link-and-unlink.ipynb").unlink()
    _lab_copy(copy)  # the next `make lab`
    assert "Ada (my note)" in edited.read_text()  # the learner's edit stays
    assert _digests(copy)["02-link-and-unlink.ipynb"] == committed["02-link-and-unlink.ipynb"]
    assert _digests(ROOT / "notebooks") == committed


def test_make_lab_runs_jupyterlab_on_the_copy_with_kept_sandboxes() -> None:
    plan = subprocess.run([MAKE, "-n", "lab"], cwd=ROOT, check=True,  # noqa: S603
                          capture_output=True, text=True, timeout=60).stdout
    command = next(line for line in plan.splitlines() if "jupyter lab" in line or "jupyter\tlab" in line)
    assert command.startswith("LINKING_TOOLKIT_KEEP_SANDBOX=1 ")
    assert "--notebook-dir=my-notebooks" in command
    assert "my-notebooks/" in (ROOT / ".gitignore").read_text().splitlines()
