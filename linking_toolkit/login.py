"""The login flows that end in a verified :class:`~linking_toolkit.tokens.Session`.

- ``device`` (default): the device authorization grant. The kernel shows a link and a code; the
  person signs in on any browser (their laptop, their phone). Works where the kernel runs far
  from the browser: JupyterHub, Colab, VS Code remote.
- ``browser``: authorization code + PKCE (S256) with a loopback redirect on 127.0.0.1.
- ``paste``: the same, but the person pastes the URL the browser was redirected to.
- ``password``: the password-realm grant, for database users (tests, scripts, the sandbox).

Every flow asks for the Management API audience and :data:`SCOPE`; the interactive ones send a
``state`` that carries the purpose (``linking.<random>``, as the seed's ``state: "linking"``) and a
``nonce``, and check both. ``start_login`` runs the waiting in a background thread and returns a
:class:`PendingLogin` at once, so a notebook cell or a widget callback never blocks; in a notebook,
``session = await start_login(tenant)`` waits for it with the kernel's event loop left running.
"""

from __future__ import annotations

import asyncio
import hmac
import http.server
import logging
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from .errors import (
    AccessDenied,
    Auth0Error,
    InvalidState,
    LoginCancelled,
    LoginError,
    LoginExpired,
    LoginTimeout,
    TenantError,
)
from .management import ManagementClient
from .tenant import Tenant
from .tokens import Purpose, Session, verify_id_token

__all__ = ["DATABASE_CONNECTION", "SCOPE", "PendingLogin", "login", "start_login"]

logger = logging.getLogger("linking_toolkit.login")

SCOPE = "openid profile email read:current_user update:current_user_identities"
DATABASE_CONNECTION = "Username-Password-Authentication"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PASSWORD_REALM_GRANT = "http://auth0.com/oauth/grant-type/password-realm"  # noqa: S105 - a grant name
# Polls in a row that may fail before a device login gives up (Wi-Fi drops while the person logs in).
DEVICE_POLL_FAILURES = 3
# What a paste login redirects to: nothing listens there, the person copies the URL from the bar.
PASTE_REDIRECT_URI = "http://127.0.0.1/callback"

Method = Literal["device", "browser", "paste", "password"]
Status = Literal["pending", "done", "failed", "cancelled"]

_LOGIN_ERRORS: dict[str, type[LoginError]] = {
    "access_denied": AccessDenied,
    "expired_token": LoginExpired,
}


def _check_purpose(purpose: str) -> Purpose:
    if purpose not in ("login", "linking"):
        raise ValueError(f"purpose must be 'login' or 'linking', not {purpose!r}")
    return purpose  # type: ignore[return-value]


def _post_form(tenant: Tenant, endpoint: str, data: dict[str, str], expect: str) -> dict[str, Any]:
    """POST a form to an Authentication API endpoint and return the JSON answer holding
    ``expect``; an OAuth error answer becomes a LoginError in the tenant's words."""
    try:
        response = tenant.http.post(tenant.endpoint(endpoint), data=data)
    except httpx2.HTTPError as exc:
        raise TenantError(f"the {endpoint} could not be reached ({type(exc).__name__})") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TenantError(f"the {endpoint} answered HTTP {response.status_code}, not JSON",
                          status_code=response.status_code)
    if response.status_code == 200 and expect in body:
        return body
    error = str(body.get("error") or "login_failed")
    message = str(body.get("error_description") or body.get("message") or error)
    cls = _LOGIN_ERRORS.get(error, LoginError)
    raise cls(message, status_code=response.status_code, error=error)


def _token_request(tenant: Tenant, data: dict[str, str]) -> dict[str, Any]:
    return _post_form(tenant, "token_endpoint", data, "access_token")


def _session(tenant: Tenant, tokens: dict[str, Any], purpose: Purpose, nonce: str | None) -> Session:
    """Verify the ID token, then read the user's profile with the session's own access token."""
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise LoginError("the tenant returned no ID token (was 'openid' refused?)")
    claims = verify_id_token(id_token, tenant, nonce=nonce)
    try:
        expires_in = float(tokens.get("expires_in") or 0) or 86_400.0
    except (TypeError, ValueError):
        raise TenantError("the token_endpoint's expires_in is not a number of seconds") from None
    session = Session(
        tenant=tenant,
        purpose=purpose,
        claims=claims,
        profile={},
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        scope=str(tokens.get("scope") or SCOPE),
        _access_token=str(tokens["access_token"]),
        _id_token=id_token,
        _refresh_token=tokens.get("refresh_token"),
    )
    client = ManagementClient.from_session(session)
    session._management = client
    session.profile = client.get_user(session.user_id)
    logger.debug("logged in %s for %s", session.user_id, purpose)
    return session


