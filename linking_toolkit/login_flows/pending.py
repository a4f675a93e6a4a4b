"""``PendingLogin``: a login under way, waited for in a background thread.

The device poller and the loopback redirect server run in a thread of their own, so a notebook
cell or a widget callback returns at once; ``result()`` waits for the Session, ``await pending``
waits with the kernel's event loop left running, ``cancel()`` stops the waiting.
"""

from __future__ import annotations

import asyncio
import hmac
import http.server
import logging
import threading
from collections.abc import Callable, Generator
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from ..cache import TokenCache
from ..errors import (
    Auth0Error,
    InvalidState,
    LoginCancelled,
    LoginError,
    LoginExpired,
    LoginTimeout,
    TenantError,
)
from ..tenant import Tenant
from ..tokens import Purpose, Session
from .grants import (
    DEVICE_GRANT,
    AuthorizationRequest,
    DeviceAuthorization,
    Method,
    login_error,
    session_from_tokens,
    token_request,
)

__all__ = ["DEVICE_POLL_FAILURES", "LoopbackServer", "PendingLogin", "Status"]

logger = logging.getLogger("linking_toolkit.login_flows")

# Polls in a row that may fail before a device login gives up (Wi-Fi drops while the person logs in).
DEVICE_POLL_FAILURES = 3

Status = Literal["pending", "done", "failed", "cancelled"]


class _RedirectHandler(http.server.BaseHTTPRequestHandler):
    """Receives the browser's redirect on the loopback server and thanks the person."""

    server: LoopbackServer

    def do_GET(self) -> None:
        if urlsplit(self.path).path != "/callback":
            self.send_response(404)
            self.end_headers()
            return
        self.server.received = f"http://127.0.0.1:{self.server.server_port}{self.path}"
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


class LoopbackServer(http.server.HTTPServer):
    """A server on a free port of 127.0.0.1 that receives one redirect (``received``).

    Examples
    --------
    >>> from linking_toolkit.login_flows.pending import LoopbackServer
    >>> server = LoopbackServer()
    >>> server.redirect_uri
    'http://127.0.0.1:.../callback'
    >>> print(server.received)                          # no redirect yet
    None
    >>> server.server_close()
    """

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RedirectHandler)
        self.received: str | None = None
        self.timeout = 0.2  # handle_request() returns that often, to see a cancel or the deadline

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/callback"


