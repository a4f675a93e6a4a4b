"""The entry points of the login flows: ``begin_login`` (returns at once) and ``login`` (blocks).

How a login's link is shown is the caller's choice, a ``show(text, url)`` function: by default a
clickable link in a notebook and one line of text elsewhere. The login widget
(:class:`~linking_toolkit.widgets.LoginPrompt`) lives above this package and passes its own.

Both take ``cache=`` (:mod:`linking_toolkit.cache`): a cached login is refreshed with no prompt,
its new ID token verified as a login's (but for the nonce, which a refresh has none of); a login
the tenant no longer honours is dropped and the person logs in again, told why in one line.
"""

from __future__ import annotations

import html
import sys
import webbrowser
from collections.abc import Callable

from ..cache import NOOP, TokenCache, default_cache
from ..errors import LoginError
from ..proxy_links import browser_link
from ..tenant import Tenant
from ..tokens import Purpose, Session
from .grants import (
    DATABASE_CONNECTION,
    OFFLINE_SCOPE,
    PASSWORD_REALM_GRANT,
    SCOPE,
    AuthorizationRequest,
    DeviceAuthorization,
    Method,
    session_from_tokens,
    token_request,
)
from .pending import LoopbackServer, PendingLogin

__all__ = [
    "PASTE_REDIRECT_URI",
    "Show",
    "begin_login",
    "choose_cache",
    "in_kernel",
    "login",
    "note",
    "session_from_cache",
    "show_link",
]

# What a paste login redirects to: nothing listens there, the person copies the URL from the bar.
PASTE_REDIRECT_URI = "http://127.0.0.1/callback"

Show = Callable[[str, str | None], None]


def _check_purpose(purpose: str) -> Purpose:
    if purpose not in ("login", "linking"):
        raise ValueError(f"purpose must be 'login' or 'linking', not {purpose!r}")
    return purpose  # type: ignore[return-value]


