"""Run a sandbox tenant: in a background thread (``Sandbox``), or from a shell (``__main__``)."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_app
from .context import RateLimiter, TenantContext, parse_rate_limit
from .keys import SigningKeys
from .seed import DATABASE, DemoTenant, seed_demo_tenant, seed_synthetic_users
from .store import Store

__all__ = ["Sandbox"]


class _QuietHandler(WSGIRequestHandler):
    """The app writes its own access log (path only); werkzeug's would include query strings."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class Sandbox:
    """A local Auth0-compatible tenant on a free loopback port.

    Examples
    --------
    >>> with Sandbox(seed=1) as tenant:          # doctest: +SKIP
    ...     print(tenant.issuer)
    http://127.0.0.1:51234/
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
    ) -> None:
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
        if self._server is not None:
            return self
        store = Store(self.db)
        limiter = RateLimiter(*self.rate_limit) if self.rate_limit else None
        ctx = TenantContext(store=store, keys=SigningKeys(), base_url="", seed=self.seed,
                            rate_limiter=limiter, quiet=self.quiet)
        server = make_server(self.host, self.port, create_app(ctx), threaded=True,
                             request_handler=_QuietHandler)
        self.port = server.port
        ctx.base_url = f"http://{self.host}:{server.port}"
        if store.get_setting("native_client_id") is None:
            self._demo = seed_demo_tenant(store, ctx.management_audience, seed=self.seed)
            if self.users:
                seed_synthetic_users(store, self.users, seed=self.seed)
        else:  # an existing database file: its secret was stored when it was made
            self._demo = DemoTenant.from_store(store)
        self.context = ctx
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"sandbox-{server.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server.server_close()
        assert self.context is not None
        self.context.store.close()
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
    def client_id(self) -> str:
        return self._ctx().client_id

    @property
    def m2m_client_id(self) -> str:
        return self._ctx().m2m_client_id

    @property
    def m2m_client_secret(self) -> str:
        assert self._demo is not None
        return self._demo.m2m_client_secret

    @property
    def connections(self) -> dict[str, str]:
        return {c["name"]: c["id"] for c in self._ctx().store.connections()}

    @property
    def demo_users(self) -> list[dict[str, Any]]:
        """Database demo users with their passwords (for tests and scripted logins only)."""
        assert self._demo is not None
        return [dict(u) for u in self._demo.demo_users]

    def demo_user(self, email: str, connection: str = DATABASE) -> dict[str, Any]:
        for user in self.demo_users:
            if user["email"] == email and user["connection"] == connection:
                return user
        raise KeyError(f"no demo user {email!r} on {connection!r}")

    def info(self) -> dict[str, Any]:
        """The JSON line ``python -m linking_toolkit.sandbox`` prints once it listens."""
        return {
            "issuer": self.issuer,
            "domain": self.domain,
            "base_url": self.base_url,
            "management_audience": self.management_audience,
            "client_id": self.client_id,
            "m2m_client_id": self.m2m_client_id,
            "m2m_client_secret": self.m2m_client_secret,
            "connections": self.connections,
            "demo_users": [{k: u[k] for k in ("email", "connection", "password")}
                           for u in self.demo_users],
        }
