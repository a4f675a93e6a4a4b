"""Notebook widgets: the user's identities as a table with Unlink buttons, and the login prompt.

Core ipywidgets only, so they work alike in JupyterLab, VS Code and Colab. A widget only arranges
and calls: the HTTP lives in ``login.py`` and ``management.py``. Every button can be pressed from
Python (``press_unlink``, ``confirm``, ``press_link``...) and every state read back (``rows``,
``message``, ``busy``), so tests drive the widgets without a browser.

Network work runs in a background thread: a login may wait minutes for a person to approve it,
and a widget callback must never block the kernel. No widget trait ever holds a token, a secret or
a password, because widget state can be saved into a notebook.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import pandas as pd
from ipywidgets.widgets.widget_string import LabelStyle

from .errors import Auth0Error, LoginCancelled
from .identities import Identity, identities_frame, identities_of
from .login import Method, PendingLogin, start_login
from .management import link, unlink
from .tenant import Tenant
from .tokens import Purpose, Session

__all__ = ["IdentityTable", "LoginPrompt"]

logger = logging.getLogger("linking_toolkit.widgets")

_ERROR_STYLE = "color:#b00020"
_OK_STYLE = "color:#1b5e20"


def _describe_error(exc: BaseException) -> str:
    """An exception as one line for a person: the tenant's own words, never a traceback."""
    if isinstance(exc, Auth0Error):
        return str(exc)
    # Not expected. Debug level: Python's last-resort handler would print WARNING and above, with
    # the traceback, into the notebook.
    logger.debug("unexpected error in a widget action", exc_info=exc)
    return f"Something went wrong: {type(exc).__name__}: {exc}"


# -- the login prompt ------------------------------------------------------------------------------


