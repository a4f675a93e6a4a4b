"""What one sandbox tenant is: its store, keys, URLs, clients, rate limiter and lifetimes.

Every request handler finds its tenant with ``current_tenant()``; nothing lives at module
level, so two sandboxes in one process never share state.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from .attempts import FailedAttempts
from .keys import SigningKeys
from .store import Store

__all__ = [
    "DEVICE_CODE_SECONDS",
    "DEVICE_POLL_INTERVAL",
    "EXPORT_LINK_SECONDS",
    "ExportState",
    "LoginTransaction",
    "RateLimiter",
    "SsoSession",
    "TenantContext",
    "check_device_options",
    "check_export_link_seconds",
    "current_tenant",
    "install_tenant",
    "parse_rate_limit",
    "tenant_of",
]

TENANT_EXTENSION = "linking_sandbox"  # where an app keeps its tenant (Flask's app.extensions)
DEVICE_CODE_SECONDS = 900  # Auth0's default lifetime of a device code
DEVICE_POLL_INTERVAL = 5  # Auth0's default polling interval, in seconds
EXPORT_LINK_SECONDS = 60  # how long Auth0's export download link lives (its docs: 60 seconds)

# Auth0's Management API rate-limit tiers (its "Management API Endpoint Rate Limits" page):
# free tenants burst 2 at 2/s, enterprise 50 at 16/s.
RATE_LIMIT_PRESETS: dict[str, tuple[int, float]] = {
    "free": (2, 2.0),
    "enterprise": (50, 16.0),
}


def parse_rate_limit(spec: str | tuple[int, float] | None) -> tuple[int, float] | None:
    """``"free"``, ``"enterprise"``, ``"BURST/RATE"`` (e.g. ``"10/5"``) or ``None`` (off).

    Examples
    --------
    >>> from linking_toolkit.sandbox.context import parse_rate_limit
    >>> parse_rate_limit("free"), parse_rate_limit("10/5"), parse_rate_limit(None)
    ((2, 2.0), (10, 5.0), None)
    >>> parse_rate_limit("fast")
    Traceback (most recent call last):
        ...
    ValueError: rate limit must be one of ['enterprise', 'free'] or BURST/RATE, not 'fast'
    """
    if spec is None or spec == "" or spec == "off":
        return None
    if isinstance(spec, tuple):
        burst, rate = spec
    elif spec in RATE_LIMIT_PRESETS:
        burst, rate = RATE_LIMIT_PRESETS[spec]
    else:
        try:
            b, _, r = spec.partition("/")
            burst, rate = int(b), float(r)
        except ValueError:
            raise ValueError(
                f"rate limit must be one of {sorted(RATE_LIMIT_PRESETS)} or BURST/RATE, "
                f"not {spec!r}"
            ) from None
    if burst < 1 or rate <= 0:
        raise ValueError("rate limit burst must be >= 1 and rate > 0")
    return int(burst), float(rate)


class RateLimiter:
    """A token bucket, as Auth0 runs one per tenant for the Management API.

    ``take()`` answers whether the request may go, and the values of Auth0's headers:
    ``x-ratelimit-limit`` (bucket size), ``x-ratelimit-remaining`` and ``x-ratelimit-reset``
    (UNIX seconds when the next token is added).

    Examples
    --------
    >>> from linking_toolkit.sandbox.context import RateLimiter
    >>> bucket = RateLimiter(2, 1.0, clock=lambda: 1000.0)          # a clock that stands still
    >>> [bucket.take()[0] for _ in range(3)]
    [True, True, False]
    >>> bucket.take()[1]
    {'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1001'}
    """

    def __init__(self, burst: int, rate: float, clock: Any = time.time) -> None:
        self.burst = burst
        self.rate = rate
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, dict[str, str]]:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            allowed = self._tokens >= 1.0
            if allowed:
                self._tokens -= 1.0
            # The moment the bucket next holds a whole token (rounded up to a whole second).
            missing = max(0.0, 1.0 - (self._tokens % 1.0)) if self._tokens < self.burst else 0.0
            reset = now + (missing / self.rate if missing else 0.0)
            headers = {
                "x-ratelimit-limit": str(self.burst),
                "x-ratelimit-remaining": str(int(self._tokens)),
                "x-ratelimit-reset": str(int(-(-reset // 1))),
            }
        return allowed, headers


def check_device_options(device_code_seconds: int, device_poll_interval: int) -> None:
    """ValueError, in one line, for device-flow lifetimes a tenant cannot run with.

    A device code may be issued already expired (``device_code_seconds`` <= 0 shows a client what
    ``expired_token`` looks like), but polling needs an interval of at least one second.

    Examples
    --------
    >>> from linking_toolkit.sandbox.context import check_device_options
    >>> check_device_options(0, 5)                        # a code issued already expired: allowed
    >>> check_device_options(900, 0)
    Traceback (most recent call last):
        ...
    ValueError: device_poll_interval must be an int >= 1, not 0
    """
    if isinstance(device_code_seconds, bool) or not isinstance(device_code_seconds, int):
        raise ValueError(f"device_code_seconds must be an int, not {device_code_seconds!r}")
    if (isinstance(device_poll_interval, bool) or not isinstance(device_poll_interval, int)
            or device_poll_interval < 1):
        raise ValueError(f"device_poll_interval must be an int >= 1, not {device_poll_interval!r}")


def check_export_link_seconds(export_link_seconds: int) -> None:
    """ValueError, in one line, unless the export links' lifetime is an int of at least 1 s.

    Examples
    --------
    >>> from linking_toolkit.sandbox.context import check_export_link_seconds
    >>> check_export_link_seconds(60)
    >>> check_export_link_seconds(0)
    Traceback (most recent call last):
        ...
    ValueError: export_link_seconds must be an int >= 1, not 0
    """
    if (isinstance(export_link_seconds, bool) or not isinstance(export_link_seconds, int)
            or export_link_seconds < 1):
        raise ValueError(f"export_link_seconds must be an int >= 1, not {export_link_seconds!r}")


@dataclass
class LoginTransaction:
    """A person between /authorize (or /activate) and the end of their login.

    ``csrf`` goes in every form's hidden field and in a cookie: a form posted from another site
    carries neither, so it cannot finish someone else's login.

    Examples
    --------
    >>> from linking_toolkit.sandbox.context import LoginTransaction
    >>> login = LoginTransaction("tx1", "device", {"client_id": "abc123"})
    >>> login.kind, login.done, len(login.csrf) > 20
    ('device', False, True)
    """

    id: str
    kind: str  # "authorize" | "device"
    params: dict[str, Any]
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    created: float = field(default_factory=time.time)
    done: bool = False


@dataclass
class SsoSession:
    """A browser's login at the tenant (Auth0's SSO session), named by a random cookie.

    It names the identity that logged in (``provider``, ``identity_id``) and its ``connection``, not
    the user: once that identity is linked into another user, the session is that user's, as on
    Auth0. ``auth_time`` is when the person typed their password (or chose their account).

    Examples
    --------
    >>> from linking_toolkit.sandbox.context import SsoSession
    >>> session = SsoSession("auth0", "ada", "Username-Password-Authentication", 1767225600, 1767312000.0)
    >>> session.provider, session.identity_id, session.auth_time
    ('auth0', 'ada', 1767225600)
    """

    provider: str
    identity_id: str
    connection: str
    auth_time: int
    expires_at: float


class ExportState:
    """A tenant's export directory, running export threads and their stop signal.

    Examples
    --------
    >>> from linking_toolkit.sandbox.context import ExportState
    >>> sorted(vars(ExportState()))
    ['directory', 'lock', 'remove', 'stop', 'threads']
    """

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="linking-sandbox-exports-")
        # Removed at interpreter exit at the latest, even if the sandbox is never stopped.
        self.remove = weakref.finalize(self, shutil.rmtree, self.directory, ignore_errors=True)
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()


@dataclass
class TenantContext:
    """One tenant. ``base_url`` is ``http://127.0.0.1:{port}`` (no trailing slash).

    ``device_code_seconds`` and ``device_poll_interval`` are the device flow's lifetimes (Auth0's
    defaults unless the ``Sandbox`` was given others), ``export_link_seconds`` an export download
    link's; ``exports`` is the export jobs' state, made
    by the first job; ``logins`` holds the logins in progress, by id, under ``logins_lock``.

    Examples
    --------
    >>> from linking_toolkit.sandbox.context import tenant_of
    >>> tenant = tenant_of(app)                           # doctest: +SKIP
    >>> tenant.base_url, tenant.device_code_seconds
    """

    store: Store
    keys: SigningKeys
    base_url: str
    seed: int | None = None
    rate_limiter: RateLimiter | None = None
    quiet: bool = True
    device_code_seconds: int = DEVICE_CODE_SECONDS
    device_poll_interval: int = DEVICE_POLL_INTERVAL
    export_link_seconds: int = EXPORT_LINK_SECONDS
    # False: POST /jobs/users-exports is refused, as on an Auth0 plan without export jobs.
    export_jobs: bool = True
    # Signs the export download links (they are pre-signed URLs, like Auth0's); this run's only.
    link_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    exports: ExportState | None = None
    exports_lock: threading.Lock = field(default_factory=threading.Lock)
    logins: dict[str, LoginTransaction] = field(default_factory=dict)
    logins_lock: threading.Lock = field(default_factory=threading.Lock)
    # The single-page application's Allowed Web Origins and Allowed Logout URLs (its Allowed
    # Callback URLs are its client row's redirect_uris); the origins are the only ones given CORS.
    spa_web_origins: tuple[str, ...] = ()
    spa_logout_urls: tuple[str, ...] = ()
    # SSO sessions by the SHA-256 of their cookie's value (authentication_api/sessions.py), under
    # sessions_lock.
    sso_sessions: dict[str, SsoSession] = field(default_factory=dict)
    sessions_lock: threading.Lock = field(default_factory=threading.Lock)
    # Failed logins by (connection, email, address) and wrong user codes by address (attempts.py).
    failed_logins: FailedAttempts = field(default_factory=FailedAttempts)
    failed_user_codes: FailedAttempts = field(default_factory=FailedAttempts)

    @property
    def issuer(self) -> str:
        return self.base_url + "/"

    @property
    def domain(self) -> str:
        return self.base_url.split("://", 1)[1]

    @property
    def management_audience(self) -> str:
        return self.base_url + "/api/v2/"

    @property
    def management_audiences(self) -> tuple[str, str]:
        """The Management API's identifier and its alias ``https://{domain}/api/v2/``: its
        identifier on every Auth0 tenant, which Auth0's SDKs ask for by default."""
        return self.management_audience, f"https://{self.domain}/api/v2/"

    @property
    def userinfo_url(self) -> str:
        return self.base_url + "/userinfo"

    @property
    def client_id(self) -> str:
        return self.store.get_setting("native_client_id") or ""

    @property
    def spa_client_id(self) -> str:
        return self.store.get_setting("spa_client_id") or ""

    @property
    def m2m_client_id(self) -> str:
        return self.store.get_setting("m2m_client_id") or ""


def install_tenant(app: Flask, tenant: TenantContext) -> None:
    """Make ``tenant`` the one the app's handlers serve (``create_app`` calls it).

    Examples
    --------
    >>> from flask import Flask
    >>> from linking_toolkit.sandbox.context import install_tenant, tenant_of
    >>> app = Flask("example")
    >>> install_tenant(app, tenant)                       # doctest: +SKIP
    >>> tenant_of(app) is tenant
    True
    """
    app.extensions[TENANT_EXTENSION] = tenant


def tenant_of(app: Flask) -> TenantContext:
    """The tenant an app serves.

    Examples
    --------
    >>> from linking_toolkit.sandbox.context import tenant_of
    >>> tenant_of(app).base_url                           # doctest: +SKIP
    """
    tenant: TenantContext = app.extensions[TENANT_EXTENSION]
    return tenant


def current_tenant() -> TenantContext:
    """The tenant of the request being handled.

    Examples
    --------
    >>> from linking_toolkit.sandbox.context import current_tenant
    >>> @app.get("/whoami")                               # doctest: +SKIP
    ... def whoami():
    ...     return {"issuer": current_tenant().base_url + "/"}
    """
    return tenant_of(current_app)
