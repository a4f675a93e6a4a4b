"""The tutorials as symlinks: docs/tutorials/NN-name.ipynb -> notebooks/NN-name.ipynb.

Sphinx reads only files under docs/, and the notebooks live (and are tested) in notebooks/. A copy
would be a second version to keep in step; committed symlinks would need a docs commit for every new
notebook. So the build links each notebook present, removes links to notebooks that are gone, and the
tutorials' toctree takes them by a glob, in file-name order.
"""

from __future__ import annotations

import os
from pathlib import Path


def link_tutorials(notebooks: Path, target: Path) -> list[Path]:
    target.mkdir(exist_ok=True)
    for old in target.glob("*.ipynb"):
        if old.is_symlink() and not (notebooks / old.name).is_file():
            old.unlink()
    made = []
    for notebook in sorted(notebooks.glob("[0-9][0-9]-*.ipynb")):
        link = target / notebook.name
        relative = Path(os.path.relpath(notebook, target))
        if link.is_symlink() and Path(os.readlink(link)) == relative:
            made.append(link)
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(relative)
        made.append(link)
    return made