class LoginPrompt(widgets.VBox):
    """A login under way, as a person sees it: the link, the code, a countdown and Cancel.

    It wraps a :class:`~linking_toolkit.login.PendingLogin`: the device flow shows the link to open
    and the code to check on that page; the browser and paste flows show the authorization link
    (paste adds a box for the address the browser ends on). ``result()`` waits for the session.

    Examples
    --------
    >>> prompt = LoginPrompt.start(tenant, purpose="linking")     # doctest: +SKIP
    >>> prompt                                                     # doctest: +SKIP
    >>> secondary = prompt.result(timeout=300)                     # doctest: +SKIP
    """

    def __init__(self, pending: PendingLogin, **kwargs: Any) -> None:
        self.pending = pending
        self.title = widgets.HTML()
        self.link = widgets.HTML()
        self.code = widgets.HTML()
        self.countdown = widgets.Label()
        self.cancel_button = widgets.Button(description="Cancel", icon="times",
                                            tooltip="Stop waiting for this login")
        self.paste_box = widgets.Text(placeholder="http://127.0.0.1/callback?code=...",
                                      description="Address:", layout=widgets.Layout(width="60%"))
        self.paste_button = widgets.Button(description="Finish login")
        self.status = widgets.HTML()
        self.cancel_button.on_click(lambda _button: self.press_cancel())
        self.paste_button.on_click(lambda _button: self.press_finish())
        self._deadline = time.monotonic() + float(pending.expires_in or 0)
        self._stop = threading.Event()

        who = "the account to link" if pending.purpose == "linking" else "your account"
        self.title.value = f"<b>Log in to {html.escape(who)}</b>"
        url = pending.verification_uri_complete or pending.verification_uri or pending.authorize_url or ""
        # An authorization URL is a screenful of parameters: name it instead of printing it.
        text = "the tenant's login page" if url == pending.authorize_url else url
        # Styled inline: JupyterLab's widget HTML does not make links look like links.
        self.link.value = (f"Open <a href='{html.escape(url)}' target='_blank' rel='noopener' "
                           f"style='color:#1565c0;text-decoration:underline'>{html.escape(text)}</a>")
        parts: list[widgets.Widget] = [self.title, self.link]
        if pending.user_code:
            self.code.value = (f"and check that the page shows the code "
                               f"<code style='font-size:1.2em'>{html.escape(pending.user_code)}</code>")
            parts.append(self.code)
        if pending.method == "paste":
            parts.append(widgets.HBox([self.paste_box, self.paste_button]))
        parts += [widgets.HBox([self.countdown, self.cancel_button]), self.status]
        super().__init__(parts, **kwargs)
        self._tick()
        pending.add_done_callback(self._finished)
        if pending.expires_in and not pending.done():
            threading.Thread(target=self._count_down, daemon=True, name="login-prompt-countdown").start()

    @classmethod
    def start(cls, tenant: Tenant, *, method: Method = "device", connection: str | None = None,
              purpose: Purpose = "login", timeout: float = 300.0) -> LoginPrompt:
        """Start a login (see :func:`~linking_toolkit.start_login`) and return its prompt.

        The link is shown by this widget, so nothing else is printed; a ``browser`` login still
        opens the system browser when there is one.
        """
        pending = start_login(tenant, method=method, connection=connection, purpose=purpose,
                              timeout=timeout, show=lambda _text, _url: None)
        return cls(pending)

    # -- what a person (or a test) does ------------------------------------------------------------

    @property
    def seconds_left(self) -> int:
        """Seconds until the device code expires (0 once expired or for logins without a code)."""
        if not self.pending.expires_in:
            return 0
        return max(0, int(self._deadline - time.monotonic()))

    def press_cancel(self) -> None:
        """Cancel the login: the poller stops and ``result()`` raises LoginCancelled."""
        self.pending.cancel()

    def press_finish(self) -> None:
        """Finish a paste login with the address in the box (the code exchange runs in a thread).

        An empty box or a second click (a double click) does nothing: either would end the login
        with a state error while the right address is, or is about to be, on its way.
        """
        if self.paste_button.disabled or self.pending.done():
            return
        address = self.paste_box.value.strip()
        if not address:
            self.status.value = "Paste the address your browser ended on, then press Finish login."
            return
        self.paste_box.value = ""  # the address holds a one-time code: do not keep it in the state
        self.paste_button.disabled = True
        threading.Thread(target=self._complete, args=(address,), daemon=True,
                         name="login-prompt-paste").start()

    def result(self, timeout: float | None = None) -> Session:
        """Wait for the login to end and return its :class:`Session` (or raise its error)."""
        return self.pending.result(timeout)

    # -- updating the display ------------------------------------------------------------------------

    def _complete(self, address: str) -> None:
        try:
            self.pending.complete(address)
        except Auth0Error:
            pass  # the pending login holds the error; _finished shows it
        finally:
            self.paste_button.disabled = self.pending.done()

    def _tick(self) -> None:
        left = self.seconds_left
        if self.pending.expires_in:
            self.countdown.value = f"The code expires in {left // 60}:{left % 60:02d}"

    def _count_down(self) -> None:
        while not self._stop.wait(1.0):
            self._tick()
            if self.seconds_left <= 0:
                return

    def _finished(self, pending: PendingLogin) -> None:
        self._stop.set()
        self.cancel_button.disabled = True
        self.paste_button.disabled = True
        self.countdown.value = ""
        if pending.status == "done":
            session = pending.result(0)
            who = session.profile.get("email") or session.user_id
            self.status.value = f"<span style='{_OK_STYLE}'>Logged in as {html.escape(str(who))}.</span>"
        elif pending.status == "cancelled":
            self.status.value = "The login was cancelled."
        else:
            message = _describe_error(pending.error) if pending.error else "The login failed."
            self.status.value = f"<span style='{_ERROR_STYLE}'>{html.escape(message)}</span>"

    def __repr__(self) -> str:
        # The plain-text form lands in notebook outputs: no code, no link, nothing that varies.
        return f"<LoginPrompt {self.pending.method} login ({self.pending.purpose})>"


# -- the identity table ------------------------------------------------------------------------


_COLUMNS = ("connection", "provider", "name", "email", "verified", "primary")


def _cell_text(value: Any) -> str:
    if value is None or value is pd.NA:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class _Shared:
    """One layout and one style for all cells and buttons of a table: a widget made without them
    makes two more widgets of its own, which tripled the time to build a table of 50 rows."""

    def __init__(self) -> None:
        self.cell_layout = widgets.Layout()
        self.cell_style = LabelStyle()
        self.button_layout = widgets.Layout(width="auto")
        self.button_style = widgets.ButtonStyle()


