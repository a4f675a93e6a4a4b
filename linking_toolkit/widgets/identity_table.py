"""``IdentityTable``: a user's identities as a table, one Unlink button per linked account.

A widget only arranges and calls: logins are :mod:`linking_toolkit.login_flows`, links and
unlinks :mod:`linking_toolkit.linking`. Every button can be pressed from Python and every state
read back, so tests drive the table without a browser. No widget trait ever holds a token, a
secret or a password, because widget state can be saved into a notebook.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import pandas as pd
from ipywidgets.widgets.widget_string import HTMLStyle

from ..errors import LoginCancelled
from ..identities import Identity, identities_frame, identities_of
from ..linking import link, unlink
from ..login_flows import Method, PendingLogin, begin_login
from ..tokens import Session
from ._worker import BackgroundWorker, ConfirmBox, WorkerStatus, readable_grid, show_nothing
from .login_prompt import LoginPrompt

__all__ = ["IdentityTable"]

_COLUMNS = ("connection", "provider", "name", "email", "verified", "primary")


def _cell_text(value: Any) -> str:
    if value is None or value is pd.NA:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _cell_html(value: Any) -> str:
    """A cell's value for an HTML cell (which wraps; a Label clips): the text, escaped."""
    return html.escape(_cell_text(value))


class _Shared:
    """One layout and one style for all cells and buttons of a table: a widget made without them
    makes two more widgets of its own, which tripled the time to build a table of 50 rows."""

    def __init__(self) -> None:
        self.cell_layout = widgets.Layout()
        self.cell_style = HTMLStyle()
        self.button_layout = widgets.Layout(width="auto")
        self.button_style = widgets.ButtonStyle()


class _Row:
    """The widgets of one identity's row, kept and updated in place across redraws."""

    def __init__(self, key: str, row: dict[str, Any], on_unlink: Callable[[str], None],
                 shared: _Shared) -> None:
        self.key = key
        self.shared = shared
        # Made with their text: setting it afterwards would cost one more change event per cell.
        self.cells = [widgets.HTML(_cell_html(row[column]), layout=shared.cell_layout,
                                   style=shared.cell_style) for column in _COLUMNS]
        self.unlink_button = widgets.Button(description="Unlink", icon="unlink", button_style="warning",
                                            layout=shared.button_layout, style=shared.button_style)
        self.unlink_button.on_click(lambda _button: on_unlink(self.key))
        self.primary_label: widgets.HTML | None = None  # made only for the main identity's row
        self.primary = False

    def update(self, row: dict[str, Any]) -> None:
        for cell, column in zip(self.cells, _COLUMNS, strict=True):
            text = _cell_html(row[column])
            if cell.value != text:
                cell.value = text
        self.primary = bool(row["primary"])
        self.unlink_button.tooltip = f"Unlink {row['connection']} ({_cell_text(row['email'])})"

    @property
    def grid_cells(self) -> list[widgets.Widget]:
        if not self.primary:
            return [*self.cells, self.unlink_button]
        if self.primary_label is None:
            self.primary_label = widgets.HTML("main account", layout=self.shared.cell_layout,
                                              style=self.shared.cell_style)
        return [*self.cells, self.primary_label]


