"""Notebook widgets: the identities table with Unlink buttons, the login prompt, the audit table.

Core ipywidgets only, so they work alike in JupyterLab, VS Code and Colab. A widget only arranges
and calls: the HTTP lives in ``login_flows``, ``linking``, ``management`` and ``audit``. Every
button can be pressed from Python (``press_unlink``, ``confirm``, ``press_link``...) and every
state read back (``rows``, ``message``, ``busy``), so tests drive the widgets without a browser.

- ``login_prompt.py``: :class:`LoginPrompt`, and :func:`start_login`, which shows one in a notebook;
- ``identity_table.py``: :class:`IdentityTable`;
- ``audit_table.py``: :class:`AuditTable`, with ``audit_filters.py`` (its dropdowns and their mask) and
  ``audit_feedback.py`` (what its buttons answer, shown above the rows);
- ``_worker.py``: the background worker, the confirm box and the error line they share.
"""

from .audit_table import AuditTable
from .identity_table import IdentityTable
from .login_prompt import LoginPrompt, start_login

__all__ = ["AuditTable", "IdentityTable", "LoginPrompt", "start_login"]
