"""What the widgets share: one background action at a time, the message area, the confirm box,
and how a table's cells show long values.

Network work runs in a background thread: a login may wait minutes for a person to approve it,
and a widget callback must never block the kernel. Errors reach the person as one line in the
tenant's words, never as a traceback.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..errors import Auth0Error

__all__ = [
    "ERROR_STYLE",
    "OK_STYLE",
    "BackgroundWorker",
    "ConfirmBox",
    "WorkerStatus",
    "describe_error",
    "readable_grid",
    "show_nothing",
]

logger = logging.getLogger("linking_toolkit.widgets")

ERROR_STYLE = "color:#b00020"
OK_STYLE = "color:#1b5e20"


def describe_error(exc: BaseException) -> str:
    """An exception as one line for a person: the tenant's own words, never a traceback."""
    if isinstance(exc, Auth0Error):
        return str(exc)
    # Not expected. Debug level: Python's last-resort handler would print WARNING and above, with
    # the traceback, into the notebook.
    logger.debug("unexpected error in a widget action", exc_info=exc)
    return f"Something went wrong: {type(exc).__name__}: {exc}"


def show_nothing(text: str, url: str | None) -> None:
    """A login's ``show`` for a widget that shows the link itself (a LoginPrompt)."""


class BackgroundWorker:
    """One action at a time, in a background thread, for a widget.

    ``set_disabled(True)`` runs while the action does (a network call, or a login waiting for a
    person), ``after()`` once it ended; then the outcome, or the error in the tenant's words, goes
    to ``message_area``. A notebook cell or a button callback returns at once; ``wait_idle()``
    waits for the action.
    """

    def __init__(self, message_area: widgets.HTML, *, set_disabled: Callable[[bool], None],
                 after: Callable[[], None] | None = None, thread_name: str) -> None:
        self.message_area = message_area
        self.set_disabled = set_disabled
        self.after = after
        self.thread_name = thread_name
        self.message = ""
        self._busy = False
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    @property
    def busy(self) -> bool:
        """True while an action runs."""
        return self._busy

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for the running action to end; True if idle."""
        return self._idle.wait(timeout)

    def run(self, work: Callable[[], str]) -> None:
        """Run ``work`` (which returns the message to show) in the background, unless busy."""
        with self._lock:
            if self._busy:
                return
            self._busy = True
            self._idle.clear()
        self.set_disabled(True)
        self.say("Working…")
        threading.Thread(target=self._work, args=(work,), daemon=True, name=self.thread_name).start()

    def _work(self, work: Callable[[], str]) -> None:
        try:
            message, error = work(), False
        except Exception as exc:
            message, error = describe_error(exc), True
        try:
            if self.after is not None:
                self.after()
        except Exception as exc:  # e.g. a profile the table cannot show: say so, keep the thread quiet
            message, error = describe_error(exc), True
        finally:
            with self._lock:
                self._busy = False
            self.set_disabled(False)
            self.say(message, error=error)
            self._idle.set()

    def say(self, text: str, *, error: bool = False) -> None:
        """Show ``text`` in the message area (red when ``error``)."""
        self.message = text
        style = ERROR_STYLE if error else ""
        self.message_area.value = f"<span style='{style}'>{html.escape(text)}</span>" if text else ""


class WorkerStatus:
    """``message``, ``busy`` and ``wait_idle()`` for a widget whose actions run on ``self.worker``."""

    worker: BackgroundWorker

    @property
    def message(self) -> str:
        """The message area's text (plain)."""
        return self.worker.message

    @property
    def busy(self) -> bool:
        """True while an action runs (its buttons are disabled meanwhile)."""
        return self.worker.busy

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for the running action to end; True if the widget is idle."""
        return self.worker.wait_idle(timeout)


class ConfirmBox(widgets.HBox):
    """A question with Confirm and Cancel, hidden until :meth:`ask` shows it."""

    def __init__(self, on_confirm: Callable[[], None], on_cancel: Callable[[], None], **kwargs: Any) -> None:
        self.text = widgets.HTML()
        self.confirm_button = widgets.Button(description="Confirm", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_button.on_click(lambda _button: on_confirm())
        self.cancel_button.on_click(lambda _button: on_cancel())
        super().__init__([self.text, self.confirm_button, self.cancel_button],
                         layout=widgets.Layout(display="none", align_items="center"), **kwargs)

    def ask(self, question: str) -> None:
        self.text.value = html.escape(question)
        self.layout.display = "flex"

    def hide(self) -> None:
        self.layout.display = "none"
        self.text.value = ""


# A table's cells keep their plain (escaped) values; one stylesheet, scoped to the table's grid,
# decides how they show. Nothing is cut short: a cell wraps where its value may (spaces, hyphens,
# the ``|`` of a user id), never inside an email or an id's hex, and the row grows taller. Columns
# are as wide as their content while the window allows (``auto`` tracks, packed to the left); when
# the window is narrower than even the wrapped table, the grid scrolls sideways in its own box,
# every value still whole (ipywidgets' GridBox has overflow: auto).
# Why wrapping rather than a tooltip or a details row: every value stays on the page, whole, to
# read, compare down a column and copy, at any width and in a screenshot; a tooltip needs a mouse
# and shows one value at a time; a details row costs a click per row. Why not wrap anywhere: an
# email broken into pieces of four letters cannot be read; a sideways scroll keeps it readable.
_GRID_CSS = """
.{name} {{ justify-content: start; align-items: start; }}
.{name} > .widget-html > .widget-html-content,
.{name} > .jupyter-widget-html > .jupyter-widget-html-content {{
  line-height: 1.35; padding: 5px 0; }}
.{name} > :nth-child(-n+{columns}) > .widget-html-content,
.{name} > :nth-child(-n+{columns}) > .jupyter-widget-html-content{whole} {{
  white-space: nowrap; }}
"""


def readable_grid(grid: widgets.GridBox, name: str, columns: int,
                  whole: tuple[int, ...] = ()) -> widgets.HTML:
    """Style ``grid`` (``columns`` cells a row, the first row its header) so no cell cuts its value
    short; the cells of the columns numbered in ``whole`` (from 1) never wrap. Returns the
    stylesheet, a widget to place beside the grid."""
    grid.add_class(name)
    keep = "".join(f",\n.{name} > :nth-child({columns}n+{c}) > .widget-html-content,"
                   f"\n.{name} > :nth-child({columns}n+{c}) > .jupyter-widget-html-content" for c in whole)
    style = widgets.HTML(f"<style>{_GRID_CSS.format(name=name, columns=columns, whole=keep)}</style>")
    style.layout.display = "none"
    return style