class IdentityTable(WorkerStatus, widgets.VBox):
    """A user's identities as a table: one Unlink button per linked account, and a Link button.

    Built from :func:`~linking_toolkit.identities_frame` of ``session.profile``: connection,
    provider, name, email, verified, primary. The main identity has no Unlink button (Auth0 cannot
    remove it). **Link another account** runs a ``purpose="linking"`` login (the device flow by
    default, the connection picked in the list) and links the result. An unlink asks for a
    confirmation first. While a request runs every button is disabled; after it the table redraws
    from the tenant's answer, with no second request. Errors appear in the message area in the
    tenant's words.

    Driven from Python the same way: ``press_unlink(i)`` then ``confirm()``; ``press_link()`` then
    approve the login; ``wait_idle()``; read ``rows``, ``message`` and ``busy``.

    Examples
    --------
    >>> table = IdentityTable(primary)       # doctest: +SKIP
    >>> table                                # doctest: +SKIP
    """

    def __init__(self, session: Session, *, method: Method = "device",
                 connections: Sequence[str] | None = None, login_timeout: float = 300.0,
                 **kwargs: Any) -> None:
        self.session = session
        self.method: Method = method
        self.login_timeout = login_timeout
        self.pending_login: PendingLogin | None = None
        self._rows: dict[str, _Row] = {}
        self._shared = _Shared()
        self._order: list[str] = []
        self._identities: dict[str, Identity] = {}
        self._frame = identities_frame({})
        self._to_unlink: str | None = None
        self._confirmation_plain = ""
        self._login_started = threading.Event()

        self.title = widgets.HTML()
        self.grid = widgets.GridBox(layout=widgets.Layout(
            grid_template_columns=f"repeat({len(_COLUMNS)}, auto) max-content", grid_gap="4px 16px"))
        # provider, verified and primary never wrap; connections, names and emails wrap, never clip.
        self.grid_style = readable_grid(self.grid, "lt-identity-grid", len(_COLUMNS) + 1, whole=(2, 5, 6, 7))
        self._header = [widgets.HTML(f"<b>{name}</b>") for name in _COLUMNS] + [widgets.HTML("")]
        choices = list(connections if connections is not None else session.tenant.connections)
        # "Connection:" read whole; the value is set by refresh(), on one the user can link.
        self.connection_picker = widgets.Dropdown(options=choices, value=choices[0] if choices else None,
                                                  description="Connection:",
                                                  style={"description_width": "initial"})
        if not choices:  # a real tenant whose connections were not given: the login page lists them
            self.connection_picker.layout.display = "none"
        self.link_button = widgets.Button(description="Link another account", icon="link",
                                          button_style="primary", layout=widgets.Layout(width="auto"))
        self.link_button.on_click(lambda _button: self.press_link())
        self.prompt_area = widgets.VBox()
        self.confirm_box = ConfirmBox(self._confirm_clicked, self.cancel)
        self.confirm_text = self.confirm_box.text
        self.confirm_button = self.confirm_box.confirm_button
        self.cancel_button = self.confirm_box.cancel_button
        self.message_area = widgets.HTML()
        self.worker = BackgroundWorker(self.message_area, set_disabled=self._set_disabled,
                                       after=self._after_action, thread_name="identity-table")
        super().__init__([self.title, self.grid_style, self.grid, self.confirm_box,
                          widgets.HBox([self.connection_picker, self.link_button]),
                          self.prompt_area, self.message_area], **kwargs)
        self.refresh()

    # -- what the table shows --------------------------------------------------------------------

    @property
    def frame(self) -> pd.DataFrame:
        """The identities as :func:`identities_frame` gives them (a copy)."""
        return self._frame.copy()

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One dict per row, in display order: connection, provider, user_id, name, email,
        verified, primary (missing values are None)."""
        out = []
        for record in self._frame.to_dict("records"):
            row = {
                "connection": record["connection"], "provider": record["provider"],
                "user_id": record["user_id"], "name": record["name"], "email": record["email"],
                "verified": record["email_verified"], "primary": record["is_primary"],
            }
            out.append({k: (None if v is pd.NA else v) for k, v in row.items()})
        return out

    @property
    def unlink_buttons(self) -> list[widgets.Button | None]:
        """Each row's Unlink button, in row order; None on the main identity's row."""
        return [None if self._rows[key].primary else self._rows[key].unlink_button for key in self._order]

    @property
    def confirmation(self) -> str | None:
        """The question waiting for Confirm/Cancel, if any."""
        return self._confirmation_plain if self._to_unlink else None

    def refresh(self) -> None:
        """Redraw from ``session.profile`` as it is now (no request): after a ``link()`` or
        ``unlink()`` called outside the table, for instance."""
        profile = self.session.profile
        self._frame = identities_frame(profile)
        keys = []
        self._identities = {}
        for identity, record in zip(identities_of(profile), self.rows, strict=True):
            key = identity.full_id
            keys.append(key)
            self._identities[key] = identity
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = _Row(key, record, self._unlink_clicked, self._shared)
            row.update(record)
        for gone in set(self._rows) - set(keys):
            del self._rows[gone]
        self._order = keys
        email = profile.get("email") or self.session.claims.get("email") or ""
        self.title.value = (f"<b>Identities of {html.escape(str(email))}</b> "
                            f"<code>{html.escape(self.session.user_id)}</code>")
        children: list[widgets.Widget] = list(self._header)
        for key in keys:
            children.extend(self._rows[key].grid_cells)
        self.grid.children = tuple(children)
        self._pick_unheld()
        self._set_disabled(self.worker.busy)

    def _pick_unheld(self) -> None:
        """Move the Connection list off a connection the user already holds (their own database
        connection is first in a tenant's list): to the first they do not hold, if any."""
        held = {identity.connection for identity in self._identities.values()}
        if self.connection_picker.value in held:
            options = self.connection_picker.options
            self.connection_picker.value = next((c for c in options if c not in held), options[0])

    # -- what a person (or a test) does ----------------------------------------------------------------

    def press_unlink(self, row: int | str) -> None:
        """Press a row's Unlink button (``row``: its index in ``rows``, or ``provider|user_id``).

        Nothing is sent yet: the table asks for a confirmation (``confirm()`` or ``cancel()``).
        """
        key = self._key(row)
        if self._rows[key].primary:
            raise ValueError("the main identity has no Unlink button: it cannot be unlinked")
        if self.worker.busy:
            return
        record = self.rows[self._order.index(key)]
        self._to_unlink = key
        who = record["email"] or record["name"] or key
        self._confirmation_plain = (f"Unlink the {record['connection']} account {who}? "
                                    f"It becomes a separate user again.")
        self.confirm_box.ask(self._confirmation_plain)
        self.worker.say("")

    def confirm(self) -> None:
        """Confirm the unlink asked for: it runs in the background; ``wait_idle()`` waits for it."""
        key = self._to_unlink
        if key is None:
            raise RuntimeError("there is no unlink to confirm: press a row's Unlink button first")
        self._hide_confirmation()
        identity = self._identities[key]
        self.worker.run(lambda: self._unlink(identity))

    def cancel(self) -> None:
        """Answer No to the confirmation: nothing is unlinked."""
        if self._to_unlink is None:
            return
        self._hide_confirmation()
        self.worker.say("Nothing was unlinked.")

    def press_link(self, connection: str | None = None) -> None:
        """Press **Link another account**: start a linking login (``connection`` defaults to the
        one picked in the list), then link the account once it is approved. Returns at once;
        ``wait_for_login()`` gives the :class:`PendingLogin` (its ``user_code``), ``wait_idle()``
        waits for the link."""
        if self.worker.busy:
            return
        if connection is not None:
            self.connection_picker.value = connection
        chosen = self.connection_picker.value
        self._hide_confirmation()
        self._login_started.clear()
        self.pending_login = None
        self.worker.run(lambda: self._link(chosen))

    def wait_for_login(self, timeout: float | None = None) -> PendingLogin:
        """Wait until the linking login has started and return it (tests approve its code)."""
        if not self._login_started.wait(timeout) or self.pending_login is None:
            raise TimeoutError(f"no linking login started within {timeout} s ({self.message})")
        return self.pending_login

    # A browser sends a double click as two clicks, the second after the first already acted: the
    # buttons then ignore what the Python methods would refuse, so no traceback reaches the page.

    def _confirm_clicked(self) -> None:
        if self._to_unlink is not None:
            self.confirm()

    def _unlink_clicked(self, key: str) -> None:
        if key in self._order and not self._rows[key].primary:
            self.press_unlink(key)

    # -- the work, in the worker's thread ------------------------------------------------------

    def _after_action(self) -> None:
        self._login_started.set()  # a login that failed before it started must not leave waiters
        self.refresh()

    def _unlink(self, identity: Identity) -> str:
        unlink(self.session, identity)
        return (f"Unlinked {identity.connection} ({identity.full_id}): it is a separate user again, "
                f"without the metadata it had before the link.")

    def _link(self, connection: str | None) -> str:
        pending = begin_login(self.session.tenant, method=self.method, connection=connection,
                              purpose="linking", timeout=self.login_timeout, show=show_nothing)
        self.pending_login = pending
        self.prompt_area.children = (LoginPrompt(pending),)
        if self.method == "device" and connection:
            self.worker.say(f"Open the link and choose {connection} on the login page.")
        self._login_started.set()
        try:
            secondary = pending.result()
        except LoginCancelled:
            return "The login was cancelled: nothing was linked."
        finally:
            self.prompt_area.children = ()
        try:
            identities = link(self.session, secondary)
        finally:
            secondary.close()  # the secondary's own connection pool
        added = next((i for i in identities if i.full_id == secondary.user_id), None)
        name = added.connection if added else secondary.user_id
        return f"Linked the {name} account ({secondary.user_id})."

    # -- small helpers ------------------------------------------------------------------------------

    def _key(self, row: int | str) -> str:
        if isinstance(row, int):
            if not 0 <= row < len(self._order):
                raise IndexError(f"row {row} is not in the table (it has {len(self._order)} rows)")
            return self._order[row]
        if row not in self._rows:
            raise KeyError(f"{row!r} is not an identity of this user")
        return row

    def _hide_confirmation(self) -> None:
        self._to_unlink = None
        self.confirm_box.hide()

    def _set_disabled(self, disabled: bool) -> None:
        self.link_button.disabled = disabled
        self.connection_picker.disabled = disabled
        self.confirm_button.disabled = disabled
        for row in self._rows.values():
            row.unlink_button.disabled = disabled

    def __repr__(self) -> str:
        # The plain-text form a saved notebook shows before the cell runs: what to do, whose table,
        # how many rows; nothing that varies between runs, never a token.
        who = self.session.profile.get("email") or self.session.claims.get("email") or self.session.user_id
        count = len(self._order)
        return (f"Identity table of {who}: run this cell to see it "
                f"({count} {'identity' if count == 1 else 'identities'})")