def in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (which can show HTML and widgets), not a terminal.

    Examples
    --------
    >>> from linking_toolkit.login_flows.flows import in_kernel
    >>> in_kernel()                                     # in a terminal or a script
    False
    """
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
    """Show a login prompt: a clickable link in a notebook, a line of text elsewhere. A sandbox's
    loopback link goes through the notebook server's proxy where there is one (on a hub).

    Examples
    --------
    >>> from linking_toolkit.login_flows.flows import show_link
    >>> url = "https://example.eu.auth0.com/activate?user_code=BCDF-GHJK"
    >>> show_link("Open this link to log in:", url)     # a line on stderr; in a notebook, a link
    """
    url = browser_link(url) if url else url
    if in_kernel() and url:
        from IPython.display import HTML, display

        link = (f"<p>{html.escape(text)}<br><a href='{html.escape(url)}' target='_blank'>"
                f"{html.escape(url)}</a></p>")
        display(HTML(link))  # type: ignore[no-untyped-call]
    else:
        print(f"{text} {url or ''}".rstrip(), file=sys.stderr)


def note(text: str) -> None:
    """One line for the person about their login (why nothing is cached, why they log in again):
    in a notebook a plain line of the cell's output (JupyterLab shows stderr in red, and this is
    news, not an error); elsewhere on stderr, so a script's own output stays clean.

    Examples
    --------
    >>> from linking_toolkit.login_flows.flows import note
    >>> note("Not caching this login: the home folder is shared.")   # one line on stderr
    """
    print(text, file=sys.stdout if in_kernel() else sys.stderr)


def choose_cache(tenant: Tenant, cache: TokenCache | None, purpose: Purpose = "login") -> TokenCache:
    """``cache``, or the default for this machine (:func:`~linking_toolkit.cache.default_cache`),
    saying in one line why nothing is cached where the home folder is shared or temporary.

    A login for linking caches nothing unless asked to (``cache=READ_WRITE``): a link must follow
    a login to both accounts made now, by the person at the keyboard, never one kept from earlier.

    Examples
    --------
    >>> from linking_toolkit.login_flows.flows import choose_cache
    >>> choose_cache(tenant, None, purpose="linking")   # doctest: +SKIP
    <TokenCache NOOP: logins are neither read nor kept>
    """
    if cache is not None:
        return cache
    if purpose == "linking":
        return NOOP
    chosen, why = default_cache(tenant)
    if why:
        note(why)
    return chosen


def session_from_cache(tenant: Tenant, purpose: Purpose, connection: str | None,
                       cache: TokenCache) -> Session | None:
    """A verified session from the login ``cache`` holds for this tenant, purpose and connection
    (the most recently stored one), with no prompt; None when it holds none, or when the tenant no
    longer honours it (revoked, expired, reused): then it is dropped and one line says why.

    Examples
    --------
    >>> from linking_toolkit import cache
    >>> from linking_toolkit.login_flows.flows import session_from_cache
    >>> session = session_from_cache(tenant, "login", None, cache.READ_WRITE)   # doctest: +SKIP
    >>> session is None                                 # True when nothing usable is cached
    """
    if not cache.reads:
        return None
    # Locked from reading to storing the rotated token: two kernels never spend one refresh token.
    with cache.hold():
        cached = cache.load(tenant, purpose=purpose, connection=connection)
        if cached is None:
            return None
        try:
            tokens = token_request(tenant, {"grant_type": "refresh_token", "client_id": tenant.client_id,
                                            "refresh_token": cached.refresh_token})
        except LoginError as exc:
            cache.discard(cached)
            note(f"The cached login of {cached.user_id} no longer works ({exc.message}): log in again.")
            return None
        tokens.setdefault("refresh_token", cached.refresh_token)  # a tenant that does not rotate them
        session = session_from_tokens(tenant, tokens, purpose, None, cache=cache, connection=connection,
                                      user_id=cached.user_id)
    who = session.profile.get("email") or session.user_id
    note(f"Logged in as {who} from the token cache (linking_toolkit.cache.forget(tenant) forgets it).")
    return session


def _begin_device(tenant: Tenant, purpose: Purpose, timeout: float, show: Show, cache: TokenCache,
                  connection: str | None) -> PendingLogin:
    device = DeviceAuthorization.request(tenant, timeout=timeout, scope=_scope(cache))
    pending = PendingLogin(tenant, "device", purpose, device_authorization=device, cache=cache,
                           connection=connection)
    show(f"To log in{' the account to link' if purpose == 'linking' else ''}, open this link and "
         f"check that it shows the code {device.user_code}:",
         device.verification_uri_complete or device.verification_uri)
    return pending


def _scope(cache: TokenCache) -> str:
    return OFFLINE_SCOPE if cache.writes else SCOPE


def _begin_browser(tenant: Tenant, purpose: Purpose, connection: str | None, open_browser: bool,
                   show: Show, cache: TokenCache) -> PendingLogin:
    server = LoopbackServer()
    request = AuthorizationRequest.new(tenant, purpose, server.redirect_uri, connection, _scope(cache))
    pending = PendingLogin(tenant, "browser", purpose, authorization_request=request, loopback=server,
                           cache=cache, connection=connection)
    opened = False
    if open_browser:
        try:
            opened = webbrowser.open(request.url)
        except webbrowser.Error:
            opened = False
    if not opened:
        show("Open this link in a browser on this machine to log in:", request.url)
    return pending


def _begin_paste(tenant: Tenant, purpose: Purpose, connection: str | None, show: Show,
                 cache: TokenCache) -> PendingLogin:
    request = AuthorizationRequest.new(tenant, purpose, PASTE_REDIRECT_URI, connection, _scope(cache))
    show("Open this link, log in, then paste the address the browser ends on "
         "(it starts with http://127.0.0.1/callback):", request.url)
    return PendingLogin(tenant, "paste", purpose, authorization_request=request, cache=cache,
                        connection=connection)


def begin_login(
    tenant: Tenant,
    *,
    method: Method = "device",
    connection: str | None = None,
    purpose: Purpose = "login",
    timeout: float = 300.0,
    open_browser: bool = True,
    show: Show = show_link,
    cache: TokenCache | None = None,
) -> PendingLogin:
    """Start a login and return at once; ``PendingLogin.result()`` gives the :class:`Session`.

    The flow engine under :func:`~linking_toolkit.start_login` (which shows a LoginPrompt widget
    in a notebook): the device poller and the loopback server run in a background thread, so the
    caller returns immediately. ``show(text, url)`` is how the link is shown. With a login in
    ``cache`` (see :func:`login`) the returned login is already done, and nothing is shown.

    Examples
    --------
    >>> from linking_toolkit.login_flows import begin_login
    >>> pending = begin_login(tenant)                  # doctest: +SKIP
    >>> pending.user_code, pending.verification_uri_complete
    >>> session = pending.result(timeout=300)           # once the person has approved the code
    """
    purpose = _check_purpose(purpose)
    if method not in ("device", "browser", "paste"):
        raise ValueError(f"start_login takes method 'device', 'browser' or 'paste', not {method!r}")
    store = choose_cache(tenant, cache, purpose)
    cached = session_from_cache(tenant, purpose, connection, store)
    if cached is not None:
        return PendingLogin(tenant, method, purpose, cached_session=cached)
    if method == "device":
        pending = _begin_device(tenant, purpose, timeout, show, store, connection)
    elif method == "browser":
        pending = _begin_browser(tenant, purpose, connection, open_browser, show, store)
    else:
        pending = _begin_paste(tenant, purpose, connection, show, store)
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
    cache: TokenCache | None = None,
) -> Session:
    """Log in and return a verified :class:`Session`, blocking until the person has logged in.

    For scripts and a notebook cell that simply waits. Where the event loop must stay free (a
    cell while widgets are live) use ``await start_login(...)`` or
    :class:`~linking_toolkit.widgets.LoginPrompt`: they return at once. In a widget callback the
    device, browser and paste methods are refused with a :class:`LoginError` saying so.

    ``purpose="linking"`` marks the session as the account to link in (the second login of the
    tutorial); ``link()`` refuses any other session as its secondary. ``password`` logs in a
    database user with ``email`` on ``connection`` (default ``Username-Password-Authentication``).

    ``cache`` (:mod:`linking_toolkit.cache`) keeps the login between kernels: with
    ``cache.READ_WRITE`` (the default on a personal machine) a cached login of this tenant and
    purpose (and connection, for a linking login) gives the session with no prompt; with several
    users cached, the most recently stored one. ``cache.REAUTH`` logs in again and keeps that;
    ``cache.NOOP`` (the default on JupyterHub and Colab) keeps nothing. The ``password`` method,
    which names its user, never reads the cache; it keeps its login like the others.

    Examples
    --------
    >>> primary = login(tenant)                                                       # doctest: +SKIP
    >>> secondary = login(tenant, purpose="linking", connection="google-oauth2")     # doctest: +SKIP
    """
    purpose = _check_purpose(purpose)
    if method == "password" and (not email or password is None):
        raise ValueError("the password method needs email= and password=")
    store = choose_cache(tenant, cache, purpose)
    if method == "password":
        tokens = token_request(tenant, {
            "grant_type": PASSWORD_REALM_GRANT,
            "client_id": tenant.client_id,
            "username": email,
            "password": password,
            "realm": connection or DATABASE_CONNECTION,
            "scope": _scope(store),
            "audience": tenant.management_audience,
        })
        return session_from_tokens(tenant, tokens, purpose, None, cache=store, connection=connection)
    if _in_widget_callback():
        # Waiting here would freeze every widget of the notebook until the person logs in.
        raise LoginError(f"login(method={method!r}) waits for the person and would freeze the notebook's "
                         f"widgets in this callback: use start_login(...) with add_done_callback, or "
                         f"LoginPrompt.start(...), which return at once")
    # A plain link, not the widget: while this call blocks the cell, a Cancel button could not work.
    pending = begin_login(tenant, method=method, connection=connection, purpose=purpose,
                          timeout=timeout, open_browser=open_browser, show=show_link, cache=store)
    if method == "paste" and not pending.done():
        redirect_url = input("Redirect URL: ")
        return pending.complete(redirect_url)
    try:
        return pending.result(timeout + 5)
    except KeyboardInterrupt:
        pending.cancel()
        raise