class _Row:
    """The widgets of one identity's row, kept and updated in place across redraws."""

    def __init__(self, key: str, row: dict[str, Any], on_unlink: Callable[[str], None],
                 shared: _Shared) -> None:
        self.key = key
        self.shared = shared
        # Made with their text: setting it afterwards would cost one more change event per cell.
        self.cells = [widgets.Label(_cell_text(row[column]), layout=shared.cell_layout,
                                    style=shared.cell_style) for column in _COLUMNS]
        self.unlink_button = widgets.Button(description="Unlink", icon="unlink", button_style="warning",
                                            layout=shared.button_layout, style=shared.button_style)
        self.unlink_button.on_click(lambda _button: on_unlink(self.key))
        self.primary_label: widgets.Label | None = None  # made only for the main identity's row
        self.primary = False

    def update(self, row: dict[str, Any]) -> None:
        for cell, column in zip(self.cells, _COLUMNS, strict=True):
            text = _cell_text(row[column])
            if cell.value != text:
                cell.value = text
        self.primary = bool(row["primary"])
        self.unlink_button.tooltip = f"Unlink {row['connection']} ({_cell_text(row['email'])})"

    @property
    def grid_cells(self) -> list[widgets.Widget]:
        if not self.primary:
            return [*self.cells, self.unlink_button]
        if self.primary_label is None:
            self.primary_label = widgets.Label("main account", layout=self.shared.cell_layout,
                                               style=self.shared.cell_style)
        return [*self.cells, self.primary_label]


