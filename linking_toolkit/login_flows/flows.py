"""The entry points of the login flows: ``begin_login`` (returns at once) and ``login`` (blocks).

How a login's link is shown is the caller's choice, a ``show(text, url)`` function: by default a
clickable link in a notebook and one line of text elsewhere. The login widget
(:class:`~linking_toolkit.widgets.LoginPrompt`) lives above this package and passes its own.
"""

from __future__ import annotations

import html
import sys
import webbrowser
from collections.abc import Callable

from ..errors import LoginError
from ..tenant import Tenant
from ..tokens import Purpose, Session
from .grants import (
    DATABASE_CONNECTION,
    PASSWORD_REALM_GRANT,
    SCOPE,
    AuthorizationRequest,
    DeviceAuthorization,
    Method,
    session_from_tokens,
    token_request,
)
from .pending import LoopbackServer, PendingLogin

__all__ = ["PASTE_REDIRECT_URI", "Show", "begin_login", "in_kernel", "login", "show_link"]

# What a paste login redirects to: nothing listens there, the person copies the URL from the bar.
PASTE_REDIRECT_URI = "http://127.0.0.1/callback"

Show = Callable[[str, str | None], None]


def _check_purpose(purpose: str) -> Purpose:
    if purpose not in ("login", "linking"):
        raise ValueError(f"purpose must be 'login' or 'linking', not {purpose!r}")
    return purpose  # type: ignore[return-value]


def in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (which can show HTML and widgets), not a terminal."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _in_widget_callback() -> bool:
    """Whether this runs in a widget's callback: the kernel is handling a message of a widget."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of ipywidgets
        return False
    get_parent = getattr(getattr(get_ipython(), "kernel", None), "get_parent", None)
    parent = get_parent("shell") if callable(get_parent) else None
    return isinstance(parent, dict) and parent.get("header", {}).get("msg_type") == "comm_msg"


def show_link(text: str, url: str | None = None) -> None:
    """Show a login prompt: a clickable link in a notebook, a line of text elsewhere."""
    if in_kernel() and url:
        from IPython.display import HTML, display

        link = (f"<p>{html.escape(text)}<br><a href='{html.escape(url)}' target='_blank'>"
                f"{html.escape(url)}</a></p>")
        display(HTML(link))  # type: ignore[no-untyped-call]
    else:
        print(f"{text} {url or ''}".rstrip(), file=sys.stderr)


def _begin_device(tenant: Tenant, purpose: Purpose, timeout: float, show: Show) -> PendingLogin:
    device = DeviceAuthorization.request(tenant, timeout=timeout)
    pending = PendingLogin(tenant, "device", purpose, device_authorization=device)
    show(f"To log in{' the account to link' if purpose == 'linking' else ''}, open this link and "
         f"check that it shows the code {device.user_code}:",
         device.verification_uri_complete or device.verification_uri)
    return pending


def _begin_browser(tenant: Tenant, purpose: Purpose, connection: str | None, open_browser: bool,
                   show: Show) -> PendingLogin:
    server = LoopbackServer()
    request = AuthorizationRequest.new(tenant, purpose, server.redirect_uri, connection)
    pending = PendingLogin(tenant, "browser", purpose, authorization_request=request, loopback=server)
    opened = False
    if open_browser:
        try:
            opened = webbrowser.open(request.url)
        except webbrowser.Error:
            opened = False
    if not opened:
        show("Open this link in a browser on this machine to log in:", request.url)
    return pending


def _begin_paste(tenant: Tenant, purpose: Purpose, connection: str | None, show: Show) -> PendingLogin:
    request = AuthorizationRequest.new(tenant, purpose, PASTE_REDIRECT_URI, connection)
    show("Open this link, log in, then paste the address the browser ends on "
         "(it starts with http://127.0.0.1/callback):", request.url)
    return PendingLogin(tenant, "paste", purpose, authorization_request=request)


def begin_login(
    tenant: Tenant,
    *,
    method: Method = "device",
    connection: str | None = None,
    purpose: Purpose = "login",
    timeout: float = 300.0,
    open_browser: bool = True,
    show: Show = show_link,
) -> PendingLogin:
    """Start a login and return at once; ``PendingLogin.result()`` gives the :class:`Session`.

    The flow engine under :func:`~linking_toolkit.start_login` (which shows a LoginPrompt widget
    in a notebook): the device poller and the loopback server run in a background thread, so the
    caller returns immediately. ``show(text, url)`` is how the link is shown.
    """
    purpose = _check_purpose(purpose)
    if method == "device":
        pending = _begin_device(tenant, purpose, timeout, show)
    elif method == "browser":
        pending = _begin_browser(tenant, purpose, connection, open_browser, show)
    elif method == "paste":
        pending = _begin_paste(tenant, purpose, connection, show)
    else:
        raise ValueError(f"start_login takes method 'device', 'browser' or 'paste', not {method!r}")
    pending.start(timeout)
    return pending


def login(
    tenant: Tenant,
    *,
    method: Method = "device",
    connection: str | None = None,
    purpose: Purpose = "login",
    email: str | None = None,
    password: str | None = None,
    timeout: float = 300.0,
    open_browser: bool = True,
) -> Session:
    """Log in and return a verified :class:`Session`, blocking until the person has logged in.

    For scripts and a notebook cell that simply waits. Where the event loop must stay free (a
    cell while widgets are live) use ``await start_login(...)`` or
    :class:`~linking_toolkit.widgets.LoginPrompt`: they return at once. In a widget callback the
    device, browser and paste methods are refused with a :class:`LoginError` saying so.

    ``purpose="linking"`` marks the session as the account to link in (the second login of the
    tutorial); ``link()`` refuses any other session as its secondary. ``password`` logs in a
    database user with ``email`` on ``connection`` (default ``Username-Password-Authentication``).

    Examples
    --------
    >>> primary = login(tenant)                                                       # doctest: +SKIP
    >>> secondary = login(tenant, purpose="linking", connection="google-oauth2")     # doctest: +SKIP
    """
    purpose = _check_purpose(purpose)
    if method == "password":
        if not email or password is None:
            raise ValueError("the password method needs email= and password=")
        tokens = token_request(tenant, {
            "grant_type": PASSWORD_REALM_GRANT,
            "client_id": tenant.client_id,
            "username": email,
            "password": password,
            "realm": connection or DATABASE_CONNECTION,
            "scope": SCOPE,
            "audience": tenant.management_audience,
        })
        return session_from_tokens(tenant, tokens, purpose, None)
    if _in_widget_callback():
        # Waiting here would freeze every widget of the notebook until the person logs in.
        raise LoginError(f"login(method={method!r}) waits for the person and would freeze the notebook's "
                         f"widgets in this callback: use start_login(...) with add_done_callback, or "
                         f"LoginPrompt.start(...), which return at once")
    # A plain link, not the widget: while this call blocks the cell, a Cancel button could not work.
    pending = begin_login(tenant, method=method, connection=connection, purpose=purpose,
                          timeout=timeout, open_browser=open_browser, show=show_link)
    if method == "paste":
        redirect_url = input("Redirect URL: ")
        return pending.complete(redirect_url)
    try:
        return pending.result(timeout + 5)
    except KeyboardInterrupt:
        pending.cancel()
        raise
