"""Run a sandbox tenant: in a background thread (``Sandbox``), or from a shell (``__main__``)."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import tempfile
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import trustme
from werkzeug.serving import (
    LISTEN_QUEUE,
    BaseWSGIServer,
    WSGIRequestHandler,
    get_sockaddr,
    make_server,
    select_address_family,
)

from .app import create_app
from .browser_apps import (
    DEFAULT_SPA_CALLBACK_URLS,
    DEFAULT_SPA_LOGOUT_URLS,
    DEFAULT_SPA_WEB_ORIGINS,
    check_url_list,
)
from .connections import DATABASE
from .context import (
    DEVICE_CODE_SECONDS,
    DEVICE_POLL_INTERVAL,
    EXPORT_LINK_SECONDS,
    RateLimiter,
    TenantContext,
    check_device_options,
    check_export_link_seconds,
    parse_rate_limit,
)
from .keys import SigningKeys
from .seed import DemoTenant, SyntheticTenant, reopen_demo_tenant, seed_demo_tenant, seed_synthetic_users
from .store import Store

if TYPE_CHECKING:
    from .driver import Pending

__all__ = ["LocalCA", "Sandbox", "base_url_for"]


class _QuietHandler(WSGIRequestHandler):
    """The app writes its own access log (path only); werkzeug's would include query strings."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def base_url_for(host: str, port: int, *, tls: bool = False) -> str:
    """``http://host:port`` (``https`` with ``tls``); an IPv6 literal goes in brackets, or the port
    would read as part of it.

    Examples
    --------
    >>> from linking_toolkit.sandbox.server import base_url_for
    >>> base_url_for("127.0.0.1", 8080), base_url_for("::1", 8080, tls=True)
    ('http://127.0.0.1:8080', 'https://[::1]:8080')
    """
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class LocalCA:
    """A certificate authority of this run (trustme), its certificate in a file a client can trust.

    The CA's key never leaves memory; its certificate (public) is written to ``ca_file`` so that
    other processes (an SDK, a browser, ``SSL_CERT_FILE``) can trust the sandbox, and is removed
    when the sandbox is collected or the interpreter exits.

    Examples
    --------
    >>> import os
    >>> from linking_toolkit.sandbox.server import LocalCA
    >>> ca = LocalCA("127.0.0.1")
    >>> os.path.isfile(ca.ca_file), type(ca.client_context()).__name__
    (True, 'SSLContext')
    """

    def __init__(self, host: str) -> None:
        self._ca = trustme.CA(organization_name="linking_toolkit sandbox")
        names = dict.fromkeys([host, "127.0.0.1", "::1", "localhost"])
        self._leaf = self._ca.issue_cert(*names)
        folder = tempfile.mkdtemp(prefix="linking-sandbox-ca-")
        self._remove = weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        self.ca_file = os.path.join(folder, "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_file)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._leaf.configure_cert(context)
        return context


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket bound here rather than by werkzeug, whose server prints a message and
    calls ``sys.exit(1)`` when the port is taken: a notebook should get an ``OSError`` instead."""
    family = select_address_family(host, port)
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(get_sockaddr(host, port, family))
        listener.listen(LISTEN_QUEUE)
    except BaseException:
        listener.close()
        raise
    return listener


class Sandbox:
    """A local Auth0-compatible tenant on a free loopback port.

    Examples
    --------
    >>> with Sandbox(seed=1) as tenant:          # doctest: +SKIP
    ...     print(tenant.issuer)
    http://127.0.0.1:51234/

    ``device_code_seconds`` and ``device_poll_interval`` set the device flow's lifetimes (Auth0's
    900 s and 5 s by default): a test of expiry or of polling need not wait for Auth0's.
    ``export_link_seconds`` is how long an export's download link lives once ``GET /jobs/{id}``
    hands it out (Auth0's 60 s by default): a client must be ready to ask the job for a fresh one.
    ``export_jobs=False`` refuses users-export jobs, as an Auth0 plan without them does.
    ``tls=True`` serves ``https`` with a certificate from a CA made for this run, whose certificate
    is in ``ca_file`` (and in ``info()``): for SDKs that insist on an ``https`` issuer.
    ``spa_callback_urls``, ``spa_logout_urls`` and ``spa_web_origins`` are the single-page app's
    Allowed Callback URLs, Allowed Logout URLs and Allowed Web Origins (``http://localhost:3000``
    and ``http://127.0.0.1:3000`` by default, as Auth0's quickstarts); the web origins are the only
    ones given CORS. Its client id is ``spa_client_id``.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        users: int = 0,
        rate_limit: str | tuple[int, float] | None = None,
        db: str = ":memory:",
        host: str = "127.0.0.1",
        port: int = 0,
        quiet: bool = True,
        device_code_seconds: int = DEVICE_CODE_SECONDS,
        device_poll_interval: int = DEVICE_POLL_INTERVAL,
        export_link_seconds: int = EXPORT_LINK_SECONDS,
        export_jobs: bool = True,
        tls: bool = False,
        spa_callback_urls: Iterable[str] = DEFAULT_SPA_CALLBACK_URLS,
        spa_logout_urls: Iterable[str] = DEFAULT_SPA_LOGOUT_URLS,
        spa_web_origins: Iterable[str] = DEFAULT_SPA_WEB_ORIGINS,
    ) -> None:
        check_device_options(device_code_seconds, device_poll_interval)
        check_export_link_seconds(export_link_seconds)
        for name, flag in (("export_jobs", export_jobs), ("tls", tls)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be True or False, not {flag!r}")
        self.spa_callback_urls = check_url_list(spa_callback_urls, "spa_callback_urls")
        self.spa_logout_urls = check_url_list(spa_logout_urls, "spa_logout_urls")
        self.spa_web_origins = check_url_list(spa_web_origins, "spa_web_origins", origins=True)
        self.export_jobs = export_jobs
        self.tls = tls
        self._ca: LocalCA | None = None
        self.export_link_seconds = export_link_seconds
        self.device_code_seconds = device_code_seconds
        self.device_poll_interval = device_poll_interval
        self.seed = seed
        self.users = users
        self.rate_limit = parse_rate_limit(rate_limit)
        self.db = db
        self.host = host
        self.port = port
        self.quiet = quiet
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.context: TenantContext | None = None
        self._demo: DemoTenant | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Listen and serve in a background thread; a running sandbox is returned as it is.

        After ``stop()`` it starts again on the same port: the same tenant from a ``db`` file, a new
        one from ``":memory:"`` (the old one went with its connection).
        """
        if self._server is not None:
            return self
        store = Store(self.db)
        limiter = RateLimiter(*self.rate_limit) if self.rate_limit else None
        ctx = TenantContext(store=store, keys=SigningKeys(), base_url="", seed=self.seed,
                            rate_limiter=limiter, quiet=self.quiet,
                            device_code_seconds=self.device_code_seconds,
                            device_poll_interval=self.device_poll_interval,
                            export_link_seconds=self.export_link_seconds, export_jobs=self.export_jobs,
                            spa_web_origins=self.spa_web_origins, spa_logout_urls=self.spa_logout_urls)
        try:
            self._check_users_of(store)
            if self.tls and self._ca is None:  # one CA for the sandbox's life: a restart keeps trust
                self._ca = LocalCA(self.host)
            listener = _listen(self.host, self.port)
            try:
                server = make_server(self.host, self.port, create_app(ctx), threaded=True,
                                     request_handler=_QuietHandler, fd=listener.fileno(),
                                     ssl_context=self._ca.server_context() if self._ca else None)
            finally:
                listener.close()  # the server holds its own duplicate of the socket
        except BaseException:  # a port in use: the database file must not stay open
            store.close()
            raise
        try:
            ctx.base_url = base_url_for(self.host, server.port, tls=self.tls)
            if store.get_setting("native_client_id") is None:
                self._demo = seed_demo_tenant(store, ctx.management_audience, seed=self.seed,
                                              spa_callback_urls=self.spa_callback_urls,
                                              spa_logout_urls=self.spa_logout_urls,
                                              spa_web_origins=self.spa_web_origins)
                if self.users:
                    seed_synthetic_users(store, self.users, seed=self.seed)
            else:  # an existing database file: its secret was stored when it was made
                self._demo = reopen_demo_tenant(store, ctx.management_audience, self.spa_callback_urls,
                                                self.spa_logout_urls, self.spa_web_origins)
        except BaseException:  # e.g. a file that holds another program's database
            server.server_close()
            store.close()
            raise
        self.port = server.port
        self.context = ctx
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"sandbox-{server.port}", daemon=True)
        self._thread.start()
        return self

    def _check_users_of(self, store: Store) -> None:
        """Refuse ``users`` that an existing database file would silently ignore.

        ``users`` seeds a new tenant only: adding them again at every reopening would grow the
        tenant each time its command is rerun. The number it was made with is accepted (rerunning
        the same command reopens the same tenant); any other raises ValueError before a change.
        """
        if not self.users or store.get_setting("native_client_id") is None:
            return
        truth = SyntheticTenant.from_store(store)
        held = truth.users if truth else 0
        if held != self.users:
            raise ValueError(
                f"{self.db} already holds a tenant ({held} synthetic users), so {self.users} cannot be "
                "seeded in it: leave out users (--users) to reopen it as it is, or name a new db file "
                "(--db) for a new tenant")

    def stop(self) -> None:
        """Stop serving and close the database (its export files go with it); idempotent."""
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server.server_close()
        assert self.context is not None
        self.context.store.close()
        # The URLs, clients and passwords were this run's: once stopped they raise, not mislead.
        self.context = None
        self._demo = None
        self._server = None
        self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"issuer={self.issuer!r}" if self._server else "stopped"
        return f"<Sandbox {state} seed={self.seed!r}>"

    # -- what a client needs to know ---------------------------------------------------------------

    def _ctx(self) -> TenantContext:
        if self.context is None:
            raise RuntimeError("the sandbox is not running: use `with Sandbox() as tenant:`")
        return self.context

    def _demo_tenant(self) -> DemoTenant:
        self._ctx()  # not running: the same RuntimeError as the URLs
        assert self._demo is not None
        return self._demo

    @property
    def base_url(self) -> str:
        return self._ctx().base_url

    @property
    def issuer(self) -> str:
        return self._ctx().issuer

    @property
    def domain(self) -> str:
        return self._ctx().domain

    @property
    def management_audience(self) -> str:
        return self._ctx().management_audience

    @property
    def ca_file(self) -> str | None:
        """The PEM file of the CA that signed the sandbox's certificate (``tls=True``), else None."""
        self._ctx()
        return self._ca.ca_file if self._ca else None

    @property
    def client_id(self) -> str:
        return self._ctx().client_id

    @property
    def spa_client_id(self) -> str:
        """The single-page application's client id (public: code + PKCE, refresh tokens)."""
        return self._ctx().spa_client_id

    @property
    def m2m_client_id(self) -> str:
        return self._ctx().m2m_client_id

    @property
    def m2m_client_secret(self) -> str:
        return self._demo_tenant().m2m_client_secret

    @property
    def connections(self) -> dict[str, str]:
        return {c["name"]: c["id"] for c in self._ctx().store.connections()}

    @property
    def demo_users(self) -> list[dict[str, Any]]:
        """Database demo users with their passwords (for tests and scripted logins only)."""
        return [dict(u) for u in self._demo_tenant().demo_users]

    def demo_user(self, email: str, connection: str = DATABASE) -> dict[str, Any]:
        for user in self.demo_users:
            if user["email"] == email and user["connection"] == connection:
                return user
        raise KeyError(f"no demo user {email!r} on {connection!r}")

    # -- finishing a login as a person would (drives the sandbox's own pages) -----------------------

    def _password_for(self, connection: str, email: str, password: str | None) -> str | None:
        if password is None and connection == DATABASE:
            return self.demo_user(email, connection)["password"]
        return password

    def approve_device(self, user_code: str, *, connection: str, email: str,
                       password: str | None = None, deny: bool = False) -> None:
        """Approve (or deny) a device login by entering ``user_code`` on ``/activate`` and logging
        in as ``email``; a demo database user's password is filled in for you."""
        from .driver import approve_device

        approve_device(self.base_url, user_code, connection=connection, email=email,
                       password=None if deny else self._password_for(connection, email, password), deny=deny,
                       verify=self._ca.client_context() if self._ca else True)

    def approve_browser(self, authorize_url: str, *, connection: str, email: str,
                        password: str | None = None, deny: bool = False) -> str:
        """Log in (or deny) on the pages ``authorize_url`` leads to; returns the redirect URL
        (with ``code`` and ``state``, or ``error``) that the app would receive."""
        from .driver import approve_browser

        return approve_browser(authorize_url, connection=connection, email=email,
                               password=None if deny else self._password_for(connection, email, password),
                               deny=deny, verify=self._ca.client_context() if self._ca else True)

    def approve_login(self, pending: Pending, *, connection: str, email: str,
                      password: str | None = None) -> str:
        """Play the person for the device login ``pending`` (a *Sandbox only* cell), unless the
        person already logged in by hand or the token cache gave the session: then nothing is done,
        and one line says so (see :func:`~linking_toolkit.sandbox.driver.approve_login`)."""
        from .driver import approve_login

        return approve_login(self.base_url, pending, connection=connection, email=email,
                             password=self._password_for(connection, email, password),
                             verify=self._ca.client_context() if self._ca else True)

    def info(self) -> dict[str, Any]:
        """The JSON line ``python -m linking_toolkit.sandbox`` prints once it listens."""
        return {
            "issuer": self.issuer,
            "domain": self.domain,
            "base_url": self.base_url,
            "management_audience": self.management_audience,
            "client_id": self.client_id,
            "spa_client_id": self.spa_client_id,
            "m2m_client_id": self.m2m_client_id,
            "m2m_client_secret": self.m2m_client_secret,
            "connections": self.connections,
            **({"ca_file": self.ca_file} if self.tls else {}),
            "demo_users": [{k: u[k] for k in ("email", "connection", "password")}
                           for u in self.demo_users],
        }
