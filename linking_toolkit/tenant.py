"""Where a tenant lives: its issuer, endpoints, client ids, Management audience and signing keys.

``connect()`` finds a real Auth0 tenant in the arguments, the environment or a ``.env`` file, and
otherwise starts the embedded sandbox tenant, so a notebook runs with no account and no network.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx2
from dotenv import dotenv_values

from .errors import TenantError

if TYPE_CHECKING:
    from .sandbox import Sandbox
    from .sandbox.kept import KeptSandbox

__all__ = ["DEFAULT_TIMEOUT", "JWKS_REFETCHES_PER_MINUTE", "Closeable", "Tenant", "connect", "trust"]

logger = logging.getLogger("linking_toolkit.tenant")

# Every call has a deadline: a tenant that stops answering must not hang a notebook cell.
DEFAULT_TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
# Unknown kids fetch the JWKS again at most this many times a minute (node-jwks-rsa's default is 10).
JWKS_REFETCHES_PER_MINUTE = 5

_ENDPOINT_NAMES = ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint",
                   "userinfo_endpoint", "jwks_uri")


class Closeable(Protocol):
    """Anything holding a connection pool that :meth:`Tenant.close` should close.

    Examples
    --------
    >>> from linking_toolkit import connect
    >>> tenant = connect()                                # doctest: +SKIP
    >>> tenant.register_client(admin)                   # doctest: +SKIP
    >>> tenant.close()                                  # doctest: +SKIP
    """

    def close(self) -> None: ...


@dataclass(repr=False, eq=False)
class Tenant:
    """One Auth0 tenant as a client sees it.

    ``issuer`` ends with a slash (``https://{domain}/``), as Auth0 writes it in every token;
    ``management_audience`` is ``https://{domain}/api/v2/``. ``m2m_client_secret`` is never shown.
    ``ca_file`` is a CA certificate every connection to the tenant trusts besides the system's
    (a ``tls=True`` sandbox's); ``verify`` is what those connections are given.

    Examples
    --------
    >>> with connect() as tenant:                         # doctest: +SKIP
    ...     print(tenant.issuer, tenant.management_audience)
    """

    domain: str
    issuer: str
    base_url: str
    management_audience: str
    client_id: str
    m2m_client_id: str | None = None
    m2m_client_secret: str | None = field(default=None, repr=False)
    endpoints: dict[str, str] = field(default_factory=dict)
    connections: list[str] = field(default_factory=list)
    sandbox: Sandbox | KeptSandbox | None = None
    owns_sandbox: bool = False  # close() stops the sandbox too (connect() started it)
    ca_file: str | None = None
    _http: httpx2.Client | None = None
    # The JWKS's entries by kid, filled on first use (see signing_jwk).
    _jwks_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _jwks: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    _jwks_refetches: list[float] = field(default_factory=list, init=False)  # when, the last minute
    # Management clients made for this tenant (sessions' and machine ones): close() closes their pools.
    _clients: weakref.WeakSet[Closeable] = field(default_factory=weakref.WeakSet, init=False)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def discover(
        cls,
        base_url: str,
        *,
        client_id: str,
        audience: str | None = None,
        m2m_client_id: str | None = None,
        m2m_client_secret: str | None = None,
        connections: list[str] | None = None,
        sandbox: Sandbox | KeptSandbox | None = None,
        transport: httpx2.BaseTransport | None = None,
        ca_file: str | None = None,
    ) -> Tenant:
        """Read ``/.well-known/openid-configuration`` and check it names this tenant's issuer."""
        base_url = base_url.rstrip("/")
        http = httpx2.Client(timeout=DEFAULT_TIMEOUT, transport=transport, verify=trust(ca_file))
        tenant = cls(
            domain=base_url.split("://", 1)[-1],
            issuer=base_url + "/",
            base_url=base_url,
            management_audience=audience or base_url + "/api/v2/",
            client_id=client_id,
            m2m_client_id=m2m_client_id,
            m2m_client_secret=m2m_client_secret,
            connections=list(connections or []),
            sandbox=sandbox,
            ca_file=ca_file,
            _http=http,
        )
        try:
            doc = tenant.get_json(base_url + "/.well-known/openid-configuration")
        except BaseException:
            http.close()
            raise
        if doc.get("issuer") != tenant.issuer:
            http.close()
            raise TenantError(f"the discovery document names issuer {doc.get('issuer')!r}, "
                              f"not {tenant.issuer!r}")
        tenant.endpoints = {k: doc[k] for k in _ENDPOINT_NAMES if isinstance(doc.get(k), str)}
        return tenant

    @classmethod
    def from_sandbox(cls, sandbox: Sandbox | KeptSandbox, *,
                     transport: httpx2.BaseTransport | None = None) -> Tenant:
        """A running sandbox as a tenant (its demo clients and connections)."""
        return cls.discover(
            sandbox.base_url,
            client_id=sandbox.client_id,
            audience=sandbox.management_audience,
            m2m_client_id=sandbox.m2m_client_id,
            m2m_client_secret=sandbox.m2m_client_secret,
            connections=list(sandbox.connections),
            sandbox=sandbox,
            transport=transport,
            ca_file=sandbox.ca_file,
        )

    # -- HTTP for the Authentication API ---------------------------------------------------------

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx is given to check the tenant's certificate: the system's CAs, and ``ca_file``."""
        return trust(self.ca_file)

    @property
    def http(self) -> httpx2.Client:
        """The tenant's connection pool for discovery, JWKS and token requests."""
        if self._http is None:
            self._http = httpx2.Client(timeout=DEFAULT_TIMEOUT, verify=self.verify)
        return self._http

    def get_json(self, url: str) -> dict[str, Any]:
        """GET a JSON document from the tenant; anything else is a :class:`TenantError`."""
        try:
            response = self.http.get(url)
        except httpx2.HTTPError as exc:
            reason = type(exc).__name__
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # the one cause a user can act on at once
                reason += (": its certificate is not trusted (CERTIFICATE_VERIFY_FAILED); for a sandbox"
                           " started with --tls, pass connect(ca_file=) the ca_file it printed")
            raise TenantError(f"could not reach {url.split('?')[0]}: {reason}") from None
        if response.status_code != 200:
            raise TenantError(f"{url.split('?')[0]} answered HTTP {response.status_code}",
                              status_code=response.status_code)
        try:
            doc = response.json()
        except ValueError:
            raise TenantError(f"{url.split('?')[0]} did not answer JSON") from None
        if not isinstance(doc, dict):
            raise TenantError(f"{url.split('?')[0]} did not answer a JSON object")
        return doc

    def endpoint(self, name: str) -> str:
        """A discovered endpoint, or Auth0's standard path when discovery did not list it."""
        defaults = {
            "authorization_endpoint": "/authorize",
            "token_endpoint": "/oauth/token",
            "device_authorization_endpoint": "/oauth/device/code",
            "userinfo_endpoint": "/userinfo",
            "jwks_uri": "/.well-known/jwks.json",
        }
        return self.endpoints.get(name) or self.base_url + defaults[name]

    def signing_jwk(self, kid: str) -> dict[str, Any] | None:
        """The JWK named ``kid`` in the tenant's JWKS, or None.

        The JWKS is fetched once and kept; a kid it does not hold makes it fetched again (the tenant
        may have rotated its keys since), under a lock so concurrent logins fetch once, and at most
        ``JWKS_REFETCHES_PER_MINUTE`` times a minute: a flood of tokens with made-up kids must not
        become a flood of JWKS requests (Auth0's own node-jwks-rsa limits its refetches the same way).
        """
        with self._jwks_lock:
            now = time.monotonic()
            self._jwks_refetches = [t for t in self._jwks_refetches if now - t < 60]
            first = not self._jwks
            if kid not in self._jwks and (first or len(self._jwks_refetches) < JWKS_REFETCHES_PER_MINUTE):
                if not first:
                    self._jwks_refetches.append(now)
                doc = self.get_json(self.endpoint("jwks_uri"))
                self._jwks = {str(entry.get("kid")): entry for entry in doc.get("keys") or []
                              if isinstance(entry, dict)}
                logger.debug("fetched %d keys from %s", len(self._jwks), self.issuer)
            return self._jwks.get(kid)

    # -- lifecycle -------------------------------------------------------------------------------

    def register_client(self, client: Closeable) -> None:
        """Have :meth:`close` close ``client`` too (a Management API client made for this tenant);
        the tenant holds it weakly, so a client dropped earlier is simply garbage collected."""
        self._clients.add(client)

    def close(self) -> None:
        """Close the connection pools (the tenant's and those of every ``ManagementClient`` made for
        it, sessions' included), and stop the sandbox if ``connect()`` started it."""
        for client in list(self._clients):
            client.close()
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.owns_sandbox and self.sandbox is not None:
            self.sandbox.stop()

    def __enter__(self) -> Tenant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "sandbox" if self.sandbox is not None else "tenant"
        return f"<Tenant {kind} issuer={self.issuer!r} client_id={self.client_id!r}>"


def trust(ca_file: str | None) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a tenant: the system's CAs (``True``), and ``ca_file`` when given.

    Examples
    --------
    >>> from linking_toolkit.tenant import trust
    >>> trust(None)
    True
    >>> trust('sandbox-ca.pem')                           # doctest: +SKIP
    <ssl.SSLContext object at 0x...>
    """
    if ca_file is None:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_file)
    return context


def _setting(name: str, given: str | None, file_values: dict[str, str | None]) -> str | None:
    if given:
        return given
    return os.environ.get(name) or file_values.get(name) or None


def connect(
    *,
    domain: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    audience: str | None = None,
    m2m_client_id: str | None = None,
    env_file: str | os.PathLike[str] | None = ".env",
    sandbox_seed: int | None = 1,
    sandbox_users: int = 0,
    sandbox: Sandbox | None = None,
    connections: list[str] | None = None,
    quiet: bool = False,
    ca_file: str | os.PathLike[str] | None = None,
    keep_sandbox: bool | None = None,
) -> Tenant:
    """The tenant to work with: a real one when it is configured, otherwise the sandbox.

    A real tenant comes from the arguments, then ``AUTH0_DOMAIN`` / ``AUTH0_CLIENT_ID`` /
    ``AUTH0_CLIENT_SECRET`` / ``AUTH0_AUDIENCE`` in the environment, then the same names in
    ``env_file`` (read without changing ``os.environ``). ``client_secret`` is the secret of the
    machine-to-machine application used by ``ManagementClient.from_client_credentials``; its id is
    ``m2m_client_id`` (``AUTH0_M2M_CLIENT_ID``), or ``client_id`` when that is not set.
    ``domain`` may be a full ``http(s)://`` URL (a sandbox started from a shell, for instance);
    ``ca_file`` is a CA certificate to trust besides the system's (``--tls`` prints its ``ca_file``).

    With no domain anywhere, the embedded sandbox starts on a free loopback port (seeded with
    ``sandbox_seed`` so notebook outputs repeat, with ``sandbox_users`` synthetic users besides its
    demo people) and one line says so; pass ``sandbox=`` to use one that is already running.
    ``keep_sandbox=True`` (the default when ``LINKING_TOOLKIT_KEEP_SANDBOX=1``, which ``make lab``
    sets) uses the notebook's kept sandbox instead: a server process of its own that a restarted
    kernel finds again, with its data, so a cached login comes back with no prompt
    (:mod:`linking_toolkit.sandbox.kept`).

    Examples
    --------
    >>> tenant = connect()                        # doctest: +SKIP
    No AUTH0_DOMAIN configured: using the sandbox tenant at http://127.0.0.1:53817/
    """
    if sandbox is not None:
        return Tenant.from_sandbox(sandbox)
    file_values: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        file_values = dict(dotenv_values(env_file))
    domain = _setting("AUTH0_DOMAIN", domain, file_values)
    if domain:
        client_id = _setting("AUTH0_CLIENT_ID", client_id, file_values)
        if not client_id:
            raise TenantError("AUTH0_DOMAIN is set but AUTH0_CLIENT_ID is not: the login needs the "
                              "client id of a Native application")
        secret = _setting("AUTH0_CLIENT_SECRET", client_secret, file_values)
        m2m_id = _setting("AUTH0_M2M_CLIENT_ID", m2m_client_id, file_values)
        m2m_id = m2m_id or (client_id if secret else None)
        base_url = domain if "://" in domain else f"https://{domain}"
        return Tenant.discover(base_url, client_id=client_id,
                               audience=_setting("AUTH0_AUDIENCE", audience, file_values),
                               m2m_client_id=m2m_id, m2m_client_secret=secret, connections=connections,
                               ca_file=os.fspath(ca_file) if ca_file is not None else None)
    if keep_sandbox is None:
        keep_sandbox = os.environ.get("LINKING_TOOLKIT_KEEP_SANDBOX") == "1"
    if keep_sandbox:
        return _kept_sandbox(sandbox_seed, sandbox_users, quiet=quiet)
    return _start_sandbox(sandbox_seed, sandbox_users, quiet=quiet)


def _kept_sandbox(seed: int | None, users: int, *, quiet: bool) -> Tenant:
    """The notebook's kept sandbox (found again or started), and one line saying so unless ``quiet``."""
    from .sandbox.kept import kept_sandbox

    kept = kept_sandbox(seed=seed, users=users)
    tenant = Tenant.from_sandbox(kept)
    if not quiet:
        print(f"No AUTH0_DOMAIN configured: using the sandbox tenant at {tenant.issuer}, kept across "
              f"kernel restarts (its files: {kept.folder})")
    return tenant


def _start_sandbox(seed: int | None, users: int, *, quiet: bool) -> Tenant:
    """The embedded sandbox, started for this tenant alone (``close()`` stops it), and one line
    saying so unless ``quiet``."""
    from .sandbox import Sandbox

    started = Sandbox(seed=seed, users=users).start()
    try:
        tenant = Tenant.from_sandbox(started)
    except BaseException:
        started.stop()
        raise
    tenant.owns_sandbox = True
    if not quiet:
        print(f"No AUTH0_DOMAIN configured: using the sandbox tenant at {tenant.issuer}")
    logger.info("started the sandbox tenant at %s", tenant.issuer)
    return tenant