def _in_kernel() -> bool:
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


def _show(text: str, url: str | None = None) -> None:
    """Show a login prompt: a clickable link in a notebook, a line of text elsewhere."""
    if _in_kernel() and url:
        import html

        from IPython.display import HTML, display

        link = (f"<p>{html.escape(text)}<br><a href='{html.escape(url)}' target='_blank'>"
                f"{html.escape(url)}</a></p>")
        display(HTML(link))  # type: ignore[no-untyped-call]
    else:
        print(f"{text} {url or ''}".rstrip(), file=sys.stderr)


class PendingLogin:
    """A login under way. ``result()`` waits for the :class:`Session`; nothing else blocks.

    Device logins have ``user_code``, ``verification_uri`` and ``verification_uri_complete``;
    browser and paste logins have ``authorize_url`` (paste ones finish with ``complete(url)``).
    """

    def __init__(self, tenant: Tenant, method: Method, purpose: Purpose) -> None:
        self.tenant = tenant
        self.method = method
        self.purpose = purpose
        self.status: Status = "pending"
        self.error: BaseException | None = None
        self.user_code: str | None = None
        self.verification_uri: str | None = None
        self.verification_uri_complete: str | None = None
        self.expires_in: int | None = None
        self.interval: float = 5.0  # device polling period; slow_down adds 5 s
        self.authorize_url: str | None = None
        self.redirect_uri: str | None = None
        self._session: Session | None = None
        self._done = threading.Event()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[PendingLogin], object]] = []
        self._thread: threading.Thread | None = None
        # Secrets of the flow: never shown, never logged.
        self._state = ""
        self._nonce = ""
        self._code_verifier = ""
        self._device_code = ""
        self._server: http.server.HTTPServer | None = None

    # -- the outcome ---------------------------------------------------------------------------

    def _finish(self, session: Session | None = None, error: BaseException | None = None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            if session is not None:
                self._session, self.status = session, "done"
            else:
                self.error = error
                self.status = "cancelled" if isinstance(error, LoginCancelled) else "failed"
            self._done.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("a login done-callback failed")

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> Session:
        """The session, once the login ends (waiting up to ``timeout`` seconds; None waits on)."""
        if not self._done.wait(timeout):
            raise LoginTimeout(f"the {self.method} login did not finish within {timeout:g} s")
        if self._session is None:
            assert self.error is not None
            raise self.error
        return self._session

    def __await__(self) -> Generator[Any, None, Session]:
        """``session = await pending``: waits without blocking the running event loop, so a notebook
        cell (top-level ``await``) leaves the kernel, and its widgets' callbacks, free meanwhile.
        Cancelling the awaiting task cancels the login."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def set_woken() -> None:
            if not woken.done():
                woken.set_result(None)

        def wake(_pending: PendingLogin) -> None:
            # Called from the login's worker thread: hand over to the loop's own thread.
            if not loop.is_closed():
                loop.call_soon_threadsafe(set_woken)

        self.add_done_callback(wake)
        try:
            yield from woken.__await__()
        except asyncio.CancelledError:
            self.cancel()
            raise
        return self.result(0)

    def add_done_callback(self, fn: Callable[[PendingLogin], object]) -> None:
        """Call ``fn(pending)`` when the login ends (at once if it already has), from the worker
        thread: a widget callback can update the display from there."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(fn)
                return
        fn(self)

    def cancel(self) -> None:
        """Stop waiting: the device poller and the loopback server stop, ``result()`` raises
        :class:`LoginCancelled`."""
        self._cancel.set()
        # The loopback server's loop sees the login is done within its 0.2 s poll and closes.
        self._finish(error=LoginCancelled(f"the {self.method} login was cancelled"))

    # -- authorization code (browser and paste) -------------------------------------------------

    def complete(self, redirect_url: str) -> Session:
        """Finish a browser/paste login with the URL the browser was redirected to.

        The ``state`` must be the one this login sent (else :class:`InvalidState`); an
        ``error=access_denied`` redirect raises :class:`AccessDenied`.
        """
        if self.authorize_url is None:
            raise LoginError("complete() is for browser and paste logins")
        if self._done.is_set():
            return self.result(0)
        try:
            session = self._exchange(redirect_url)
        except Auth0Error as exc:
            self._finish(error=exc)
            raise
        self._finish(session=session)
        return session

    def _exchange(self, redirect_url: str) -> Session:
        query = parse_qs(urlsplit(redirect_url.strip()).query)
        got_state = (query.get("state") or [""])[0]
        if not got_state or not hmac.compare_digest(got_state.encode(), self._state.encode()):
            raise InvalidState("the redirect's state is not the one this login sent; start the login again")
        if "error" in query:
            error = query["error"][0]
            message = (query.get("error_description") or [error])[0]
            raise _LOGIN_ERRORS.get(error, LoginError)(message, error=error)
        code = (query.get("code") or [""])[0]
        if not code:
            raise LoginError("the redirect URL carries no authorization code")
        assert self.redirect_uri is not None
        tokens = _token_request(self.tenant, {
            "grant_type": "authorization_code",
            "client_id": self.tenant.client_id,
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self._code_verifier,
        })
        return _session(self.tenant, tokens, self.purpose, self._nonce)

    def _authorize_url(self, redirect_uri: str, connection: str | None) -> str:
        self.redirect_uri = redirect_uri
        # The state names the purpose, as the seed's second Lock's state: "linking" did.
        self._state = f"{self.purpose}.{secrets.token_urlsafe(24)}"
        self._nonce = secrets.token_urlsafe(24)
        self._code_verifier = generate_token(64)
        params = {
            "response_type": "code",
            "client_id": self.tenant.client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "audience": self.tenant.management_audience,
            "state": self._state,
            "nonce": self._nonce,
            "code_challenge": create_s256_code_challenge(self._code_verifier),
            "code_challenge_method": "S256",
        }
        if connection:
            params["connection"] = connection
        self.authorize_url = f"{self.tenant.endpoint('authorization_endpoint')}?{urlencode(params)}"
        return self.authorize_url

    def _serve_loopback(self, timeout: float) -> None:
        """Wait for the browser's redirect on the loopback server, then exchange the code."""
        assert self._server is not None
        server = self._server
        server.timeout = 0.2
        try:
            deadline = threading.Event()
            timer = threading.Timer(timeout, deadline.set)
            timer.daemon = True
            timer.start()
            while not self._done.is_set() and not deadline.is_set() and server.received is None:  # type: ignore[attr-defined]
                server.handle_request()
            timer.cancel()
            if self._done.is_set():
                return
            if server.received is None:  # type: ignore[attr-defined]
                self._finish(error=LoginTimeout(f"no login came back to the loopback redirect within "
                                                f"{timeout:g} s"))
                return
            self.complete(server.received)  # type: ignore[attr-defined]
        except BaseException as exc:
            self._finish(error=exc)
        finally:
            server.server_close()

    # -- device ----------------------------------------------------------------------------------

    def _poll_device(self, timeout: float) -> None:
        """Poll the token endpoint every ``interval`` s; ``slow_down`` adds 5 s, as RFC 8628 says.

        A poll that gets no answer (a dropped connection, a proxy's error page) is polled again, up
        to :data:`DEVICE_POLL_FAILURES` times in a row: the person may be halfway through logging in.
        """
        try:
            waited = 0.0
            failures = 0
            while True:
                if self._cancel.wait(self.interval):
                    return
                waited += self.interval
                try:
                    tokens = _token_request(self.tenant, {"grant_type": DEVICE_GRANT,
                                                          "device_code": self._device_code,
                                                          "client_id": self.tenant.client_id})
                except TenantError as exc:
                    failures += 1
                    if failures > DEVICE_POLL_FAILURES:
                        raise
                    logger.debug("device login: poll %d failed (%s); polling again", failures, exc)
                except LoginError as exc:
                    failures = 0
                    if exc.error == "authorization_pending":
                        pass
                    elif exc.error == "slow_down":
                        self.interval += 5
                        logger.debug("device login: slow_down, polling every %g s", self.interval)
                    else:
                        raise
                else:
                    # Auth0's device flow takes no nonce: the device code itself binds the login.
                    self._finish(session=_session(self.tenant, tokens, self.purpose, None))
                    return
                if waited >= timeout:
                    raise LoginTimeout(f"no device login within {timeout:g} s")
                # The tenant says expired_token itself; this only guards against one that never does.
                if self.expires_in is not None and waited >= self.expires_in + 2 * self.interval:
                    raise LoginExpired("the device code expired without a login")
        except BaseException as exc:
            self._finish(error=exc)

    def _start_thread(self, target: Callable[..., None], *args: Any) -> None:
        self._thread = threading.Thread(target=target, args=args, daemon=True,
                                        name=f"linking-toolkit-{self.method}-login")
        self._thread.start()

    def __repr__(self) -> str:
        extra = f" user_code={self.user_code!r}" if self.user_code else ""
        return f"<PendingLogin {self.method} {self.purpose} {self.status}{extra}>"


class _RedirectHandler(http.server.BaseHTTPRequestHandler):
    """Receives the browser's redirect on the loopback server and thanks the person."""

    def do_GET(self) -> None:
        if urlsplit(self.path).path != "/callback":
            self.send_response(404)
            self.end_headers()
            return
        self.server.received = f"http://127.0.0.1:{self.server.server_port}{self.path}"  # type: ignore[attr-defined]
        body = (b"<!doctype html><title>Logged in</title><p>You can close this tab and go back to "
                b"the notebook.</p>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes the request line, code and state included, to stderr.
        pass


def start_login(
    tenant: Tenant,
    *,
    method: Method = "device",
    connection: str | None = None,
    purpose: Purpose = "login",
    timeout: float = 300.0,
    open_browser: bool = True,
    show: Callable[[str, str | None], None] | None = None,
) -> PendingLogin:
    """Start a login and return at once; ``PendingLogin.result()`` gives the :class:`Session`.

    For notebooks and widgets: the device poller and the loopback server run in a background
    thread, so the cell (or the button's callback) returns immediately. ``show(text, url)`` is how
    the link is shown; by default a :class:`~linking_toolkit.widgets.LoginPrompt` in a notebook
    (link, code, countdown, Cancel) and a line of text elsewhere. A widget passes its own.

    Examples
    --------
    >>> pending = start_login(tenant, purpose="linking")                   # doctest: +SKIP
    >>> secondary = pending.result(timeout=300)                             # doctest: +SKIP
    """
    purpose = _check_purpose(purpose)
    # In a notebook the prompt is a widget whose Cancel works, since nothing here blocks the kernel.
    widget = show is None and _in_kernel()
    show = (lambda _text, _url: None) if widget else (show or _show)
    pending = PendingLogin(tenant, method, purpose)
    if method == "device":
        body = _post_form(tenant, "device_authorization_endpoint", {
            "client_id": tenant.client_id, "scope": SCOPE, "audience": tenant.management_audience},
            "device_code")
        try:
            pending._device_code = str(body["device_code"])
            pending.user_code = str(body["user_code"])
            pending.verification_uri = str(body["verification_uri"])
            complete = body.get("verification_uri_complete")
            pending.verification_uri_complete = complete if isinstance(complete, str) else None
            pending.expires_in = int(body.get("expires_in") or timeout)
            pending.interval = float(body["interval"]) if body.get("interval") is not None else 5.0
        except (KeyError, TypeError, ValueError):
            # RFC 8628 3.2 requires these fields: without them there is nothing to show or poll.
            raise TenantError("the device_authorization_endpoint's answer lacks user_code, "
                              "verification_uri, or a numeric expires_in/interval") from None
        show(f"To log in{' the account to link' if purpose == 'linking' else ''}, open this link and "
             f"check that it shows the code {pending.user_code}:",
             pending.verification_uri_complete or pending.verification_uri)
        pending._start_thread(pending._poll_device, timeout)
    elif method == "browser":
        server = http.server.HTTPServer(("127.0.0.1", 0), _RedirectHandler)
        server.received = None  # type: ignore[attr-defined]
        pending._server = server
        url = pending._authorize_url(f"http://127.0.0.1:{server.server_port}/callback", connection)
        opened = False
        if open_browser:
            try:
                opened = webbrowser.open(url)
            except webbrowser.Error:
                opened = False
        if not opened:
            show("Open this link in a browser on this machine to log in:", url)
        pending._start_thread(pending._serve_loopback, timeout)
    elif method == "paste":
        url = pending._authorize_url(PASTE_REDIRECT_URI, connection)
        show("Open this link, log in, then paste the address the browser ends on "
             "(it starts with http://127.0.0.1/callback):", url)
    else:
        raise ValueError(f"start_login takes method 'device', 'browser' or 'paste', not {method!r}")
    if widget:
        from IPython.display import display

        from .widgets import LoginPrompt

        display(LoginPrompt(pending))  # type: ignore[no-untyped-call]
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
        tokens = _token_request(tenant, {
            "grant_type": PASSWORD_REALM_GRANT,
            "client_id": tenant.client_id,
            "username": email,
            "password": password,
            "realm": connection or DATABASE_CONNECTION,
            "scope": SCOPE,
            "audience": tenant.management_audience,
        })
        return _session(tenant, tokens, purpose, None)
    if _in_widget_callback():
        # Waiting here would freeze every widget of the notebook until the person logs in.
        raise LoginError(f"login(method={method!r}) waits for the person and would freeze the notebook's "
                         f"widgets in this callback: use start_login(...) with add_done_callback, or "
                         f"LoginPrompt.start(...), which return at once")
    # A plain link, not the widget: while this call blocks the cell, a Cancel button could not work.
    pending = start_login(tenant, method=method, connection=connection, purpose=purpose,
                          timeout=timeout, open_browser=open_browser, show=_show)
    if method == "paste":
        redirect_url = input("Redirect URL: ")
        return pending.complete(redirect_url)
    try:
        return pending.result(timeout + 5)
    except KeyboardInterrupt:
        pending.cancel()
        raise
