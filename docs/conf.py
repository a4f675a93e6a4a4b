"""Sphinx configuration of the linking_toolkit site: `make docs` builds it (warnings are errors).

Nothing here reaches the network: intersphinx is off, notebooks are rendered from their committed
outputs (never executed), and the command-line pages run the commands' own ``--help`` locally.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

from api_pages import canonical_paths, write_api_page  # noqa: E402
from tutorials_links import link_tutorials  # noqa: E402

project = "linking_toolkit"
author = "the linking_toolkit authors"
copyright = "the linking_toolkit authors"

extensions = [
    "myst_nb",                      # MyST markdown pages and .ipynb notebooks (myst_parser inside)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",          # numpydoc-style docstrings
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "linking_docs",                 # command-help and frame-columns directives (docs/_ext)
]

# The tutorials are notebooks/*.ipynb, linked (not copied) into docs/tutorials/ at each build, so a new
# notebook appears without a docs change and no notebook exists twice in the repository.
link_tutorials(DOCS.parent / "notebooks", DOCS / "tutorials")

# The API page lists every public module (each one's names are its __all__), found by walking the
# package, so a new module is documented without a docs change.
write_api_page(DOCS / "reference" / "api.rst")

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "jupyter_execute"]
templates_path = ["_templates"]
html_static_path = ["_static"]

# Notebooks: committed outputs only. Widget outputs have no saved state (the Makefile does not store
# it), so their text form is shown instead of an empty widget area.
nb_execution_mode = "off"
nb_mime_priority_overrides = [
    ("html", "application/vnd.jupyter.widget-view+json", None),
    ("html", "application/vnd.jupyter.widget-state+json", None),
]
nb_output_stderr = "show"
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist", "substitution"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # notebook markdown may start at level 2 after a title cell

# The API reference: autosummary writes one page per public name from each module's __all__.
autosummary_generate = True
autosummary_imported_members = True
autosummary_ignore_module_all = False
# The module template documents only the names whose page is in that module (see _ext/api_pages.py).
autosummary_context = {"canonical": canonical_paths()}
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

# Every reference must resolve: a renamed function fails the build. Types from outside the project
# (pandas, httpx2, the standard library) cannot resolve without intersphinx, which would need the
# network, so those targets are listed as known-external instead.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(pd|pandas|np|numpy|pa|pyarrow|duckdb|httpx2?|ipywidgets|widgets|matplotlib|flask|"
               r"authlib|joserfc|splink|pyspark|datetime|pathlib|collections|typing|enum|os|io|"
               r"threading|concurrent|asyncio|argparse|logging|sqlite3|types|dataclasses|werkzeug|"
               r"json|ssl|socket|queue|subprocess|tqdm|filelock|platformdirs|trustme)(\..*)?"),
    (r"py:.*", r"(Any|Callable|Iterable|Iterator|Mapping|Sequence|MutableMapping|Literal|Self|TypeVar|"
               r"Awaitable|Generator|Path|datetime|timedelta|Enum|IntEnum|StrEnum|Exception|"
               r"BaseException|Warning|UserWarning|RuntimeError|ValueError|TimeoutError|OSError|"
               r"Map|Rule|Future|Thread|Event|Lock|TextIO|BinaryIO|IO|DataFrame|Series|Styler|Figure|Axes|"
               r"NDArray|Request|Response|Client|Flask|Blueprint|Connection|ArgumentParser|Namespace|"
               r"PathLike|Protocol|NamedTuple|ClassVar|Final|Iterable\[.*\]|.*\[.*\])"),
    (r"py:.*", r"(.*\.)?_\w+(\..*)?"),  # a private name (an annotation's): documented nowhere on purpose
    (r"py:.*", r"(t|random|http|contextlib|_thread|_duckdb|weakref|hashlib|secrets|functools)\..*"),
    (r"py:class", r"(str|int|float|bool|bytes|dict|list|tuple|set|frozenset|object|type|None|"
                  r"NoneType|function|method|property|ellipsis)"),
]

html_theme = "pydata_sphinx_theme"
html_title = "linking_toolkit"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": [],
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
html_last_updated_fmt = None