class _BackgroundActions:
    """One action at a time, in a background thread, for a table widget.

    The buttons are disabled while it runs (a network call, or a login waiting for a person), and
    the outcome, or the error in the tenant's words, goes to the message area. A notebook cell or a
    button callback returns at once; ``wait_idle()`` waits for the action.
    """

    message_area: widgets.HTML
    _thread_name = "table-action"

    def _init_actions(self) -> None:
        self._message = ""
        self._busy = False
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    @property
    def busy(self) -> bool:
        """True while an action runs (every button is disabled meanwhile)."""
        return self._busy

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for the running action to end; True if the table is idle."""
        return self._idle.wait(timeout)

    def _set_disabled(self, disabled: bool) -> None:
        raise NotImplementedError

    def _after_action(self) -> None:
        """Runs in the worker once the action ended, before the buttons come back."""

    def _run(self, work: Callable[[], str]) -> None:
        with self._lock:
            if self._busy:
                return
            self._busy = True
            self._idle.clear()
        self._set_disabled(True)
        self._say("Working…")
        threading.Thread(target=self._worker, args=(work,), daemon=True, name=self._thread_name).start()

    def _worker(self, work: Callable[[], str]) -> None:
        try:
            message, error = work(), False
        except Exception as exc:
            message, error = _describe_error(exc), True
        try:
            self._after_action()
        except Exception as exc:  # e.g. a profile the table cannot show: say so, keep the thread quiet
            message, error = _describe_error(exc), True
        finally:
            with self._lock:
                self._busy = False
            self._set_disabled(False)
            self._say(message, error=error)
            self._idle.set()

    def _say(self, text: str, *, error: bool = False) -> None:
        self._message = text
        style = _ERROR_STYLE if error else ""
        self.message_area.value = f"<span style='{style}'>{html.escape(text)}</span>" if text else ""


class IdentityTable(_BackgroundActions, widgets.VBox):
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
        self._init_actions()
        self._login_started = threading.Event()

        self.title = widgets.HTML()
        self.grid = widgets.GridBox(layout=widgets.Layout(
            grid_template_columns=f"repeat({len(_COLUMNS)}, max-content) max-content",
            grid_gap="4px 16px", align_items="center"))
        self._header = [widgets.HTML(f"<b>{name}</b>") for name in _COLUMNS] + [widgets.HTML("")]
        choices = list(connections if connections is not None else session.tenant.connections)
        self.connection_picker = widgets.Dropdown(options=choices, value=choices[0] if choices else None,
                                                  description="Connection:")
        if not choices:  # a real tenant whose connections were not given: the login page lists them
            self.connection_picker.layout.display = "none"
        self.link_button = widgets.Button(description="Link another account", icon="link",
                                          button_style="primary", layout=widgets.Layout(width="auto"))
        self.link_button.on_click(lambda _button: self.press_link())
        self.prompt_area = widgets.VBox()
        self.confirm_text = widgets.HTML()
        self.confirm_button = widgets.Button(description="Confirm", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_button.on_click(lambda _button: self._confirm_clicked())
        self.cancel_button.on_click(lambda _button: self.cancel())
        self.confirm_box = widgets.HBox([self.confirm_text, self.confirm_button, self.cancel_button],
                                        layout=widgets.Layout(display="none", align_items="center"))
        self.message_area = widgets.HTML()
        self._message = ""
        super().__init__([self.title, self.grid, self.confirm_box,
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
    def message(self) -> str:
        """The message area's text (plain)."""
        return self._message

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
        self._set_disabled(self._busy)

    # -- what a person (or a test) does ----------------------------------------------------------------

    def press_unlink(self, row: int | str) -> None:
        """Press a row's Unlink button (``row``: its index in ``rows``, or ``provider|user_id``).

        Nothing is sent yet: the table asks for a confirmation (``confirm()`` or ``cancel()``).
        """
        key = self._key(row)
        if self._rows[key].primary:
            raise ValueError("the main identity has no Unlink button: it cannot be unlinked")
        if self._busy:
            return
        record = self.rows[self._order.index(key)]
        self._to_unlink = key
        who = record["email"] or record["name"] or key
        self._confirmation_plain = (f"Unlink the {record['connection']} account {who}? "
                                    f"It becomes a separate user again.")
        self.confirm_text.value = html.escape(self._confirmation_plain)
        self.confirm_box.layout.display = "flex"
        self._say("")

    def confirm(self) -> None:
        """Confirm the unlink asked for: it runs in the background; ``wait_idle()`` waits for it."""
        key = self._to_unlink
        if key is None:
            raise RuntimeError("there is no unlink to confirm: press a row's Unlink button first")
        self._hide_confirmation()
        identity = self._identities[key]
        self._run(lambda: self._unlink(identity))

    def cancel(self) -> None:
        """Answer No to the confirmation: nothing is unlinked."""
        if self._to_unlink is None:
            return
        self._hide_confirmation()
        self._say("Nothing was unlinked.")

    def press_link(self, connection: str | None = None) -> None:
        """Press **Link another account**: start a linking login (``connection`` defaults to the
        one picked in the list), then link the account once it is approved. Returns at once;
        ``wait_for_login()`` gives the :class:`PendingLogin` (its ``user_code``), ``wait_idle()``
        waits for the link."""
        if self._busy:
            return
        if connection is not None:
            self.connection_picker.value = connection
        chosen = self.connection_picker.value
        self._hide_confirmation()
        self._login_started.clear()
        self.pending_login = None
        self._run(lambda: self._link(chosen))

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

    # -- the work, in a background thread (see _BackgroundActions) ------------------------------

    _thread_name = "identity-table"

    def _after_action(self) -> None:
        self._login_started.set()  # a login that failed before it started must not leave waiters
        self.refresh()

    def _unlink(self, identity: Identity) -> str:
        unlink(self.session, identity)
        return (f"Unlinked {identity.connection} ({identity.full_id}): it is a separate user again, "
                f"without the metadata it had before the link.")

    def _link(self, connection: str | None) -> str:
        pending = start_login(self.session.tenant, method=self.method, connection=connection,
                              purpose="linking", timeout=self.login_timeout,
                              show=lambda _text, _url: None)
        self.pending_login = pending
        prompt = LoginPrompt(pending)
        self.prompt_area.children = (prompt,)
        if self.method == "device" and connection:
            self._say(f"Open the link and choose {connection} on the login page.")
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
            if secondary._management is not None:  # the secondary's own connection pool
                secondary._management.close()
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
        self.confirm_box.layout.display = "none"
        self.confirm_text.value = ""

    def _set_disabled(self, disabled: bool) -> None:
        self.link_button.disabled = disabled
        self.connection_picker.disabled = disabled
        self.confirm_button.disabled = disabled
        for row in self._rows.values():
            row.unlink_button.disabled = disabled

    def __repr__(self) -> str:
        # The plain-text form lands in notebook outputs: who and how many, nothing that varies.
        return f"<IdentityTable {self.session.user_id}: {len(self._order)} identities>"