class PendingLogin:
    """A login under way. ``result()`` waits for the :class:`Session`; nothing else blocks.

    Device logins have ``user_code``, ``verification_uri`` and ``verification_uri_complete``;
    browser and paste logins have ``authorize_url`` (paste ones finish with ``complete(url)``).
    Made by :func:`~linking_toolkit.login_flows.begin_login` from the flow's request:
    ``device_authorization`` for a device login, ``authorization_request`` for browser and paste
    (and a ``loopback`` server for browser), or ``cached_session`` for a login the token cache
    gave at once (``from_cache``). ``cache`` keeps the login's refresh token once it is verified.

    Examples
    --------
    >>> pending = begin_login(tenant, method="paste")       # doctest: +SKIP
    >>> pending.authorize_url                               # open it, log in, copy the address bar
    >>> session = pending.complete("http://127.0.0.1/callback?code=...&state=...")
    """

    def __init__(
        self,
        tenant: Tenant,
        method: Method,
        purpose: Purpose,
        *,
        device_authorization: DeviceAuthorization | None = None,
        authorization_request: AuthorizationRequest | None = None,
        loopback: LoopbackServer | None = None,
        cache: TokenCache | None = None,
        connection: str | None = None,
        cached_session: Session | None = None,
    ) -> None:
        self.tenant = tenant
        self.method = method
        self.purpose = purpose
        self.status: Status = "pending"
        self.from_cache = False  # True when a cached login gave the session, with no prompt
        # Where the login's refresh token is kept once the session is verified (None: nowhere).
        self.cache = cache
        self.connection = connection
        self.error: BaseException | None = None
        # The flow's requests; their secrets are hidden from every repr.
        self.device_authorization = device_authorization
        self.authorization_request = authorization_request
        device = device_authorization
        self.user_code = device.user_code if device else None
        self.verification_uri = device.verification_uri if device else None
        self.verification_uri_complete = device.verification_uri_complete if device else None
        self.expires_in = device.expires_in if device else None
        self.interval: float = device.interval if device else 5.0  # device polling; slow_down adds 5 s
        self.authorize_url = authorization_request.url if authorization_request else None
        self.redirect_uri = authorization_request.redirect_uri if authorization_request else None
        self._loopback = loopback
        self._session: Session | None = None
        self._done = threading.Event()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[PendingLogin], object]] = []
        self._thread: threading.Thread | None = None
        if cached_session is not None:  # done already: a cached login gave the session, with no prompt
            self.from_cache = True
            self._finish(session=cached_session)

    def start(self, timeout: float) -> None:
        """Start waiting in the background: the device poller, or the loopback server (a paste
        login waits for ``complete()`` instead), for at most ``timeout`` seconds."""
        if self.device_authorization is not None:
            target: Callable[[float], None] = self._poll_device
        elif self._loopback is not None:
            target = self._serve_loopback
        else:
            return
        self._thread = threading.Thread(target=target, args=(timeout,), daemon=True,
                                        name=f"linking-toolkit-{self.method}-login")
        self._thread.start()

    @property
    def thread(self) -> threading.Thread | None:
        """The background thread waiting for the login (None for a paste login)."""
        return self._thread

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
        if self.authorization_request is None:
            raise LoginError("complete() is for browser and paste logins")
        if self._done.is_set():
            return self.result(0)
        try:
            session = self._exchange(self.authorization_request, redirect_url)
        except Auth0Error as exc:
            self._finish(error=exc)
            raise
        self._finish(session=session)
        return session

    def _exchange(self, request: AuthorizationRequest, redirect_url: str) -> Session:
        query = parse_qs(urlsplit(redirect_url.strip()).query)
        got_state = (query.get("state") or [""])[0]
        if not got_state or not hmac.compare_digest(got_state.encode(), request.state.encode()):
            raise InvalidState("the redirect's state is not the one this login sent; start the login again")
        if "error" in query:
            error = query["error"][0]
            raise login_error(error, (query.get("error_description") or [error])[0])
        code = (query.get("code") or [""])[0]
        if not code:
            raise LoginError("the redirect URL carries no authorization code")
        tokens = token_request(self.tenant, {
            "grant_type": "authorization_code",
            "client_id": self.tenant.client_id,
            "code": code,
            "redirect_uri": request.redirect_uri,
            "code_verifier": request.code_verifier,
        })
        return session_from_tokens(self.tenant, tokens, self.purpose, request.nonce, cache=self.cache,
                                   connection=self.connection)

    def _serve_loopback(self, timeout: float) -> None:
        """Wait for the browser's redirect on the loopback server, then exchange the code."""
        assert self._loopback is not None
        server = self._loopback
        try:
            deadline = threading.Event()
            timer = threading.Timer(timeout, deadline.set)
            timer.daemon = True
            timer.start()
            while not self._done.is_set() and not deadline.is_set() and server.received is None:
                server.handle_request()
            timer.cancel()
            if self._done.is_set():
                return
            if server.received is None:
                self._finish(error=LoginTimeout(f"no login came back to the loopback redirect within "
                                                f"{timeout:g} s"))
                return
            self.complete(server.received)
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
        assert self.device_authorization is not None
        poll = {"grant_type": DEVICE_GRANT, "device_code": self.device_authorization.device_code,
                "client_id": self.tenant.client_id}
        try:
            waited = 0.0
            failures = 0
            while True:
                if self._cancel.wait(self.interval):
                    return
                waited += self.interval
                try:
                    tokens = token_request(self.tenant, poll)
                except TenantError as exc:
                    failures += 1
                    if failures > DEVICE_POLL_FAILURES:
                        raise
                    logger.debug("device login: poll %d failed (%s); polling again", failures, exc)
                except LoginError as exc:
                    failures = 0
                    if exc.error == "slow_down":
                        self.interval += 5
                        logger.debug("device login: slow_down, polling every %g s", self.interval)
                    elif exc.error != "authorization_pending":
                        raise
                else:
                    # Auth0's device flow takes no nonce: the device code itself binds the login.
                    self._finish(session=session_from_tokens(self.tenant, tokens, self.purpose, None,
                                                             cache=self.cache, connection=self.connection))
                    return
                if waited >= timeout:
                    raise LoginTimeout(f"no device login within {timeout:g} s")
                # The tenant says expired_token itself; this only guards against one that never does.
                if self.expires_in is not None and waited >= self.expires_in + 2 * self.interval:
                    raise LoginExpired("the device code expired without a login")
        except BaseException as exc:
            self._finish(error=exc)

    def __repr__(self) -> str:
        extra = f" user_code={self.user_code!r}" if self.user_code else ""
        extra += " from the token cache" if self.from_cache else ""
        return f"<PendingLogin {self.method} {self.purpose} {self.status}{extra}>"
