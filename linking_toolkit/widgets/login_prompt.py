"""``LoginPrompt``, a login under way as a widget, and ``start_login``, which shows one in a notebook.

``start_login`` is the learner's non-blocking login: in a Jupyter kernel it shows a LoginPrompt
(link, code, countdown, Cancel), elsewhere one line of text; the flow itself is
:func:`linking_toolkit.login_flows.begin_login`, which knows nothing of widgets.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

import ipywidgets as widgets

from ..cache import TokenCache
from ..errors import Auth0Error
from ..login_flows import Method, PendingLogin, Show, begin_login, in_kernel, show_link
from ..proxy_links import browser_link
from ..tenant import Tenant
from ..tokens import Purpose, Session
from ._worker import ERROR_STYLE, OK_STYLE, describe_error, show_nothing

__all__ = ["LoginPrompt", "start_login"]


def start_login(
    tenant: Tenant,
    *,
    method: Method = "device",
    connection: str | None = None,
    purpose: Purpose = "login",
    timeout: float = 300.0,
    open_browser: bool = True,
    show: Show | None = None,
    cache: TokenCache | None = None,
) -> PendingLogin:
    """Start a login and return at once; ``PendingLogin.result()`` gives the :class:`Session`.

    For notebooks and widgets: the device poller and the loopback server run in a background
    thread, so the cell (or the button's callback) returns immediately; in a notebook,
    ``session = await start_login(tenant)`` waits with the kernel's event loop left running.
    ``show(text, url)`` is how the link is shown; by default a :class:`LoginPrompt` in a notebook
    (link, code, countdown, Cancel) and a line of text elsewhere. A widget passes its own.
    ``cache`` is the token cache strategy (see :func:`~linking_toolkit.login`): with a cached login
    the returned login is already done, and no prompt is shown.

    Examples
    --------
    >>> pending = start_login(tenant, purpose="linking")                   # doctest: +SKIP
    >>> secondary = pending.result(timeout=300)                             # doctest: +SKIP
    """
    # In a notebook the prompt is a widget whose Cancel works, since nothing here blocks the kernel.
    widget = show is None and in_kernel()
    pending = begin_login(tenant, method=method, connection=connection, purpose=purpose, timeout=timeout,
                          open_browser=open_browser, show=show_nothing if widget else (show or show_link),
                          cache=cache)
    if widget and not pending.from_cache:
        from IPython.display import display

        display(LoginPrompt(pending))  # type: ignore[no-untyped-call]
    return pending


class LoginPrompt(widgets.VBox):
    """A login under way, as a person sees it: the link, the code, a countdown and Cancel.

    It wraps a :class:`~linking_toolkit.login_flows.PendingLogin`: the device flow shows the link
    to open and the code to check on that page; the browser and paste flows show the authorization
    link (paste adds a box for the address the browser ends on). ``result()`` waits for the session.

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
        super().__init__(self._parts(pending), **kwargs)
        self._tick()
        pending.add_done_callback(self._finished)
        if pending.expires_in and not pending.done():
            threading.Thread(target=self._count_down, daemon=True, name="login-prompt-countdown").start()

    def _parts(self, pending: PendingLogin) -> list[widgets.Widget]:
        who = "the account to link" if pending.purpose == "linking" else "your account"
        self.title.value = f"<b>Log in to {html.escape(who)}</b>"
        if pending.from_cache:  # nothing to open: the token cache gave the session
            return [self.title, self.status]
        url = pending.verification_uri_complete or pending.verification_uri or pending.authorize_url or ""
        # An authorization URL is a screenful of parameters: name it instead of printing it.
        text = "the tenant's login page" if url == pending.authorize_url else browser_link(url)
        url = browser_link(url)  # a sandbox's loopback link, through the notebook server's proxy
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
        return [*parts, widgets.HBox([self.countdown, self.cancel_button]), self.status]

    @classmethod
    def start(cls, tenant: Tenant, *, method: Method = "device", connection: str | None = None,
              purpose: Purpose = "login", timeout: float = 300.0) -> LoginPrompt:
        """Start a login (see :func:`start_login`) and return its prompt.

        The link is shown by this widget, so nothing else is printed; a ``browser`` login still
        opens the system browser when there is one.
        """
        pending = begin_login(tenant, method=method, connection=connection, purpose=purpose,
                              timeout=timeout, show=show_nothing)
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
            self.status.value = f"<span style='{OK_STYLE}'>Logged in as {html.escape(str(who))}.</span>"
        elif pending.status == "cancelled":
            self.status.value = "The login was cancelled."
        else:
            message = describe_error(pending.error) if pending.error else "The login failed."
            self.status.value = f"<span style='{ERROR_STYLE}'>{html.escape(message)}</span>"

    def __repr__(self) -> str:
        # The plain-text form a saved notebook shows before the cell runs: what to do; no code, no
        # link, nothing that varies.
        return (f"Login prompt: run this cell to log in "
                f"({self.pending.method} login, purpose {self.pending.purpose})")