# -- the audit's candidates ------------------------------------------------------------------------


_AUDIT_COLUMNS = ("email", "users", "primary_id", "connections", "risk", "last_login")
_ALL = "(all)"


def _np() -> Any:
    import numpy  # the audit table's positions; imported here so the module's imports stay H4's

    return numpy


def _audit_cell(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return "—"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


class AuditTable(_BackgroundActions, widgets.VBox):
    """Link candidates in pages of 25: filter by risk and connection, select rows into a plan, dry
    run it, apply it after a confirmation.

    Paging only slices the filtered positions (``iloc``) and redraws 25 reused rows, so a frame of
    a million candidates pages as fast as one of ten; a filter is one vectorised mask. Applying
    goes through :func:`~linking_toolkit.audit.apply_plan` with the journal given here, so
    :func:`~linking_toolkit.audit.undo` can reverse it. Unsafe rows are refused unless "allow the
    unsafe rows I selected" is ticked: each was picked by hand, row by row.

    Driven from Python too: ``set_filter(risk=..., connection=...)``, ``next_page()``,
    ``select(labels)`` / ``select_page()``, ``press_dry_run()``, ``press_apply()`` then
    ``confirm()``, ``wait_idle()``; read ``page_frame``, ``plan``, ``result`` and ``message``.

    Examples
    --------
    >>> table = AuditTable(candidates, admin, audit=result, journal="links.jsonl")  # doctest: +SKIP
    >>> table                                                                      # doctest: +SKIP
    """

    page_size = 25

    def __init__(self, candidates: pd.DataFrame, client: Any = None, *, audit: Any = None,
                 journal: str | None = None, **kwargs: Any) -> None:
        self.candidates = candidates
        self.client = client
        self.audit = audit
        self.journal = journal
        self.selected: set[Any] = set()
        self.result: pd.DataFrame | None = None
        self._init_actions()
        self._page = 0
        self._positions = _np().arange(len(candidates))
        # Factorised once: a filter is then an isin() on integer codes, not a pass over the strings.
        self._risk_codes, self._risks = pd.factorize(candidates["risk"].astype(str).to_numpy())
        self._connection_codes, self._connection_sets = pd.factorize(candidates["connections"].to_numpy())
        connections = sorted({c.strip() for text in self._connection_sets for c in str(text).split(",")})
        risks = [str(r) for r in candidates["risk"].cat.categories] if hasattr(
            candidates["risk"], "cat") else sorted(candidates["risk"].dropna().unique())
        self.risk_picker = widgets.Dropdown(options=[_ALL, *risks], value=_ALL, description="Risk:")
        self.connection_picker = widgets.Dropdown(options=[_ALL, *connections], value=_ALL,
                                                  description="Connection:")
        self.prev_button = widgets.Button(description="◀", tooltip="previous page",
                                          layout=widgets.Layout(width="40px"))
        self.next_button = widgets.Button(description="▶", tooltip="next page",
                                          layout=widgets.Layout(width="40px"))
        self.page_label = widgets.Label()
        self.select_page_button = widgets.Button(description="Select page")
        self.clear_button = widgets.Button(description="Clear selection")
        self.allow_unsafe_box = widgets.Checkbox(value=False, indent=False,
                                                 description="allow the unsafe rows I selected")
        self.dry_run_button = widgets.Button(description="Dry run", icon="eye")
        self.apply_button = widgets.Button(description="Apply…", icon="link", button_style="warning")
        self.confirm_text = widgets.HTML()
        self.confirm_button = widgets.Button(description="Confirm", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_box = widgets.HBox([self.confirm_text, self.confirm_button, self.cancel_button],
                                        layout=widgets.Layout(display="none"))
        self.message_area = widgets.HTML()
        self.result_area = widgets.HTML()
        cell = widgets.Layout(overflow="hidden")
        self._checks = [widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="28px"))
                        for _ in range(self.page_size)]
        self._cells = [[widgets.HTML(layout=cell) for _ in _AUDIT_COLUMNS] for _ in range(self.page_size)]
        self._page_labels: list[Any] = [None] * self.page_size
        header = [widgets.HTML("<b>✓</b>")] + [widgets.HTML(f"<b>{c}</b>") for c in _AUDIT_COLUMNS]
        self.grid = widgets.GridBox(
            header + [w for check, cells in zip(self._checks, self._cells, strict=True)
                      for w in (check, *cells)],
            layout=widgets.Layout(grid_template_columns="28px 2fr 0.5fr 2fr 2fr 1fr 1fr", grid_gap="2px 8px"))
        for slot, check in enumerate(self._checks):
            check.observe(lambda change, slot=slot: self._toggle(slot, change["new"]), names="value")
        self.risk_picker.observe(lambda _c: self._refilter(), names="value")
        self.connection_picker.observe(lambda _c: self._refilter(), names="value")
        self.prev_button.on_click(lambda _b: self.go_to(self._page - 1))
        self.next_button.on_click(lambda _b: self.go_to(self._page + 1))
        self.select_page_button.on_click(lambda _b: self.select_page())
        self.clear_button.on_click(lambda _b: self.clear_selection())
        self.dry_run_button.on_click(lambda _b: self.press_dry_run())
        self.apply_button.on_click(lambda _b: self.press_apply())
        self.confirm_button.on_click(lambda _b: self.confirm())
        self.cancel_button.on_click(lambda _b: self.cancel())
        super().__init__([
            widgets.HBox([self.risk_picker, self.connection_picker]),
            self.grid,
            widgets.HBox([self.prev_button, self.page_label, self.next_button, self.select_page_button,
                          self.clear_button]),
            widgets.HBox([self.dry_run_button, self.apply_button, self.allow_unsafe_box]),
            self.confirm_box, self.message_area, self.result_area,
        ], **kwargs)
        self._render()

    # -- what a person sees ---------------------------------------------------------------------------

    @property
    def pages(self) -> int:
        return max(1, -(-len(self._positions) // self.page_size))

    @property
    def page(self) -> int:
        return self._page

    @property
    def filtered(self) -> int:
        """How many candidates pass the filters."""
        return len(self._positions)

    @property
    def page_frame(self) -> pd.DataFrame:
        """The rows of the current page (an ``iloc`` slice: never the whole frame)."""
        start = self._page * self.page_size
        return self.candidates.iloc[self._positions[start:start + self.page_size]]

    @property
    def plan(self) -> pd.DataFrame:
        """The selected groups as a link plan (``plan_links``), in the frame's order."""
        from .audit import plan_links

        chosen = self.candidates[self.candidates.index.isin(list(self.selected))]
        plan = plan_links(chosen, self.audit)
        if self.allow_unsafe_box.value:
            plan["allow_unsafe"] = True
        return plan

    @property
    def message(self) -> str:
        return self._message

    # -- actions ------------------------------------------------------------------------------------

    def set_filter(self, *, risk: str | None = None, connection: str | None = None) -> None:
        """Show only one risk and/or one connection (None: all)."""
        with self.hold_trait_notifications():
            self.risk_picker.value = risk or _ALL
            self.connection_picker.value = connection or _ALL
        self._refilter()

    def go_to(self, page: int) -> None:
        self._page = min(max(page, 0), self.pages - 1)
        self._render()

    def next_page(self) -> None:
        self.go_to(self._page + 1)

    def prev_page(self) -> None:
        self.go_to(self._page - 1)

    def select(self, labels: Sequence[Any]) -> None:
        """Add candidate rows (index labels) to the selection."""
        self.selected.update(labels)
        self._render()

    def select_page(self) -> None:
        self.select(list(self.page_frame.index))

    def clear_selection(self) -> None:
        self.selected.clear()
        self._render()

    def press_dry_run(self) -> None:
        """Show what applying the selection would do (reads the tenant; changes nothing)."""
        if not self._can_run():
            return
        plan = self.plan
        self._run(lambda: self._apply(plan, dry_run=True))

    def press_apply(self) -> None:
        """Ask for a confirmation before linking the selection."""
        if not self._can_run():
            return
        if not self.journal:
            self._say("Applying needs a journal: AuditTable(..., journal='links.jsonl').", error=True)
            return
        plan = self.plan
        unsafe = int((plan["risk"].astype(str) != "safe").sum())
        extra = f", {unsafe} of them unsafe and allowed" if unsafe and self.allow_unsafe_box.value else ""
        self.confirm_text.value = html.escape(f"Link {len(plan)} account(s) into their primaries{extra}?")
        self.confirm_box.layout.display = "flex"
        self._pending_plan = plan

    def confirm(self) -> None:
        plan = getattr(self, "_pending_plan", None)
        self._hide_confirmation()
        if plan is not None:
            self._run(lambda: self._apply(plan, dry_run=False))

    def cancel(self) -> None:
        self._hide_confirmation()
        self._say("Nothing was linked.")

    # -- internals ----------------------------------------------------------------------------------

    def _can_run(self) -> bool:
        if self.client is None:
            self._say("No Management client: AuditTable(candidates, client).", error=True)
            return False
        if not self.selected:
            self._say("Select rows first.", error=True)
            return False
        return True

    def _apply(self, plan: pd.DataFrame, *, dry_run: bool) -> str:
        from .audit import apply_plan

        result = apply_plan(self.client, plan, dry_run=dry_run, journal=self.journal)
        self.result = result
        self.result_area.value = result.to_html(index=False, max_rows=50)
        counts = result["status"].value_counts()
        summary = ", ".join(f"{n} {status}" for status, n in counts.items())
        return ("Dry run: " if dry_run else "Applied: ") + (summary or "nothing to do")

    _thread_name = "audit-table"

    def _set_disabled(self, disabled: bool) -> None:
        for button in (self.dry_run_button, self.apply_button):
            button.disabled = disabled

    def _refilter(self) -> None:
        np = _np()
        mask = np.ones(len(self.candidates), dtype=bool)
        if self.risk_picker.value != _ALL:
            wanted = [i for i, risk in enumerate(self._risks) if risk == self.risk_picker.value]
            mask &= np.isin(self._risk_codes, wanted)
        if self.connection_picker.value != _ALL:
            wanted = [i for i, text in enumerate(self._connection_sets)
                      if self.connection_picker.value in str(text).split(", ")]
            mask &= np.isin(self._connection_codes, wanted)
        self._positions = np.flatnonzero(mask)
        self._page = 0
        self._render()

    def _toggle(self, slot: int, value: bool) -> None:
        label = self._page_labels[slot]
        if label is None or self._rendering:
            return
        if value:
            self.selected.add(label)
        else:
            self.selected.discard(label)
        self.page_label.value = self._page_text()

    def _page_text(self) -> str:
        return (f"page {self._page + 1} of {self.pages} · {len(self._positions):,} groups · "
                f"{len(self.selected):,} selected")

    _rendering = False

    def _render(self) -> None:
        frame = self.page_frame
        rows = list(frame[list(_AUDIT_COLUMNS)].itertuples(index=False, name=None))
        labels = list(frame.index)
        self._rendering = True
        try:
            for slot in range(self.page_size):
                visible = slot < len(rows)
                self._page_labels[slot] = labels[slot] if visible else None
                check = self._checks[slot]
                check.value = visible and labels[slot] in self.selected
                check.layout.visibility = "visible" if visible else "hidden"
                for cell, value in zip(self._cells[slot], rows[slot] if visible else [""] * 6, strict=True):
                    text = html.escape(_audit_cell(value)) if visible else ""
                    if cell.value != text:
                        cell.value = text
        finally:
            self._rendering = False
        self.page_label.value = self._page_text()
        self.prev_button.disabled = self._page == 0
        self.next_button.disabled = self._page >= self.pages - 1

    def _hide_confirmation(self) -> None:
        self.confirm_box.layout.display = "none"
        self.confirm_text.value = ""

    def to_html(self) -> str:
        """The current page as a static HTML table (for a report; the widget itself shows no
        fallback, so no frontend can show a table without its buttons)."""
        caption = f"<p><b>Link candidates</b> {html.escape(self._page_text())}</p>"
        return caption + self.page_frame[list(_AUDIT_COLUMNS)].to_html(index=False, na_rep="—")

    def __repr__(self) -> str:
        return f"<AuditTable {len(self.candidates)} groups, {len(self.selected)} selected>"


__all__ += ["AuditTable"]
